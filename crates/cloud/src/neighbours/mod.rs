//! Noisy neighbours and overcommit: K tenants sold one vCPU each on a machine with fewer cores,
//! one of them greedy (it spins on every core it can get), the others serving a seeded trace.
//! What one serving tenant, the victim, sees — its requests' p99 and how long it waited for a
//! CPU — against the overcommit ratio (vCPUs sold over cores), with a CPU quota per tenant
//! and without.
//!
//! This module holds what needs no machine: the plan and its checks, the results and the
//! sentences computed from them; [`watch`] reads each instance's run-queue wait, the figure a
//! VM in its place would see as steal time. The runs themselves need chapter 7's containers
//! and live in the facade.

pub mod watch;

use crate::error::{Error, Result};
use crate::serve::percentile;
use crate::trace::TraceSpec;
use serde::{Deserialize, Serialize};
use virtlab_core::load::Load;
use virtlab_core::stats::CLEAR_RATIO;

/// The most tenants one point may start: each is a container and a front's threads, and the
/// machine has a couple of cores.
pub const MAX_TENANTS: usize = 16;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighbourSpec {
    /// Overcommit ratios: vCPUs sold over the cores they share (1 = none sold twice).
    pub ratios: Vec<f64>,
    /// The cores the tenants share (this machine's usable CPUs).
    pub cores: usize,
    /// vCPUs each tenant is sold (its quota, when quotas are on).
    pub vcpu: f64,
    /// Each serving tenant's requests per second in a steady stretch of its trace.
    pub rate_per_s: f64,
    /// Seconds each serving tenant's trace lasts.
    pub duration_s: f64,
    /// Monte Carlo samples per request: one request's work.
    pub samples_per_request: u64,
    /// The traces' seed (tenant `t` plays seed + t).
    pub seed: u64,
}

impl NeighbourSpec {
    /// Ratios 1×…4× on `cores` cores, one vCPU per tenant, 4-second traces at 20 requests a
    /// second of 200 000 samples each (about a millisecond of work on this lab's machines).
    pub fn new(cores: usize) -> NeighbourSpec {
        NeighbourSpec {
            ratios: vec![1.0, 2.0, 3.0, 4.0],
            cores,
            vcpu: 1.0,
            rate_per_s: 20.0,
            duration_s: 4.0,
            samples_per_request: 200_000,
            seed: 1,
        }
    }

    /// Tenants at `ratio`: the vCPUs sold (ratio × cores) in tenants of `vcpu` each.
    pub fn tenants(&self, ratio: f64) -> usize {
        (ratio * self.cores as f64 / self.vcpu).round() as usize
    }

    /// The trace tenant `tenant` serves: steady, a burst of twice the rate and an idle
    /// stretch, each a third of the duration.
    pub fn trace(&self, tenant: usize) -> TraceSpec {
        TraceSpec {
            rate_per_s: self.rate_per_s,
            duration_s: self.duration_s,
            stretch_s: self.duration_s / 3.0,
            burst_factor: 2.0,
            seed: self.seed.wrapping_add(tenant as u64),
        }
    }

    /// Refuses a plan that cannot run: no ratios, a ratio of 0, fewer than two tenants (a
    /// greedy one and a victim) or more than [`MAX_TENANTS`], a tenant sold more than the
    /// machine, a trace that cannot be played.
    pub fn check(&self) -> Result<()> {
        if self.cores == 0 {
            return Err(Error::invalid(
                "the cores the tenants share",
                0,
                "give 1 or more (the machine's usable CPUs)",
            ));
        }
        if !(self.vcpu.is_finite() && self.vcpu > 0.0 && self.vcpu <= self.cores as f64) {
            return Err(Error::invalid(
                "a tenant's vCPUs",
                self.vcpu,
                format!(
                    "sell each tenant more than 0 and at most the {} cores there are",
                    self.cores
                ),
            ));
        }
        if self.ratios.is_empty() {
            return Err(Error::new(
                "no overcommit ratios to measure",
                "give one or more, e.g. 1,2,3,4",
            ));
        }
        for &ratio in &self.ratios {
            if !(ratio.is_finite() && ratio > 0.0) {
                return Err(Error::invalid(
                    "an overcommit ratio",
                    ratio,
                    "give vCPUs sold over cores above 0, e.g. 1 (none sold twice) to 4",
                ));
            }
            let tenants = self.tenants(ratio);
            if tenants < 2 {
                return Err(Error::invalid(
                    &format!("the tenants at ratio {ratio}"),
                    tenants,
                    format!(
                        "give a ratio of at least {} so there are 2 tenants (a greedy one and a victim) of {} vCPU on {} cores",
                        2.0 * self.vcpu / self.cores as f64,
                        self.vcpu,
                        self.cores
                    ),
                ));
            }
            if tenants > MAX_TENANTS {
                return Err(Error::invalid(
                    &format!("the tenants at ratio {ratio}"),
                    tenants,
                    format!(
                        "give a ratio of at most {} ({MAX_TENANTS} tenants of {} vCPU on {} cores)",
                        MAX_TENANTS as f64 * self.vcpu / self.cores as f64,
                        self.vcpu,
                        self.cores
                    ),
                ));
            }
        }
        if self.samples_per_request == 0 {
            return Err(Error::invalid(
                "the samples per request",
                0,
                "give 1 or more (200000 is about a millisecond of work)",
            ));
        }
        virtlab_core::error::check_range("the trace's seconds", self.duration_s, 0.5, 600.0)?;
        self.trace(0).check()
    }
}

