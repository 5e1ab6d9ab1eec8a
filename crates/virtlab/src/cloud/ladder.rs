//! The whole ladder on one chart: every rung of the registry this machine can run, measured by
//! the ladder's one method, beside this chapter's cold-started instance and, at the top,
//! Firecracker's published figures (labelled as published, with their source). A rung whose
//! facility is missing here (KVM, MPI, a cluster's root: chapter 8's own check for a rank, the
//! probe's refusal for the others) is left off with the reason.

use crate::cost::compare::{FIRECRACKER, FIRECRACKER_BOOT_MS, FIRECRACKER_VMM_MS};
use crate::cost::{Ladder, duration_text};
use crate::display::Figure;
use crate::error::ErrorKind;
use crate::kinds;
use crate::plot::BarChart;
use crate::{Error, Result};

/// The ladder of every rung that ran, and the rungs left off with why.
#[derive(Debug, Clone)]
pub struct WholeLadder {
    /// The rungs measured (or reused from this boot's saved ladder).
    pub ladder: Ladder,
    /// The count of units alive together the chart compares rungs at.
    pub count: usize,
    /// Each rung this machine could not run, with the missing facility and its fix.
    pub left_off: Vec<(String, String)>,
}

/// Every rung of the registry at `counts` (`rounds` each), as [`Ladder::and`] measures or
/// reuses them; a rung this machine cannot run is left off with the reason, the rest measured.
pub fn measured(counts: &[usize], count: usize, rounds: usize) -> Result<WholeLadder> {
    if !counts.contains(&count) {
        return Err(Error::invalid(
            "the count to compare rungs at",
            count,
            format!("choose one of the counts measured, {counts:?}"),
        ));
    }
    // No kinds yet: the counts and rounds are checked, the machine and CPU named.
    let mut ladder = Ladder::measured(&[], counts, rounds)?;
    let mut left_off = Vec::new();
    for rung in kinds::rungs() {
        if let Err(e) = facility(rung) {
            left_off.push((rung.to_string(), e.sentence()));
            continue;
        }
        match ladder.clone().and(&[rung], counts, rounds) {
            Ok(more) => ladder = more,
            Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Refused) => {
                left_off.push((rung.to_string(), e.sentence()));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(WholeLadder {
        ladder,
        count,
        left_off,
    })
}

/// What `rung` needs of this machine beyond what its probe reports as unavailable: a rank's
/// cluster fails in many ways (not root, no `ip`), so chapter 8's own check is asked first.
fn facility(rung: &str) -> Result<()> {
    #[cfg(target_os = "linux")]
    if rung == "rank" {
        let support = crate::cluster::support::Support::detect();
        return support.nodes.and(support.mpi);
    }
    let _ = rung;
    Ok(())
}

impl WholeLadder {
    /// (kind, ms to start) for each rung measured at the compared count, in ladder order.
    fn rungs(&self) -> Vec<(String, f64)> {
        self.ladder
            .rungs
            .iter()
            .filter(|r| r.count == self.count && r.asked_to_running_ms > 0.0)
            .map(|r| (r.kind.clone(), r.asked_to_running_ms))
            .collect()
    }

    /// One bar per start, on a log axis: Firecracker's published figures at the top, then
    /// this run's cold-started `instance` (its start → ready, `cold_start_s`), then every rung
    /// measured here, from the ladder's top rung down.
    pub fn chart(&self, instance: &str, cold_start_s: Option<f64>) -> Result<Figure> {
        let mut chart = BarChart::new(
            "From a task to a cloud instance: time to start one",
            &["start"],
        )
        .log_x()
        // The CPU is named in the sentence under the chart: here it would run off the edge.
        .x_label(format!(
            "ms from asking to running, log scale (rungs: {} alive)",
            self.count
        ))
        .bar(
            "published: Firecracker guest boot (≤, SPECIFICATION.md)",
            &[FIRECRACKER_BOOT_MS],
        )
        .bar(
            "published: Firecracker VMM start (SPECIFICATION.md)",
            &[FIRECRACKER_VMM_MS],
        );
        if let Some(s) = cold_start_s {
            chart = chart.bar(
                format!("measured: a cold-started {instance} instance (serve, p50)"),
                &[s * 1e3],
            );
        }
        for (kind, ms) in self.rungs().into_iter().rev() {
            chart = chart.bar(format!("measured: {kind} (ladder rung)"), &[ms]);
        }
        chart.render().map_err(Into::into)
    }

    /// From the cheapest rung to the cold-started instance, how many times dearer to start,
    /// with the published figures for scale; and which rungs were left off, and why.
    pub fn dearer(&self, instance: &str, cold_start_s: Option<f64>) -> String {
        let rungs = self.rungs();
        let cheapest = rungs.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let mut said = match (cheapest, cold_start_s) {
            (Some((kind, ms)), Some(s)) => format!(
                "From the cheapest rung to this run's instance: a {kind} started in {} ({} \
                 alive), a cold-started {instance} instance in {} (p50 of every instance the \
                 serve run started), {:.0}× dearer to start, on {}. For scale, not measured \
                 here: {FIRECRACKER}.",
                duration_text(*ms),
                self.count,
                duration_text(s * 1e3),
                s * 1e3 / ms,
                self.ladder.cpu
            ),
            (None, _) => "No rung of the ladder could be measured here.".to_string(),
            (Some(_), None) => {
                "The serve run started no instance, so there is no cold start to set beside \
                 the rungs."
                    .to_string()
            }
        };
        // The same kind on the ladder can be the slower of the two: why, where it is.
        let same_kind = rungs.iter().find(|(kind, _)| kind == instance);
        if let (Some((_, rung_ms)), Some(s)) = (same_kind, cold_start_s)
            && *rung_ms > s * 1e3
        {
            said.push_str(&format!(
                " The {instance} rung took longer ({}): it starts {} at once, and starts that \
                 overlap wait on each other.",
                duration_text(*rung_ms),
                self.count
            ));
        }
        for (rung, why) in &self.left_off {
            said.push_str(&format!("\nLeft off the ladder here: {rung}: {why}"));
        }
        said
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Rung;

    fn whole() -> WholeLadder {
        WholeLadder {
            ladder: Ladder {
                machine: String::new(),
                cpu: "a CPU".into(),
                rungs: vec![
                    Rung::made("task", 16, 0.002, 500.0),
                    Rung::made("process", 16, 2.0, 500_000.0),
                    Rung::made("process", 1, 1.0, 500_000.0),
                ],
            },
            count: 16,
            left_off: vec![("vm".into(), "no /dev/kvm. Fix: load kvm".into())],
        }
    }

    #[test]
    fn the_sentence_counts_from_the_cheapest_rung_and_says_what_was_left_off() {
        let said = whole().dearer("container", Some(0.02));
        assert!(
            said.contains("a task started in 2.0 µs (16 alive)"),
            "{said}"
        );
        assert!(said.contains("in 20.00 ms"), "{said}");
        assert!(said.contains("10000× dearer"), "{said}");
        assert!(
            said.contains("Left off the ladder here: vm: no /dev/kvm"),
            "{said}"
        );
        assert!(!said.contains("rung took longer"), "{said}");
        // A process instance that started faster than the process rung's 2 ms says why.
        let process = whole().dearer("process", Some(0.0015));
        assert!(
            process.contains("The process rung took longer (2.00 ms): it starts 16 at once"),
            "{process}"
        );
        let none = whole().dearer("container", None);
        assert!(none.contains("no cold start"), "{none}");
    }

    #[test]
    fn the_chart_draws_the_published_the_instance_and_each_rung() {
        let figure = whole().chart("container", Some(0.02)).unwrap();
        assert!(figure.svg().contains("published: Firecracker guest boot"));
        assert!(figure.svg().contains("measured: task (ladder rung)"));
        assert!(!figure.png().is_empty());
    }

    #[test]
    fn a_count_that_was_not_measured_is_refused() {
        let e = measured(&[1, 4], 16, 3).unwrap_err();
        assert!(e.fix().contains("[1, 4]"), "{e}");
    }
}
