//! "What this run measured": chapter 8's sentences, each computed from the run's own numbers
//! (never fixed text), one function per measurement, and [`Findings`], the table that gathers
//! them at the end of the notebook (a part that was skipped says so).

use crate::beside::{self, Rungs};
use crate::fault::Fault;
use crate::live::Hello;
use crate::pingpong::{PingpongReport, YieldTrap};
use crate::scaling::ScalingPoint;
use crate::slurm::QueueDemo;
use virtlab_core::load::{self, Load};
use virtlab_core::stats::CLEAR_RATIO;
use virtlab_display::Table;

/// The ranks' start: mpirun → first line, and how much of it MPI_Init was.
pub fn start_said(hello: &Hello) -> String {
    let (Some(first), Some(init)) = (hello.first_line_ms(), hello.init_ms()) else {
        return "No rank printed a line, so the start was not measured.".into();
    };
    let share = init / first;
    let verdict = if share >= 0.5 {
        "MPI_Init is most of a rank's start"
    } else {
        "most of the start came before MPI_Init: mpirun launching its daemon on each node and the ranks' programs"
    };
    format!(
        "From asking mpirun to the first rank's line: {first:.0} ms, of which MPI_Init (the median \
         of {} ranks) took {init:.0} ms ({:.0} %): {verdict}.",
        hello.run.units.len(),
        share * 100.0
    )
}

/// Strong and weak scaling of the hit count, and why they flatten, from the points and the
/// CPUs this machine has.
pub fn scaling_said(strong: &[ScalingPoint], weak: &[ScalingPoint], cpus: usize) -> String {
    let Some(one) = strong.iter().find(|p| p.ranks == 1) else {
        return "Strong scaling had no 1-rank run to compare with.".into();
    };
    let Some(best) = strong
        .iter()
        .filter(|p| p.compute_ms > 0.0)
        .min_by(|a, b| a.compute_ms.total_cmp(&b.compute_ms))
    else {
        return "Strong scaling measured no compute time.".into();
    };
    let speedup = one.compute_ms / best.compute_ms;
    let mut said = if speedup >= 1.2 {
        format!(
            "Strong scaling: the compute ran at best {speedup:.1}× faster than on 1 rank, at {} \
             ranks ({:.0} ms against {:.0} ms).",
            best.ranks, best.compute_ms, one.compute_ms
        )
    } else {
        let why = match Load::busiest(strong.iter().filter_map(|p| p.load.as_ref())) {
            Some(load) if load.is_busy() => load.busy_cause().unwrap_or_default(),
            Some(load) => format!(
                "other programs do not explain it ({}), so look at the nodes' CPU limits: their \
                 instance types may add up to less than a CPU per rank",
                load.summary()
            ),
            None => "whether other programs took the CPUs cannot be read here (/proc/stat)".into(),
        };
        format!(
            "Strong scaling: the compute never ran clearly faster than on 1 rank (best {speedup:.2}× \
             at {} ranks): {why}.",
            best.ranks
        )
    };
    let at_cpus = strong.iter().find(|p| p.ranks == cpus);
    let most = strong.iter().max_by_key(|p| p.ranks);
    if let (Some(at), Some(most)) = (at_cpus, most)
        && most.ranks > cpus
    {
        said += &if most.compute_ms >= at.compute_ms * 0.8 {
            format!(
                " Beyond this machine's {cpus} CPUs it flattens: at {} ranks the slowest rank \
                 computed for {:.0} ms, against {:.0} ms at {cpus} — the extra ranks take turns on \
                 the same cores.",
                most.ranks, most.compute_ms, at.compute_ms
            )
        } else {
            let why = match at.load.as_ref().and_then(Load::busy_cause) {
                Some(cause) => format!("at {cpus} ranks, {cause}"),
                None => format!(
                    "the {cpus}-rank runs were slower than these cores allow, and other programs \
                     do not explain it: re-run to tell it from run-to-run noise"
                ),
            };
            format!(
                " Beyond this machine's {cpus} CPUs it still fell, from {:.0} ms at {cpus} ranks to \
                 {:.0} ms at {}: {why}.",
                at.compute_ms, most.compute_ms, most.ranks
            )
        };
    }
    if one.init_ms > one.compute_ms {
        said += &format!(
            " MPI_Init alone ({:.0} ms) took longer than 1 rank's whole computation ({:.0} ms): at \
             this size, starting ranks costs more than the work they share.",
            one.init_ms, one.compute_ms
        );
    }
    if let Some(most) = most.filter(|m| m.compute_ms + m.communicate_ms > 0.0) {
        said += &format!(
            " At {} ranks, communication (the slowest rank's reduction) was \
             {:.0} % of compute plus communication.",
            most.ranks,
            100.0 * most.communicate_ms / (most.compute_ms + most.communicate_ms)
        );
    }
    if let (Some(w1), Some(wn)) = (
        weak.iter().find(|p| p.ranks == 1),
        weak.iter().max_by_key(|p| p.ranks).filter(|p| p.ranks > 1),
    ) {
        said += &format!(
            " Weak scaling (the same share per rank): {:.0} ms at 1 rank, {:.0} ms at {} ranks, an \
             efficiency of {:.2} (1.00 would be no slower).",
            w1.compute_ms,
            wn.compute_ms,
            wn.ranks,
            w1.compute_ms / wn.compute_ms.max(f64::MIN_POSITIVE)
        );
    }
    said
}