/// One serving tenant's run, as the victim's row shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRun {
    /// Requests it served.
    pub served: usize,
    /// Its requests' latencies through the socket, seconds.
    pub latencies_s: Vec<f64>,
    /// How long its instance lived, seconds.
    pub alive_s: f64,
    /// CPU time its instance's main thread got, seconds.
    pub cpu_s: f64,
    /// Time its instance's main thread was runnable but waited for a CPU, seconds.
    pub waited_s: f64,
}

impl TenantRun {
    /// The p99 of its latencies, seconds.
    pub fn p99_s(&self) -> Option<f64> {
        percentile(&self.latencies_s, 99.0)
    }

    /// The p50 of its latencies, seconds.
    pub fn p50_s(&self) -> Option<f64> {
        percentile(&self.latencies_s, 50.0)
    }

    /// The share of its life it waited for a CPU: what a VM tenant in its place would read
    /// as steal time in its own `/proc/stat`.
    pub fn steal_share(&self) -> f64 {
        if self.alive_s > 0.0 {
            self.waited_s / self.alive_s
        } else {
            0.0
        }
    }
}

/// One point: `tenants` tenants at `ratio`, with or without quotas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub ratio: f64,
    pub tenants: usize,
    /// Each tenant's CPU quota was its vCPUs (cgroup `cpu.max` / `cpu.cfs_quota_us`).
    pub quotas: bool,
    /// The first serving tenant.
    pub victim: TenantRun,
    /// Every serving tenant's requests together, p99 (seconds).
    pub all_p99_s: Option<f64>,
    /// CPU-seconds the greedy tenant got (its cgroup's counter, or its pid 1's).
    pub greedy_cpu_s: f64,
    /// How long the point took, seconds.
    pub seconds: f64,
    /// What the rest of the machine did meanwhile, and this machine's own steal (it is a
    /// guest too): `/proc/stat`.
    pub load: Option<Load>,
}

/// The whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbours {
    pub spec: NeighbourSpec,
    /// The CPU it ran on.
    pub cpu: String,
    pub points: Vec<Point>,
}

/// Borg's published figure, labelled as such.
pub const BORG: &str = "Published (Verma et al., \"Large-scale cluster management at Google with Borg\", EuroSys 2015): Borg runs latency-sensitive serving jobs and batch jobs on the same machines and shares them out by priority and cgroup limits; segregating the two would need 20-30% more machines in the median cell.";

fn ms(s: f64) -> String {
    format!("{:.1} ms", s * 1e3)
}

impl Neighbours {
    /// The points with quotas (`true`) or without, in the order of the ratios.
    pub fn line(&self, quotas: bool) -> Vec<&Point> {
        self.points.iter().filter(|p| p.quotas == quotas).collect()
    }

    /// The pairs (with quotas, without) measured at the same ratio.
    fn pairs(&self) -> Vec<(&Point, &Point)> {
        self.line(true)
            .into_iter()
            .filter_map(|q| {
                self.line(false)
                    .into_iter()
                    .find(|n| n.ratio == q.ratio)
                    .map(|n| (q, n))
            })
            .collect()
    }

