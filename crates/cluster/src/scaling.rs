//! Scaling of the parallel hit count across the cluster: the same job at 1, 2, … ranks, each
//! rank count run several times (median), split into what the ranks compute and what their
//! reduction (communication) takes. *Strong* scaling keeps the samples fixed (more ranks, less
//! each); *weak* scaling gives every rank the same share (samples ∝ ranks). On this machine
//! both flatten at its cores: ranks beyond them take turns on the same CPUs.

use crate::cluster::Cluster;
use crate::kind::MAX_RANKS;
use crate::mpi::{MpiRun, Mpirun, Program, RankLine};
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use virtlab_core::load::{self, Load};
use virtlab_core::stats::median;
use virtlab_display::Figure;
use virtlab_display::plot::{BarChart, LineChart};

/// Which scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Fixed total samples.
    Strong,
    /// Fixed samples per rank.
    Weak,
}

/// What to sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingPlan {
    /// Strong or weak.
    pub scaling: Scaling,
    /// Strong: the total samples; weak: the samples per rank.
    pub samples: u64,
    /// The hit count's seed.
    pub seed: u64,
    /// The rank counts, in order.
    pub ranks: Vec<usize>,
    /// Runs per rank count (the median is kept), at least 3.
    pub repeats: usize,
}

impl ScalingPlan {
    /// 1..=8 ranks, 3 runs each.
    pub fn new(scaling: Scaling, samples: u64) -> ScalingPlan {
        ScalingPlan {
            scaling,
            samples,
            seed: 7,
            ranks: (1..=8).collect(),
            repeats: 3,
        }
    }

    /// The total samples at `ranks` ranks.
    pub fn samples_at(&self, ranks: usize) -> u64 {
        match self.scaling {
            Scaling::Strong => self.samples,
            Scaling::Weak => self.samples * ranks as u64,
        }
    }

    /// Refuses a plan that cannot measure anything trustworthy, with the fix.
    pub fn check(&self) -> Result<()> {
        if self.repeats < 3 {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!(
                    "{} runs per rank count give no trustworthy median",
                    self.repeats
                ),
                "ask for 3 runs or more",
            ));
        }
        if self.ranks.is_empty() || self.ranks.contains(&0) {
            return Err(Error::of(
                ErrorKind::Invalid,
                "a scaling sweep needs rank counts of 1 or more",
                "give rank counts such as 1 to 8",
            ));
        }
        if let Some(&most) = self.ranks.iter().find(|&&r| r > MAX_RANKS) {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("a scaling sweep cannot start {most} ranks"),
                format!("give rank counts from 1 to {MAX_RANKS}"),
            ));
        }
        if self.samples == 0 {
            return Err(Error::of(
                ErrorKind::Invalid,
                "a scaling sweep of 0 samples measures nothing",
                "give 1 000 000 samples or more",
            ));
        }
        if self.scaling == Scaling::Weak && self.samples.checked_mul(MAX_RANKS as u64).is_none() {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!(
                    "{} samples per rank overflow a weak sweep's total",
                    self.samples
                ),
                "give fewer samples per rank, e.g. 10 000 000",
            ));
        }
        Ok(())
    }
}

/// One rank count's medians.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingPoint {
    /// Ranks.
    pub ranks: usize,
    /// Total samples.
    pub samples: u64,
    /// The reduced hit count (the same in every run).
    pub hits: u64,
    /// The slowest rank's compute time (the job waits for it), median over the runs, ms.
    pub compute_ms: f64,
    /// The slowest rank's reduction time, median, ms: mostly communication, as the other
    /// ranks are the ones that wait.
    pub communicate_ms: f64,
    /// The slowest rank's MPI_Init, median, ms.
    pub init_ms: f64,
    /// mpirun from start to exit, median, ms.
    pub wall_ms: f64,
    /// Strong: compute at 1 rank ÷ (ranks × compute here); weak: compute at 1 rank ÷ compute
    /// here. 1.0 is perfect; None without a 1-rank point.
    pub efficiency: Option<f64>,
    /// What other programs and the hypervisor took while this rank count's runs ran (`None`
    /// where /proc/stat cannot be read).
    #[serde(default)]
    pub load: Option<Load>,
}