/// One node against two: the smallest message's latency, the largest's bandwidth.
pub fn pingpong_said(report: &PingpongReport) -> String {
    let (Some(first), Some(large)) = (report.points.first(), report.points.last()) else {
        return "The ping-pong measured no message size.".into();
    };
    // A message cannot cost more than a larger one: when the smallest did, across nodes, by
    // more than the clear ratio, it measured something else (the first round trips' warm-up,
    // another program on these CPUs), and the next size speaks for small messages.
    let (small, caution) = match report.points.get(1) {
        Some(next) if first.two_nodes_us > next.two_nodes_us * CLEAR_RATIO => (
            next,
            format!(
                " (The {} message took {:.1} µs across nodes, more than this {}: it measured \
                 something else — the first round trips' warm-up or another program on these \
                 CPUs — so the larger size stands for small messages.)",
                virtlab_core::units::bytes(first.bytes as u64),
                first.two_nodes_us,
                virtlab_core::units::bytes(next.bytes as u64)
            ),
        ),
        _ => (first, String::new()),
    };
    let ratio = small.two_nodes_us / small.one_node_us;
    let latency = if ratio >= CLEAR_RATIO {
        format!(
            "A message of {} took {:.1} µs one way between two nodes against {:.2} µs on one node: \
             {ratio:.0}× slower through TCP and the bridge than through shared memory.",
            virtlab_core::units::bytes(small.bytes as u64),
            small.two_nodes_us,
            small.one_node_us
        )
    } else {
        format!(
            "A message of {} took {:.1} µs one way between two nodes and {:.1} µs on one node: no \
             clear difference in this run.",
            virtlab_core::units::bytes(small.bytes as u64),
            small.two_nodes_us,
            small.one_node_us
        )
    };
    let mut said = format!(
        "{latency}{caution} At {} the bandwidth was {:.2} GB/s on one node and {:.2} GB/s across two.",
        virtlab_core::units::bytes(large.bytes as u64),
        large.one_node_gb_per_s,
        large.two_nodes_gb_per_s
    );
    let dearer: Vec<String> = slower_than_larger(report, "on one node", |p| p.one_node_us)
        .into_iter()
        .chain(
            slower_than_larger(report, "across nodes", |p| p.two_nodes_us)
                .into_iter()
                // The smallest size across nodes, when it was, has had its word above.
                .filter(|(bytes, _)| caution.is_empty() || *bytes != first.bytes),
        )
        .map(|(_, words)| words)
        .collect();
    if !dearer.is_empty() {
        said += &format!(
            " Not what a quiet machine gives: {} — a message cannot cost more than a larger one, \
             so those runs measured something else (another program on these CPUs, a time \
             slice lost); run the ping-pong again.",
            dearer.join("; ")
        );
    }
    said
}

/// Each size that took more than [`CLEAR_RATIO`]× a larger size's time in one column: its
/// bytes, and "64 B took 2.02 µs on one node, 512 B 0.62 µs".
fn slower_than_larger(
    report: &PingpongReport,
    column: &str,
    us: impl Fn(&crate::pingpong::PingpongPoint) -> f64,
) -> Vec<(usize, String)> {
    let points = &report.points;
    points
        .iter()
        .enumerate()
        .filter_map(|(i, small)| {
            let fastest_larger = points[i + 1..]
                .iter()
                .filter(|p| p.bytes > small.bytes)
                .min_by(|a, b| us(a).total_cmp(&us(b)))?;
            (us(small) > us(fastest_larger) * CLEAR_RATIO).then(|| {
                let words = format!(
                    "{} took {:.2} µs {column}, {} {:.2} µs",
                    virtlab_core::units::bytes(small.bytes as u64),
                    us(small),
                    virtlab_core::units::bytes(fastest_larger.bytes as u64),
                    us(fastest_larger)
                );
                (small.bytes, words)
            })
        })
        .collect()
}