    /// What this run measured, in sentences computed from it.
    pub fn what_we_saw(&self) -> Vec<String> {
        let mut said = Vec::new();
        let pairs: Vec<(&Point, &Point, f64, f64)> = self
            .pairs()
            .into_iter()
            .filter_map(|(q, n)| Some((q, n, q.victim.p99_s()?, n.victim.p99_s()?)))
            .collect();
        if let Some(&(q, n, with, without)) = pairs.last() {
            said.push(quotas_said(&pairs, self.spec.cores));
            said.push(format!(
                "At {}× ({} tenants on {} cores) the victim's p99 was {} with quotas and {} without: {}.",
                q.ratio,
                q.tenants,
                self.spec.cores,
                ms(with),
                ms(without),
                compared(with, without)
            ));
            said.push(format!(
                "The greedy tenant got {:.2} CPU-seconds a second without quotas and {:.2} with (sold {} vCPU) at {}×.",
                n.greedy_cpu_s / n.seconds.max(1e-9),
                q.greedy_cpu_s / q.seconds.max(1e-9),
                self.spec.vcpu,
                q.ratio
            ));
        }
        if let Some(worst) = self
            .points
            .iter()
            .max_by(|a, b| a.victim.steal_share().total_cmp(&b.victim.steal_share()))
        {
            said.push(format!(
                "The victim waited for a CPU {:.1}% of its life at worst ({}×, {}): a VM tenant in its place would read that as steal time, since KVM reports a vCPU thread's run-queue wait to its guest as steal. Read from /proc/<pid>/schedstat of the victim's pid 1 on the host.",
                100.0 * worst.victim.steal_share(),
                worst.ratio,
                if worst.quotas { "quotas" } else { "no quotas" }
            ));
        }
        let loads: Vec<&Load> = self.points.iter().filter_map(|p| p.load.as_ref()).collect();
        if let Some(busiest) = Load::busiest(loads.iter().copied()) {
            let steal = loads.iter().map(|l| l.steal_share()).fold(0.0, f64::max);
            said.push(format!(
                "This machine's own steal (it is a guest: the cpu line of its /proc/stat) was at most {:.1}% during a point.",
                100.0 * steal
            ));
            said.push(match busiest.busy_cause() {
                Some(cause) => format!(
                    "Not quiet: {cause}. The tenants' CPU time is ours, so 'other programs' here are outside the experiment."
                ),
                None => format!("The machine was otherwise quiet: at the busiest point {}.", busiest.summary()),
            });
        }
        said.push(BORG.to_string());
        said
    }
}

/// Which way two p99s (with quotas, without) differ, or that they do not clearly.
fn compared(with: f64, without: f64) -> String {
    let (lower, times) = if with < without {
        ("with quotas", without / with.max(1e-9))
    } else {
        ("without quotas", with / without.max(1e-9))
    };
    if times >= CLEAR_RATIO {
        format!("{lower} it was {times:.1}× lower")
    } else {
        format!("no clear difference ({times:.2}×, under the {CLEAR_RATIO}× a clear one needs)")
    }
}

