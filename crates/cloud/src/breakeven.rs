//! Break-even and "coin play": what a month costs against how busy the work keeps an instance,
//! where the lines cross, and the cheapest measured policy that meets a latency target within a
//! budget.
//!
//! An always-on instance costs the same whether it is busy or idle; functions and request-billed
//! containers cost in proportion to the requests. Where the lines cross depends on the reader's
//! own measured work, so it is computed from it, never assumed.

use crate::bill::MONTH_S;
use crate::error::{Error, ErrorKind, Result};
use crate::prices::{DiscountKind, Model, PriceBook, Product, Size, Unit};
use serde::{Deserialize, Serialize};
use virtlab_core::cost::compare::FIRECRACKER_BOOT_MS;

/// The measured cost of one request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Seconds of one vCPU a request takes.
    pub vcpu_s_per_request: f64,
    /// Memory a request-serving container is sold with, GiB.
    pub memory_gib: f64,
}

/// A month's cost as a straight line in the busy share `u` (0 = idle, 1 = every vCPU of the
/// reference instance busy all month): `fixed_usd + u × per_busy_usd`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    pub label: String,
    pub product_id: String,
    pub fixed_usd: f64,
    pub per_busy_usd: f64,
}

/// Where two lines meet inside 0..=1 busy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossing {
    pub a: String,
    pub b: String,
    pub busy_share: f64,
    pub month_usd: f64,
}

/// Every line and every crossing for one piece of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakEven {
    pub work: Work,
    /// The always-on instance whose vCPUs the busy share is of.
    pub reference: String,
    pub reference_size: Size,
    /// Requests a month at 100% busy.
    pub requests_at_full: f64,
    pub lines: Vec<CostLine>,
    pub crossings: Vec<Crossing>,
}

impl CostLine {
    /// The month's cost at busy share `u`.
    pub fn at(&self, u: f64) -> f64 {
        self.fixed_usd + u * self.per_busy_usd
    }
}

/// The lines for `work` against the always-on instance `reference_id` (a fixed-size instance
/// type), and where they cross.
pub fn break_even(book: &PriceBook, work: Work, reference_id: &str) -> Result<BreakEven> {
    if !(work.vcpu_s_per_request.is_finite() && work.vcpu_s_per_request > 0.0) {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!(
                "a request's vCPU time cannot be {} s",
                work.vcpu_s_per_request
            ),
            "give the measured seconds of one vCPU per request, above 0",
        ));
    }
    if !(work.memory_gib.is_finite() && work.memory_gib > 0.0) {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!("a request's memory cannot be {} GiB", work.memory_gib),
            "give the memory a request-serving container is sold with, in GiB above 0",
        ));
    }
    let reference = book.product(reference_id)?;
    let size = match (reference.model, reference.size) {
        (Model::Instance, Some(size)) => size,
        _ => {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("`{reference_id}` is not a fixed-size instance type"),
                "give an instance product with a size, such as aws-ec2-c7i.large",
            ));
        }
    };
    let requests_at_full = MONTH_S * size.vcpu / work.vcpu_s_per_request;
    let always_on = |p: &Product| -> Result<f64> {
        let hours = p.billed_seconds(MONTH_S) / 3600.0;
        Ok(match p.size {
            Some(_) => hours * p.rate(Unit::InstanceHour)?,
            None => {
                hours
                    * (size.vcpu * p.rate(Unit::VcpuHour)?
                        + size.memory_gib * p.rate(Unit::GbHour)?)
            }
        })
    };
    let mut lines = Vec::new();
    let on_demand = always_on(reference)?;
    lines.push(CostLine {
        label: format!("{}, always on", reference.product),
        product_id: reference.id.clone(),
        fixed_usd: on_demand,
        per_busy_usd: 0.0,
    });
    // Spot is left out: its figure is a ceiling on the saving, not a price to plan by.
    for d in book.discounts.iter().filter(|d| {
        d.kind == DiscountKind::Commitment
            && d.provider == reference.provider
            && d.applies_to.contains(&Model::Instance)
    }) {
        lines.push(CostLine {
            label: format!(
                "{}, always on, {} at its most ({:.0}% off)",
                reference.product,
                d.name,
                d.up_to_fraction * 100.0
            ),
            product_id: reference.id.clone(),
            fixed_usd: on_demand * (1.0 - d.up_to_fraction),
            per_busy_usd: 0.0,
        });
    }
    for p in &book.products {
        let per_request = match (p.model, p.size) {
            (Model::Container, _) | (Model::Instance, None) => {
                lines.push(CostLine {
                    label: format!("{}, same size, always on", p.product),
                    product_id: p.id.clone(),
                    fixed_usd: always_on(p)?,
                    per_busy_usd: 0.0,
                });
                continue;
            }
            (Model::Instance, Some(_)) => continue,
            (Model::Function, _) => {
                // A CPU-bound function is sized to get one full vCPU.
                let gb = p.full_vcpu_memory_mb.unwrap_or(1024.0) / 1024.0;
                p.rate(Unit::MillionRequests)? / 1e6
                    + p.billed_seconds(work.vcpu_s_per_request)
                        * gb.max(work.memory_gib)
                        * p.rate(Unit::GbSecond)?
            }
            (Model::RequestContainer, _) => {
                let s = p.billed_seconds(work.vcpu_s_per_request);
                p.rate(Unit::MillionRequests)? / 1e6
                    + s * (p.rate(Unit::VcpuSecond)? + work.memory_gib * p.rate(Unit::GibSecond)?)
            }
        };
        lines.push(CostLine {
            label: format!("{}, per request", p.product),
            product_id: p.id.clone(),
            fixed_usd: 0.0,
            per_busy_usd: per_request * requests_at_full,
        });
    }
    let mut crossings = Vec::new();
    for (i, a) in lines.iter().enumerate() {
        for b in &lines[i + 1..] {
            let dslope = a.per_busy_usd - b.per_busy_usd;
            if dslope == 0.0 {
                continue;
            }
            let u = (b.fixed_usd - a.fixed_usd) / dslope;
            // Two per-request lines "meet" at 0 busy, where nothing runs: not a break-even.
            if u > 0.0 && u <= 1.0 {
                crossings.push(Crossing {
                    a: a.label.clone(),
                    b: b.label.clone(),
                    busy_share: u,
                    month_usd: a.at(u),
                });
            }
        }
    }
    Ok(BreakEven {
        work,
        reference: reference.id.clone(),
        reference_size: size,
        requests_at_full,
        lines,
        crossings,
    })
}