/// Spinning against yielding waiting ranks, across two nodes.
pub fn yield_trap_said(trap: &YieldTrap) -> String {
    let (spin, yielding) = (trap.spin.1, trap.yielding.1);
    if spin >= yielding * CLEAR_RATIO {
        format!(
            "With waiting ranks spinning (Open MPI's default) a message between two nodes took \
             {spin:.0} µs, {:.0}× the {yielding:.1} µs with them yielding: a spinning rank held \
             a CPU that the rank it waited for (or another program) needed to answer.",
            spin / yielding
        )
    } else if yielding >= spin * CLEAR_RATIO {
        format!(
            "Spinning was the faster way in this run ({spin:.1} µs against {yielding:.1} µs \
             yielding): the two ranks each had a CPU to themselves, so spinning cost nobody."
        )
    } else {
        format!(
            "Spinning ({spin:.1} µs) and yielding ({yielding:.1} µs) gave about the same time in \
             this run."
        )
    }
}

/// The queue: how long the second whole-cluster job waited, and the accounting.
pub fn queue_said(queue: &QueueDemo) -> String {
    let held = queue
        .accounting
        .iter()
        .find(|a| a.id == queue.first.id)
        .map_or(String::new(), |a| {
            format!(" while job {} held every node for {} s", a.id, a.elapsed_s)
        });
    // The gap between the first job's end and the second's start is Slurm's own: the node
    // finishing the job, the scheduler's next pass; its records count whole seconds.
    let after_first = match (queue.first.end_s, queue.second.start_s) {
        (Some(ended), Some(started)) if started > ended => format!(
            ", {} s of it after job {} ended (Slurm's own time between jobs: the nodes \
             finishing the first, the scheduler's next pass; its records count whole seconds)",
            started - ended,
            queue.first.id
        ),
        _ => String::new(),
    };
    let cpu_seconds: i64 = queue.accounting.iter().map(|a| a.cpu_seconds).sum();
    if queue.wait_s > 0 {
        format!(
            "Job {} waited {} s in the queue ({} while it waited){held}{after_first}; the two \
             jobs were billed {cpu_seconds} CPU-seconds in all.",
            queue.second.id, queue.wait_s, queue.second_waiting.reason
        )
    } else {
        format!(
            "Job {} did not wait ({} s in the queue): the cluster had room for both jobs; the two \
             were billed {cpu_seconds} CPU-seconds in all.",
            queue.second.id, queue.wait_s
        )
    }
}

/// What killing one rank did to the job.
pub fn fault_said(fault: &Fault) -> String {
    let units = &fault.hello.run.units;
    let others = units.len().saturating_sub(1);
    let stopped = units
        .iter()
        .enumerate()
        .filter(|(i, u)| *i != fault.victim as usize && !u.completed())
        .count();
    let exit = fault.mpirun_exit();
    if stopped == others {
        format!(
            "Killing rank {} ended the whole job: mpirun {exit} and stopped all {others} other \
             ranks — an MPI job lives or dies as one.",
            fault.victim
        )
    } else {
        format!(
            "Killing rank {} stopped {stopped} of the {others} other ranks; mpirun {exit}.",
            fault.victim
        )
    }
}

/// Every measurement of the chapter, each `None` where its cell was skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Findings<'a> {
    /// The ranks' live run.
    pub hello: Option<&'a Hello>,
    /// Strong and weak scaling, and this machine's CPUs.
    pub scaling: Option<(&'a [ScalingPoint], &'a [ScalingPoint], usize)>,
    /// The ping-pong.
    pub pingpong: Option<&'a PingpongReport>,
    /// The yield trap.
    pub yield_trap: Option<&'a YieldTrap>,
    /// Slurm's queue.
    pub queue: Option<&'a QueueDemo>,
    /// The killed rank.
    pub fault: Option<&'a Fault>,
    /// The earlier rungs measured beside the ping-pong.
    pub rungs: Option<&'a Rungs>,
}

impl Findings<'_> {
    /// One row per measurement: what it was, what this run found.
    pub fn table(&self) -> Table {
        let skipped = || "not measured: its cell was skipped (see the check above)".to_string();
        let mut table = Table::new("What this run measured", ["measurement", "this run"]);
        let rows = [
            ("ranks' start", self.hello.map(start_said)),
            (
                "scaling",
                self.scaling
                    .map(|(strong, weak, cpus)| scaling_said(strong, weak, cpus)),
            ),
            ("one node vs two", self.pingpong.map(pingpong_said)),
            (
                "a message among the rungs",
                self.pingpong
                    .zip(self.rungs)
                    .map(|(p, r)| beside::said(p, r)),
            ),
            ("the yield trap", self.yield_trap.map(yield_trap_said)),
            ("Slurm's queue", self.queue.map(queue_said)),
            ("a rank killed", self.fault.map(fault_said)),
        ];
        for (what, said) in rows {
            table.row([what.to_string(), said.unwrap_or_else(skipped)]);
        }
        if let Some((strong, weak, _)) = self.scaling {
            let loads = strong.iter().chain(weak).filter_map(|p| p.load.as_ref());
            table.row(load::quiet_row(
                Load::busiest(loads),
                "the scaling above shows less than these cores can do",
            ));
        }
        table
    }

    /// Shows [`Findings::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests;
