//! The bill: a measured usage record charged as each product charges, for the run itself and
//! scaled to a month at the run's rate.
//!
//! Each product rounds time its own way (per millisecond of each invocation, per second with a
//! one-minute minimum, per hour), and those rules, not the average, decide who wins for
//! spiky work. Discounts are printed as what they are: "up to" figures, with Spot a ceiling on
//! the saving rather than a price.

use crate::error::{Error, ErrorKind, Result};
use crate::prices::{DiscountKind, Model, PriceBook, Product, Size, Unit};
use serde::{Deserialize, Serialize};

/// Seconds in the 730-hour month (365 × 24 / 12) monthly figures are scaled to.
pub const MONTH_S: f64 = 730.0 * 3600.0;

/// What one instance used while it was alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceUsage {
    /// Seconds from start to stop.
    pub alive_s: f64,
    /// Alive for the whole measured span: an always-on instance, billed all month.
    pub whole_span: bool,
    /// The size it was sold as (what is billed, not what it used).
    pub size: Size,
    /// CPU-seconds it used, measured.
    pub cpu_s: f64,
    /// Memory × time it used, measured (GiB-seconds of resident memory).
    pub memory_gib_s: f64,
}

/// A measured run's usage, as a bill needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// How long the run lasted, seconds.
    pub span_s: f64,
    /// Each served request's service time, seconds (a function's billed duration).
    pub request_seconds: Vec<f64>,
    /// Each served request's cold start, seconds, in the order of `request_seconds`: the start
    /// of the instance it waited for, 0 for a warm request. Billed by a function that bills
    /// its INIT phase.
    pub cold_start_seconds: Vec<f64>,
    /// Every instance that was started.
    pub instances: Vec<InstanceUsage>,
}

/// Choices the usage record does not fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BillOptions {
    /// Memory given to a function, GB; `None` sizes it to one full vCPU (the product's
    /// `full_vcpu_memory_mb`), as a CPU-bound request needs.
    pub function_memory_gb: Option<f64>,
    /// The size of a request-billed container (Cloud Run) while it serves one request.
    pub request_container: Size,
}

impl Default for BillOptions {
    fn default() -> Self {
        BillOptions {
            function_memory_gb: None,
            request_container: Size {
                vcpu: 1.0,
                memory_gib: 2.0,
            },
        }
    }
}

/// One line of a bill: `quantity` of `unit` at `price_usd` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub what: String,
    pub quantity: f64,
    pub unit: Unit,
    pub price_usd: f64,
    pub cost_usd: f64,
}

/// A published discount applied at its most: what the month would cost at best.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountedMonth {
    pub id: String,
    pub name: String,
    pub kind: DiscountKind,
    pub up_to_fraction: f64,
    /// The month's cost at the full published discount: a floor, never a quote.
    pub as_low_as_usd: f64,
    /// What the figure means, in words ("a ceiling on the saving, not a price" for Spot).
    pub label: String,
}

/// A product's bill for one run and for a month at the run's rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bill {
    pub product_id: String,
    pub product: String,
    pub provider: String,
    pub region: String,
    pub rule: String,
    pub source: String,
    pub date_read: String,
    pub run_lines: Vec<Line>,
    pub run_usd: f64,
    pub month_lines: Vec<Line>,
    pub month_usd: f64,
    pub discounts: Vec<DiscountedMonth>,
}