/// One measured way to serve the trace: a policy billed as one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub policy: String,
    pub product_id: String,
    pub p99_s: f64,
    pub month_usd: f64,
}

/// A candidate turned down, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub outcome: Outcome,
    pub why: String,
}

/// The cheapest outcome meeting the target within the budget, and every one turned down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoinPlay {
    pub target_p99_s: f64,
    pub budget_usd: f64,
    /// Whose latency the p99s are, in words: this machine's, never the product's.
    pub latency_is: String,
    pub choice: Option<Outcome>,
    pub rejected: Vec<Rejected>,
}

/// Whose latency coin play weighs. Every p99 was measured on this machine's own instances, so a
/// product is credited with this machine's cold start, not its own: a function's includes a
/// microVM boot and a runtime that no run here measures. Firecracker's published bound gives
/// the scale of what it leaves out.
pub fn latency_is_this_machines() -> String {
    format!(
        "with this machine's measured latency; a real function's cold start adds its provider's, \
         e.g. Firecracker's published boot of up to {FIRECRACKER_BOOT_MS:.0} ms"
    )
}

/// "Coin play": the cheapest measured outcome whose p99 meets `target_p99_s` and whose month
/// costs at most `budget_usd`.
pub fn coin_play(outcomes: &[Outcome], target_p99_s: f64, budget_usd: f64) -> Result<CoinPlay> {
    if !(target_p99_s.is_finite() && target_p99_s > 0.0) {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!("the latency target cannot be {target_p99_s} s"),
            "give the p99 latency to meet, in seconds above 0 (0.1 for 100 ms)",
        ));
    }
    if !(budget_usd.is_finite() && budget_usd >= 0.0) {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!("the budget cannot be {budget_usd} USD"),
            "give the most a month may cost, in US dollars, 0 or more",
        ));
    }
    if outcomes.is_empty() {
        return Err(Error::of(
            ErrorKind::Invalid,
            "there are no measured outcomes to choose from",
            "serve the trace with at least one policy and bill it first",
        ));
    }
    let mut rejected = Vec::new();
    let mut eligible = Vec::new();
    for o in outcomes {
        if o.p99_s > target_p99_s {
            let why = format!(
                "p99 {:.1} ms here misses the {:.1} ms target",
                o.p99_s * 1e3,
                target_p99_s * 1e3
            );
            rejected.push(Rejected {
                outcome: o.clone(),
                why,
            });
        } else if o.month_usd > budget_usd {
            let why = format!(
                "${:.2} a month is over the ${budget_usd:.2} budget",
                o.month_usd
            );
            rejected.push(Rejected {
                outcome: o.clone(),
                why,
            });
        } else {
            eligible.push(o);
        }
    }
    let choice = eligible
        .iter()
        .min_by(|a, b| a.month_usd.total_cmp(&b.month_usd))
        .map(|o| (*o).clone());
    if let Some(best) = &choice {
        for o in eligible.into_iter().filter(|o| *o != best) {
            let why = format!(
                "${:.2} a month is dearer than {} on {} (${:.2})",
                o.month_usd, best.policy, best.product_id, best.month_usd
            );
            rejected.push(Rejected {
                outcome: o.clone(),
                why,
            });
        }
    }
    Ok(CoinPlay {
        target_p99_s,
        budget_usd,
        latency_is: latency_is_this_machines(),
        choice,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{book, close};

    #[test]
    fn lines_and_crossings_follow_from_the_prices() {
        // 0.25 s of one vCPU per request, 1.5 GiB (under the 1 769 MB that buys a function one
        // vCPU); a c7i.large has 2 vCPUs.
        let work = Work {
            vcpu_s_per_request: 0.25,
            memory_gib: 1.5,
        };
        let be = break_even(&book(), work, "aws-ec2-c7i.large").unwrap();
        close(be.requests_at_full, 2_628_000.0 * 2.0 / 0.25);
        let line = |id: &str| {
            be.lines
                .iter()
                .find(|l| l.product_id == id && !l.label.contains("Savings"))
                .unwrap()
        };
        let ec2 = line("aws-ec2-c7i.large");
        close(ec2.fixed_usd, 730.0 * 0.08925);
        let fargate = line("aws-fargate-x86");
        close(fargate.fixed_usd, 730.0 * (2.0 * 0.04048 + 4.0 * 0.004445));
        // Lambda: 0.25 s × 1769/1024 GB per request plus $0.20 a million, for 21 024 000 requests.
        let lambda = line("aws-lambda-x86");
        let per_request = 0.20 / 1e6 + 0.25 * 1769.0 / 1024.0 * 0.0000166667;
        close(lambda.per_busy_usd, per_request * 21_024_000.0);
        // Lambda meets the always-on instance where u × slope = fixed.
        let cross = be
            .crossings
            .iter()
            .find(|c| c.a == ec2.label && c.b == lambda.label)
            .unwrap();
        close(cross.busy_share, ec2.fixed_usd / lambda.per_busy_usd);
        close(cross.month_usd, ec2.fixed_usd);
        // The discounted line is labelled as the published maximum.
        assert!(be.lines.iter().any(|l| l.label.contains("72% off")));
        assert!(!be.lines.iter().any(|l| l.label.contains("Spot")));
    }

    #[test]
    fn flat_lines_never_cross_and_every_crossing_is_a_meeting_point() {
        let work = Work {
            vcpu_s_per_request: 0.0123,
            memory_gib: 0.5,
        };
        let be = break_even(&book(), work, "aws-ec2-c7i.large").unwrap();
        let line = |label: &str| be.lines.iter().find(|l| l.label == label).unwrap();
        assert!(!be.crossings.is_empty());
        for c in &be.crossings {
            let (a, b) = (line(&c.a), line(&c.b));
            assert!(
                a.per_busy_usd != b.per_busy_usd,
                "two flat lines crossed: {c:?}"
            );
            assert!(c.busy_share > 0.0 && c.busy_share <= 1.0);
            close(a.at(c.busy_share), b.at(c.busy_share));
        }
    }

    #[test]
    fn bad_work_or_reference_is_refused() {
        let work = Work {
            vcpu_s_per_request: 0.0,
            memory_gib: 1.0,
        };
        assert!(
            break_even(&book(), work, "aws-ec2-c7i.large")
                .unwrap_err()
                .problem()
                .contains("vCPU time")
        );
        let work = Work {
            vcpu_s_per_request: 0.1,
            memory_gib: 1.0,
        };
        let e = break_even(&book(), work, "aws-lambda-x86").unwrap_err();
        assert!(e.fix().contains("aws-ec2-c7i.large"), "{e}");
    }

    fn outcome(policy: &str, p99_s: f64, month_usd: f64) -> Outcome {
        Outcome {
            policy: policy.into(),
            product_id: "p".into(),
            p99_s,
            month_usd,
        }
    }

    #[test]
    fn coin_play_takes_the_cheapest_that_meets_target_and_budget() {
        let outcomes = [
            outcome("fixed", 0.010, 65.0),
            outcome("autoscale", 0.020, 30.0),
            outcome("per-request", 0.200, 5.0),
            outcome("autoscale-big", 0.015, 120.0),
        ];
        let cp = coin_play(&outcomes, 0.050, 100.0).unwrap();
        assert_eq!(cp.choice.unwrap().policy, "autoscale");
        assert_eq!(cp.rejected.len(), 3);
        assert!(
            cp.rejected
                .iter()
                .any(|r| r.outcome.policy == "per-request" && r.why.contains("target"))
        );
        assert!(
            cp.rejected
                .iter()
                .any(|r| r.outcome.policy == "autoscale-big" && r.why.contains("budget"))
        );
        assert!(
            cp.rejected
                .iter()
                .any(|r| r.outcome.policy == "fixed" && r.why.contains("dearer"))
        );
        // The latency is said to be this machine's, with the published boot it leaves out.
        assert!(cp.latency_is.contains("this machine's measured latency"));
        assert!(
            cp.latency_is
                .contains(&format!("{FIRECRACKER_BOOT_MS:.0} ms"))
        );
        let none = coin_play(&outcomes, 0.001, 100.0).unwrap();
        assert!(none.choice.is_none());
        assert!(coin_play(&outcomes, 0.0, 1.0).is_err());
        assert!(coin_play(&outcomes, 0.1, -1.0).is_err());
        assert!(coin_play(&[], 0.1, 1.0).is_err());
    }
}