/// At how many ratios quotas clearly helped or hurt the victim's p99, and where neither did,
/// how few requests stood behind each p99 and the likely cause: only the greedy tenant wants
/// CPU, and a serving tenant that barely uses its own is run as soon as it wakes.
fn quotas_said(pairs: &[(&Point, &Point, f64, f64)], cores: usize) -> String {
    let clearly = |quotas_lower: bool| {
        pairs
            .iter()
            .filter(|(_, _, with, without)| {
                let (low, high) = if quotas_lower {
                    (with, without)
                } else {
                    (without, with)
                };
                *high >= low * CLEAR_RATIO
            })
            .count()
    };
    let requests = pairs
        .iter()
        .flat_map(|(q, n, _, _)| [q.victim.served, n.victim.served])
        .min()
        .unwrap_or(0);
    // Nearest-rank p99 of n values is the ⌈0.99 n⌉-th smallest: the slowest few.
    let slowest = requests + 1 - (0.99 * requests as f64).ceil().max(1.0) as usize;
    let sample = format!(
        "each p99 from as few as {requests} requests (so it is the slowest {slowest} of them)"
    );
    let (with, without) = (clearly(true), clearly(false));
    if with + without > 0 {
        return format!(
            "The victim's p99 was clearly (at least {CLEAR_RATIO}×) lower with quotas at {with} of {} ratios and without them at {without}; at the rest there was no clear difference; {sample}.",
            pairs.len()
        );
    }
    let busy = pairs
        .iter()
        .flat_map(|(q, n, _, _)| {
            [
                q.victim.cpu_s / q.victim.alive_s.max(1e-9),
                n.victim.cpu_s / n.victim.alive_s.max(1e-9),
            ]
        })
        .fold(0.0, f64::max);
    format!(
        "Quotas made no clear difference to the victim's p99 at any of {} ratios (none {CLEAR_RATIO}× apart either way), {sample}. The likely cause: only the greedy tenant wants CPU. The victim used at most {:.0}% of a CPU, so on {cores} cores the scheduler runs it as soon as it wakes, quota or not.",
        pairs.len(),
        100.0 * busy
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NeighbourSpec {
        NeighbourSpec::new(2)
    }

    #[test]
    fn the_default_plan_sells_2_to_8_tenants_on_2_cores() {
        let s = spec();
        s.check().unwrap();
        let tenants: Vec<usize> = s.ratios.iter().map(|r| s.tenants(*r)).collect();
        assert_eq!(tenants, [2, 4, 6, 8]);
        assert_ne!(s.trace(1).seed, s.trace(2).seed);
    }

    #[test]
    fn bad_plans_are_refused_with_a_fix() {
        let refused = |s: NeighbourSpec, words: &str| {
            let e = s.check().unwrap_err();
            assert!(e.problem().contains(words), "{e}");
            assert!(!e.fix().is_empty());
        };
        refused(
            NeighbourSpec {
                ratios: vec![0.0],
                ..spec()
            },
            "overcommit ratio cannot be 0",
        );
        refused(
            NeighbourSpec {
                ratios: vec![0.4],
                ..spec()
            },
            "tenants at ratio 0.4 cannot be 1",
        );
        refused(
            NeighbourSpec {
                ratios: vec![0.2],
                ..spec()
            },
            "cannot be 0",
        );
        refused(
            NeighbourSpec {
                ratios: vec![9.0],
                ..spec()
            },
            "tenants at ratio 9 cannot be 18",
        );
        refused(
            NeighbourSpec {
                ratios: vec![],
                ..spec()
            },
            "no overcommit ratios",
        );
        refused(
            NeighbourSpec {
                vcpu: 3.0,
                ..spec()
            },
            "vCPUs cannot be 3",
        );
        refused(
            NeighbourSpec {
                duration_s: 0.0,
                ..spec()
            },
            "seconds cannot be 0",
        );
    }

    fn tenant(latencies_ms: &[f64], waited_s: f64) -> TenantRun {
        TenantRun {
            served: latencies_ms.len(),
            latencies_s: latencies_ms.iter().map(|l| l / 1e3).collect(),
            alive_s: 4.0,
            cpu_s: 0.5,
            waited_s,
        }
    }

    fn point(ratio: f64, quotas: bool, p99_ms: f64, waited_s: f64) -> Point {
        Point {
            ratio,
            tenants: (ratio * 2.0) as usize,
            quotas,
            victim: tenant(&[1.0, 2.0, p99_ms], waited_s),
            all_p99_s: Some(p99_ms / 1e3),
            greedy_cpu_s: if quotas { 4.0 } else { 8.0 },
            seconds: 4.0,
            load: None,
        }
    }

    #[test]
    fn the_sentences_follow_the_figures() {
        let mut n = Neighbours {
            spec: spec(),
            cpu: "test".into(),
            points: vec![
                point(1.0, true, 5.0, 0.1),
                point(1.0, false, 4.0, 0.2),
                point(4.0, true, 10.0, 0.4),
                point(4.0, false, 40.0, 2.0),
            ],
        };
        let said = n.what_we_saw().join("\n");
        assert!(
            said.contains(
                "clearly (at least 1.5×) lower with quotas at 1 of 2 ratios and without them at 0; \
                 at the rest there was no clear difference; each p99 from as few as 3 requests"
            ),
            "{said}"
        );
        assert!(
            said.contains("10.0 ms with quotas and 40.0 ms without: with quotas it was 4.0× lower"),
            "{said}"
        );
        assert!(
            said.contains("2.00 CPU-seconds a second without quotas and 1.00 with"),
            "{said}"
        );
        assert!(
            said.contains("50.0% of its life at worst (4×, no quotas)"),
            "{said}"
        );
        assert!(said.contains("EuroSys 2015"));
        n.points[2] = point(4.0, true, 80.0, 0.4);
        let said = n.what_we_saw().join("\n");
        assert!(said.contains("without quotas it was 2.0× lower"), "{said}");
        // Under the clear ratio at every point: no winner, the sample size and the likely cause.
        n.points[2] = point(4.0, true, 50.0, 0.4);
        n.points[0] = point(1.0, true, 4.4, 0.1);
        let said = n.what_we_saw().join("\n");
        assert!(!said.contains("× lower"), "{said}");
        assert!(
            said.contains("no clear difference (1.25×, under the 1.5× a clear one needs)"),
            "{said}"
        );
        assert!(
            said.contains("as few as 3 requests (so it is the slowest 1 of them)"),
            "{said}"
        );
        assert!(
            said.contains(&format!("used at most {:.0}% of a CPU", 100.0 * 0.5 / 4.0)),
            "{said}"
        );
    }

    #[test]
    fn a_tenant_that_never_waited_saw_no_steal() {
        assert_eq!(tenant(&[1.0], 0.0).steal_share(), 0.0);
        assert_eq!(tenant(&[1.0, 3.0], 1.0).steal_share(), 0.25);
        assert_eq!(tenant(&[1.0, 3.0], 1.0).p99_s(), Some(0.003));
        assert_eq!(tenant(&[], 0.0).p99_s(), None);
    }
}