/// The (init, compute, reduce) of one run's slowest rank — the one that computed longest,
/// which the job waits for — all three from that one rank, so that they add up to a real
/// rank's time (the others' reduce includes waiting for it).
fn slowest(run: &MpiRun) -> (f64, f64, f64) {
    run.lines
        .iter()
        .filter_map(|l| match l {
            RankLine::Hits {
                init_ms,
                compute_ms,
                reduce_ms,
                ..
            } => Some((*init_ms, *compute_ms, *reduce_ms)),
            _ => None,
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0.0, 0.0, 0.0))
}

/// Runs the plan across all of `cluster`'s nodes (mpirun, ranks yielding while they wait:
/// the nodes share this machine's cores). An error if any run fails or two runs of one rank
/// count disagree on the hits.
pub fn sweep(cluster: &Cluster, plan: &ScalingPlan) -> Result<Vec<ScalingPoint>> {
    plan.check()?;
    let mut points: Vec<ScalingPoint> = Vec::new();
    for &ranks in &plan.ranks {
        let samples = plan.samples_at(ranks);
        let program = Program::Hits {
            samples,
            seed: plan.seed,
        };
        let mut hits = None;
        let (mut init, mut compute, mut reduce, mut wall) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // The ranks end as children of their node's first process, not ours: their CPU time is
        // read from the nodes' cgroups, so it is not taken for other programs'.
        let sampler = load::Sampler::start_counting(&cluster.cgroup_dirs());
        for _ in 0..plan.repeats {
            let run = Mpirun::new(cluster, ranks)
                .yield_when_idle(true)
                .timeout(Duration::from_secs(300))
                .run(&program)?;
            let total = run.total_hits().filter(|_| run.exit_code == Some(0));
            let Some(total) = total else {
                return Err(Error::new(
                    format!(
                        "the hit count at {ranks} ranks failed: {}",
                        run.stderr.trim()
                    ),
                    "run it again; if it keeps failing, try fewer ranks",
                ));
            };
            if *hits.get_or_insert(total) != total {
                return Err(Error::new(
                    format!("two runs at {ranks} ranks counted different hits"),
                    "report this: the same seed must give the same count",
                ));
            }
            let (i, c, r) = slowest(&run);
            init.push(i);
            compute.push(c);
            reduce.push(r);
            wall.push(run.wall_ms);
        }
        points.push(ScalingPoint {
            ranks,
            samples,
            hits: hits.unwrap_or(0),
            compute_ms: median(&mut compute),
            communicate_ms: median(&mut reduce),
            init_ms: median(&mut init),
            wall_ms: median(&mut wall),
            efficiency: None,
            load: sampler.stop(),
        });
    }
    let base = points.iter().find(|p| p.ranks == 1).map(|p| p.compute_ms);
    for p in &mut points {
        p.efficiency = base
            .filter(|_| p.compute_ms > 0.0)
            .map(|one| match plan.scaling {
                Scaling::Strong => one / (p.ranks as f64 * p.compute_ms),
                Scaling::Weak => one / p.compute_ms,
            });
    }
    Ok(points)
}

/// The points as a text table.
pub fn table(points: &[ScalingPoint]) -> String {
    let mut out = format!(
        "{:>5} {:>12} {:>12} {:>11} {:>14} {:>9} {:>9} {:>10}\n",
        "ranks",
        "samples",
        "hits",
        "compute ms",
        "communicate ms",
        "init ms",
        "wall ms",
        "efficiency"
    );
    for p in points {
        out.push_str(&format!(
            "{:>5} {:>12} {:>12} {:>11.1} {:>14.2} {:>9.0} {:>9.0} {:>10}\n",
            p.ranks,
            p.samples,
            p.hits,
            p.compute_ms,
            p.communicate_ms,
            p.init_ms,
            p.wall_ms,
            p.efficiency.map_or("-".into(), |e| format!("{e:.2}"))
        ));
    }
    out
}