impl UsageRecord {
    /// Refuses a record no bill can be made from.
    pub fn check(&self) -> Result<()> {
        if !(self.span_s.is_finite() && self.span_s > 0.0) {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("the usage record's span cannot be {} s", self.span_s),
                "record how long the run lasted, in seconds above 0",
            ));
        }
        if let Some(bad) = self
            .request_seconds
            .iter()
            .chain(&self.cold_start_seconds)
            .find(|s| !(s.is_finite() && **s >= 0.0))
        {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("a request's service time or cold start cannot be {bad} s"),
                "record each served request's times in seconds, 0 or more",
            ));
        }
        if self.cold_start_seconds.len() != self.request_seconds.len() {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!(
                    "the usage record has {} cold starts for {} requests",
                    self.cold_start_seconds.len(),
                    self.request_seconds.len()
                ),
                "record one cold start per served request: the start it waited for, 0 when warm",
            ));
        }
        for i in &self.instances {
            let sane = i.alive_s.is_finite() && i.alive_s >= 0.0;
            if !(sane && i.size.vcpu > 0.0 && i.size.memory_gib > 0.0) {
                return Err(Error::of(
                    ErrorKind::Invalid,
                    format!(
                        "an instance alive {} s of {} vCPU and {} GiB cannot be billed",
                        i.alive_s, i.size.vcpu, i.size.memory_gib
                    ),
                    "record each instance's life in seconds (0 or more) and its size above 0",
                ));
            }
        }
        Ok(())
    }
}

/// How much of the run one part of the usage counts for in a period: the run itself (`1`),
/// or a month where instances alive the whole run stay on and everything else recurs.
#[derive(Clone, Copy)]
enum Period {
    Run,
    Month { repeats: f64 },
}

/// Bills `usage` as `product_id` bills, with the discounts the price book offers for it.
pub fn bill(
    book: &PriceBook,
    product_id: &str,
    usage: &UsageRecord,
    opts: &BillOptions,
) -> Result<Bill> {
    usage.check()?;
    let p = book.product(product_id)?;
    let run_lines = lines(p, usage, opts, Period::Run)?;
    let repeats = MONTH_S / usage.span_s;
    let month_lines = lines(p, usage, opts, Period::Month { repeats })?;
    let month_usd = month_lines.iter().map(|l| l.cost_usd).sum();
    let discounts = book
        .discounts
        .iter()
        .filter(|d| d.provider == p.provider && d.applies_to.contains(&p.model))
        .map(|d| {
            let pct = d.up_to_fraction * 100.0;
            let label = match d.kind {
                DiscountKind::Commitment => format!(
                    "with {}: as low as this at the published maximum of {pct:.0}% off, for a commitment you must predict",
                    d.name
                ),
                DiscountKind::Spot => format!(
                    "{} \"up to {pct:.0}%\" off: a ceiling on the saving, not a price; the instance can be taken back",
                    d.name
                ),
            };
            DiscountedMonth {
                id: d.id.clone(),
                name: d.name.clone(),
                kind: d.kind,
                up_to_fraction: d.up_to_fraction,
                as_low_as_usd: month_usd * (1.0 - d.up_to_fraction),
                label,
            }
        })
        .collect();
    Ok(Bill {
        product_id: p.id.clone(),
        product: p.product.clone(),
        provider: p.provider.clone(),
        region: p.region.clone(),
        rule: p.billing.rule.clone(),
        source: p.source.clone(),
        date_read: p.date_read.clone(),
        run_usd: run_lines.iter().map(|l| l.cost_usd).sum(),
        run_lines,
        month_lines,
        month_usd,
        discounts,
    })
}

/// Bills `usage` with every product in the book.
pub fn bill_all(book: &PriceBook, usage: &UsageRecord, opts: &BillOptions) -> Result<Vec<Bill>> {
    book.products
        .iter()
        .map(|p| bill(book, &p.id, usage, opts))
        .collect()
}

fn line(what: &str, quantity: f64, unit: Unit, p: &Product) -> Result<Line> {
    let price_usd = p.rate(unit)?;
    Ok(Line {
        what: what.to_string(),
        quantity,
        unit,
        price_usd,
        cost_usd: quantity * price_usd,
    })
}

fn lines(
    p: &Product,
    usage: &UsageRecord,
    opts: &BillOptions,
    period: Period,
) -> Result<Vec<Line>> {
    let repeats = match period {
        Period::Run => 1.0,
        Period::Month { repeats } => repeats,
    };
    let million_requests = usage.request_seconds.len() as f64 * repeats / 1e6;
    // Each request's time rounded as the product rounds it, summed, for the period; a product
    // that bills its INIT phase bills a cold request's start with it.
    let bills_init = p.billing.init.as_ref().is_some_and(|i| i.billed);
    let billed_request_s = usage
        .request_seconds
        .iter()
        .zip(&usage.cold_start_seconds)
        .map(|(s, start)| p.billed_seconds(if bills_init { s + start } else { *s }))
        .sum::<f64>()
        * repeats;
    // Each instance's billed seconds in the period, with its size.
    let instance_s: Vec<(f64, Size)> = usage
        .instances
        .iter()
        .map(|i| match period {
            Period::Month { .. } if i.whole_span => (p.billed_seconds(MONTH_S), i.size),
            _ => (p.billed_seconds(i.alive_s) * repeats, i.size),
        })
        .collect();
    let vcpu_s: f64 = instance_s.iter().map(|(s, size)| s * size.vcpu).sum();
    let gib_s: f64 = instance_s.iter().map(|(s, size)| s * size.memory_gib).sum();
    match (p.model, p.size) {
        (Model::Function, _) => {
            let gb = match opts.function_memory_gb {
                Some(gb) if gb.is_finite() && gb > 0.0 => gb,
                Some(gb) => {
                    return Err(Error::of(
                        ErrorKind::Invalid,
                        format!("a function's memory cannot be {gb} GB"),
                        "give the memory a function is configured with, in GB above 0",
                    ));
                }
                None => p.full_vcpu_memory_mb.unwrap_or(1024.0) / 1024.0,
            };
            Ok(vec![
                line("requests", million_requests, Unit::MillionRequests, p)?,
                line(
                    &format!(
                        "invocation time{} at {gb:.3} GB, each rounded up",
                        if bills_init {
                            " (a cold one's INIT included)"
                        } else {
                            ""
                        }
                    ),
                    billed_request_s * gb,
                    Unit::GbSecond,
                    p,
                )?,
            ])
        }
        (Model::Container, _) | (Model::Instance, None) => Ok(vec![
            line(
                "vCPU time of every instance's life",
                vcpu_s / 3600.0,
                Unit::VcpuHour,
                p,
            )?,
            line(
                "memory time of every instance's life",
                gib_s / 3600.0,
                Unit::GbHour,
                p,
            )?,
        ]),
        (Model::Instance, Some(type_size)) => {
            // A measured instance larger than the type needs several of them.
            let hours: f64 = instance_s
                .iter()
                .map(|(s, size)| {
                    let per =
                        (size.vcpu / type_size.vcpu).max(size.memory_gib / type_size.memory_gib);
                    s / 3600.0 * per.ceil()
                })
                .sum();
            Ok(vec![line(
                "instance hours, each life rounded up",
                hours,
                Unit::InstanceHour,
                p,
            )?])
        }
        (Model::RequestContainer, _) => {
            // Concurrency 1: each instance serves one request at a time, as the run's did, so
            // every request's time is billed at the instance's whole size.
            let size = opts.request_container;
            Ok(vec![
                line("requests", million_requests, Unit::MillionRequests, p)?,
                line(
                    &format!(
                        "vCPU time while serving, {} vCPU at concurrency 1",
                        size.vcpu
                    ),
                    billed_request_s * size.vcpu,
                    Unit::VcpuSecond,
                    p,
                )?,
                line(
                    &format!(
                        "memory time while serving, {} GiB at concurrency 1",
                        size.memory_gib
                    ),
                    billed_request_s * size.memory_gib,
                    Unit::GibSecond,
                    p,
                )?,
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{book, close};

    /// 100 s measured: three requests of 12.3 ms, 0.5 s and 1 s; one instance of 1 vCPU and
    /// 2 GiB alive the whole time, one alive 12 s.
    fn usage() -> UsageRecord {
        let size = Size {
            vcpu: 1.0,
            memory_gib: 2.0,
        };
        let inst = |alive_s, whole_span| InstanceUsage {
            alive_s,
            whole_span,
            size,
            cpu_s: 0.0,
            memory_gib_s: 0.0,
        };
        UsageRecord {
            span_s: 100.0,
            request_seconds: vec![0.0123, 0.5, 1.0],
            cold_start_seconds: vec![0.0; 3],
            instances: vec![inst(100.0, true), inst(12.0, false)],
        }
    }

    #[test]
    fn lambda_bills_a_cold_requests_start_and_cloud_run_as_its_data_says() {
        let one = |cold_start_s| UsageRecord {
            span_s: 100.0,
            request_seconds: vec![0.010],
            cold_start_seconds: vec![cold_start_s],
            instances: vec![],
        };
        let opts = BillOptions {
            function_memory_gb: Some(2.0),
            ..BillOptions::default()
        };
        let lambda = book().product("aws-lambda-x86").unwrap().clone();
        assert!(lambda.billing.init.as_ref().unwrap().billed);
        let warm = bill(&book(), "aws-lambda-x86", &one(0.0), &opts).unwrap();
        let cold = bill(&book(), "aws-lambda-x86", &one(0.004), &opts).unwrap();
        // 4 ms of start more, at 2 GB and the GB-second rate.
        close(
            cold.run_usd - warm.run_usd,
            0.004 * 2.0 * lambda.rate(Unit::GbSecond).unwrap(),
        );
        assert!(cold.run_lines[1].what.contains("INIT"));
        // The price file records no INIT billing for Cloud Run: its start is not billed.
        let run_warm = bill(&book(), "gcp-cloud-run", &one(0.0), &opts).unwrap();
        let run_cold = bill(&book(), "gcp-cloud-run", &one(0.004), &opts).unwrap();
        assert_eq!(run_warm.run_usd, run_cold.run_usd);
        // A record with a cold start missing is refused.
        let mut short = one(0.0);
        short.cold_start_seconds.clear();
        let e = bill(&book(), "aws-lambda-x86", &short, &opts).unwrap_err();
        assert!(e.problem().contains("0 cold starts for 1 requests"), "{e}");
    }

    #[test]
    fn lambda_bills_requests_and_gb_seconds_rounded_up_per_ms() {
        let opts = BillOptions {
            function_memory_gb: Some(2.0),
            ..BillOptions::default()
        };
        let b = bill(&book(), "aws-lambda-x86", &usage(), &opts).unwrap();
        // 3 requests at $0.20 a million; (0.013 + 0.5 + 1.0) s × 2 GB at $0.0000166667.
        close(b.run_usd, 3.0 * 0.20 / 1e6 + 3.026 * 0.0000166667);
        // A month is 26 280 runs of 100 s.
        close(b.month_usd, 26_280.0 * (6.0e-7 + 3.026 * 0.0000166667));
        assert!(b.discounts.is_empty());
    }

    #[test]
    fn lambda_defaults_to_the_memory_of_one_vcpu() {
        let b = bill(&book(), "aws-lambda-x86", &usage(), &BillOptions::default()).unwrap();
        close(b.run_lines[1].quantity, 1.513 * 1769.0 / 1024.0);
    }

    #[test]
    fn fargate_bills_per_second_with_a_one_minute_minimum() {
        let b = bill(
            &book(),
            "aws-fargate-x86",
            &usage(),
            &BillOptions::default(),
        )
        .unwrap();
        // (100 s + 60 s minimum) × (1 vCPU × $0.04048 + 2 GB × $0.004445) per hour.
        close(b.run_usd, 160.0 * 0.04937 / 3600.0);
        // Month: the always-on one 730 h; the short one 26 280 times 60 s = 438 h.
        close(b.month_usd, (730.0 + 438.0) * 0.04937);
    }

    #[test]
    fn ec2_bills_per_second_with_a_minute_minimum_and_labelled_discounts() {
        let b = bill(
            &book(),
            "aws-ec2-c7i.large",
            &usage(),
            &BillOptions::default(),
        )
        .unwrap();
        // 100 s always on, and 12 s billed as the one-minute minimum.
        close(b.run_usd, (100.0 + 60.0) / 3600.0 * 0.08925);
        // 730 h always on, plus 26 280 one-minute lives of the short-lived instance.
        let month = (730.0 + 26_280.0 * 60.0 / 3600.0) * 0.08925;
        close(b.month_usd, month);
        let sp = b
            .discounts
            .iter()
            .find(|d| d.id == "aws-ec2-instance-savings-plans")
            .unwrap();
        close(sp.as_low_as_usd, month * 0.28);
        let spot = b
            .discounts
            .iter()
            .find(|d| d.kind == DiscountKind::Spot)
            .unwrap();
        close(spot.as_low_as_usd, month * 0.10);
        assert!(spot.label.contains("ceiling") && spot.label.contains("not a price"));
    }

    #[test]
    fn gce_bills_per_vcpu_and_gb_per_second() {
        let b = bill(&book(), "gcp-gce-e2", &usage(), &BillOptions::default()).unwrap();
        close(b.run_usd, 160.0 * (0.02181 + 2.0 * 0.00292) / 3600.0);
    }

    #[test]
    fn cloud_run_bills_requests_and_serving_time_rounded_to_100_ms() {
        let b = bill(&book(), "gcp-cloud-run", &usage(), &BillOptions::default()).unwrap();
        // 3 requests at $0.40 a million; (0.1 + 0.5 + 1.0) s × (1 vCPU × $0.000024 + 2 GiB × $0.0000025).
        close(b.run_usd, 3.0 * 0.40 / 1e6 + 1.6 * 0.000029);
    }

    #[test]
    fn cloud_run_bills_the_size_it_is_given_at_concurrency_1() {
        let opts = BillOptions {
            request_container: Size {
                vcpu: 2.0,
                memory_gib: 0.5,
            },
            ..BillOptions::default()
        };
        let b = bill(&book(), "gcp-cloud-run", &usage(), &opts).unwrap();
        // (0.1 + 0.5 + 1.0) s × (2 vCPU × $0.000024 + 0.5 GiB × $0.0000025).
        close(
            b.run_usd,
            3.0 * 0.40 / 1e6 + 1.6 * (2.0 * 0.000024 + 0.5 * 0.0000025),
        );
        assert_eq!(
            b.run_lines[1].what,
            "vCPU time while serving, 2 vCPU at concurrency 1"
        );
        assert!(b.run_lines[2].what.contains("0.5 GiB at concurrency 1"));
    }

    #[test]
    fn a_bad_record_or_product_is_refused() {
        let mut u = usage();
        u.span_s = 0.0;
        let e = bill(&book(), "aws-lambda-x86", &u, &BillOptions::default()).unwrap_err();
        assert!(e.problem().contains("span"), "{e}");
        let mut u = usage();
        u.request_seconds.push(-1.0);
        assert!(bill(&book(), "aws-lambda-x86", &u, &BillOptions::default()).is_err());
        let e = bill(
            &book(),
            "azure-functions",
            &usage(),
            &BillOptions::default(),
        )
        .unwrap_err();
        assert!(e.fix().contains("aws-lambda-x86"), "{e}");
        let opts = BillOptions {
            function_memory_gb: Some(0.0),
            ..BillOptions::default()
        };
        assert!(bill(&book(), "aws-lambda-x86", &usage(), &opts).is_err());
    }

    #[test]
    fn every_product_bills_the_same_record() {
        let bills = bill_all(&book(), &usage(), &BillOptions::default()).unwrap();
        assert_eq!(bills.len(), book().products.len());
        assert!(
            bills
                .iter()
                .all(|b| b.run_usd > 0.0 && b.month_usd > b.run_usd)
        );
    }
}