/// Speed-up against ranks: strong scaling's compute and whole run (time at 1 rank ÷ time at
/// N), weak scaling's scaled speed-up (N × time at 1 rank ÷ time at N), and the ideal, N.
pub fn plot(strong: &[ScalingPoint], weak: &[ScalingPoint]) -> Result<Figure> {
    let speedup = |points: &[ScalingPoint], time: fn(&ScalingPoint) -> f64, scaled: bool| {
        let one = points.iter().find(|p| p.ranks == 1).map(time);
        points
            .iter()
            .filter_map(|p| {
                let one = one.filter(|_| time(p) > 0.0)?;
                let n = if scaled { p.ranks as f64 } else { 1.0 };
                Some((p.ranks as f64, n * one / time(p)))
            })
            .collect::<Vec<_>>()
    };
    let most = strong
        .iter()
        .chain(weak)
        .map(|p| p.ranks)
        .max()
        .unwrap_or(1);
    Ok(LineChart::new("Scaling the hit count over the ranks")
        .x_label("ranks")
        .y_label("speed-up over 1 rank")
        .dashed_series(
            "ideal (N ranks, N× faster)",
            (1..=most).map(|n| (n as f64, n as f64)),
        )
        .series("strong: compute", speedup(strong, |p| p.compute_ms, false))
        .series("strong: whole run", speedup(strong, |p| p.wall_ms, false))
        .series(
            "weak: compute, scaled",
            speedup(weak, |p| p.compute_ms, true),
        )
        .render()?)
}

/// Where each rank count's time went (strong scaling, the slowest rank, medians):
/// MPI_Init, compute, communicate.
pub fn split_plot(points: &[ScalingPoint]) -> Result<Figure> {
    let mut chart = BarChart::new(
        "Strong scaling: where the slowest rank's time went",
        &["MPI_Init", "compute", "communicate"],
    )
    .x_label("milliseconds");
    for p in points {
        chart = chart.bar(
            match p.ranks {
                1 => "1 rank".to_string(),
                n => format!("{n} ranks"),
            },
            &[p.init_ms, p.compute_ms, p.communicate_ms],
        );
    }
    Ok(chart.render()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_rank_is_one_rank_not_each_parts_maximum() {
        let hits = |rank, init_ms, compute_ms, reduce_ms| RankLine::Hits {
            rank,
            size: 2,
            node: format!("node-{rank}"),
            samples: 10,
            hits: 8,
            init_ms,
            compute_ms,
            reduce_ms,
        };
        let run = MpiRun {
            command: String::new(),
            // Rank 0 computed for less and waited 30 ms in the reduce for rank 1.
            lines: vec![hits(0, 300.0, 50.0, 30.0), hits(1, 250.0, 80.0, 0.5)],
            exit_code: Some(0),
            stderr: String::new(),
            first_line_ms: None,
            wall_ms: 400.0,
        };
        assert_eq!(slowest(&run), (250.0, 80.0, 0.5));
    }

    #[test]
    fn plans_are_checked_and_weak_samples_grow_with_ranks() {
        let strong = ScalingPlan::new(Scaling::Strong, 1_000);
        assert_eq!(strong.samples_at(8), 1_000);
        assert_eq!(strong.ranks, (1..=8).collect::<Vec<_>>());
        assert!(strong.check().is_ok());
        let weak = ScalingPlan::new(Scaling::Weak, 1_000);
        assert_eq!(weak.samples_at(8), 8_000);
        let few = ScalingPlan {
            repeats: 2,
            ..strong.clone()
        };
        assert!(few.check().unwrap_err().fix().contains("3 runs"));
        let zero = ScalingPlan {
            ranks: vec![0, 1],
            ..strong.clone()
        };
        assert!(zero.check().is_err());
        let many = ScalingPlan {
            ranks: vec![1, MAX_RANKS + 1],
            ..strong.clone()
        };
        assert!(many.check().unwrap_err().to_string().contains("65 ranks"));
        let nothing = ScalingPlan {
            samples: 0,
            ..strong
        };
        assert!(nothing.check().is_err());
        let overflowing = ScalingPlan {
            samples: u64::MAX / 2,
            ..weak
        };
        assert!(
            overflowing
                .check()
                .unwrap_err()
                .to_string()
                .contains("overflow")
        );
    }

    fn point(ranks: usize, compute_ms: f64) -> ScalingPoint {
        ScalingPoint {
            ranks,
            samples: 1_000,
            hits: 785,
            compute_ms,
            communicate_ms: 1.0,
            init_ms: 200.0,
            wall_ms: 400.0 + compute_ms,
            efficiency: None,
            load: None,
        }
    }

    #[test]
    fn the_charts_draw_every_rank_count() {
        let strong = [point(1, 80.0), point(2, 40.0), point(4, 40.0)];
        let weak = [point(1, 20.0), point(2, 20.0)];
        assert!(
            plot(&strong, &weak)
                .unwrap()
                .svg()
                .contains("strong: compute")
        );
        assert!(split_plot(&strong).unwrap().svg().contains("4 ranks"));
    }
}
