//! What a container costs: start → first line and memory beside a plain process, without and
//! with a cgroup (and, through [`super::runtimes`], beside crun and runc), where the time goes
//! from asking to the first line (our cgroup, the shim's exec, the clone, joining the group, the
//! child's set-up, the worker's own start), what each namespace kind costs alone, and the two
//! ways into a cgroup v1 group: a pid written from outside (which waits for an RCU grace
//! period) or the process moving itself (which does not).
//!
//! Here: what is measured ([`Costs`]) and the start rounds, one start of every kind per round.
//! The two other measurements have a module each, `join` (the ways into a group) and
//! `namespaces` (each kind alone), as has the way the costs are shown (`tables`).

use super::Limits;
use super::kind::Containers;
use super::runtimes;
use super::support::Support;
use serde::{Deserialize, Serialize};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor;
use virtlab_core::processes;
use virtlab_core::stats::median;
use virtlab_core::work::Work;

mod join;
mod namespaces;
mod tables;

pub use join::join_costs;
use namespaces::namespaces_alone;

/// One way of starting the worker, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartCost {
    /// "process", "container", "crun", "runc".
    pub kind: String,
    /// Median ms from asking to the worker's first line; `None` when it could not run.
    pub first_line_ms: Option<f64>,
    /// Every start measured, ms (for spreads and benchmarks).
    pub samples_ms: Vec<f64>,
    /// Median resident memory of what runs it (a container: its shim and its pid 1).
    pub memory_bytes: Option<f64>,
    /// Why it was not measured, when it was not.
    pub note: String,
}

/// The measurements of chapter 7's cost section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// The CPU model, named with every figure.
    pub cpu: String,
    /// Starts measured per kind.
    pub repeats: usize,
    /// One row per way of starting the worker.
    pub starts: Vec<StartCost>,
    /// Median ms of each start-up step of our container with a cgroup, in order.
    pub steps: Vec<(String, f64)>,
    /// The same for our container without a cgroup.
    pub steps_no_cgroup: Vec<(String, f64)>,
    /// Median ms of each way into a group ([`join_costs`]); empty without a writable cgroup.
    pub joins: Vec<(String, f64)>,
    /// Median ms of fork + unshare(kind) + exit + wait, for no namespace and each kind alone.
    pub namespaces: Vec<(String, f64)>,
}

/// The limits of the "with a cgroup" container: the memory and pids limits of `limits`, what
/// keeps a container from hurting its neighbours (each left out where this machine cannot set
/// it). A CPU quota is left out: it would throttle the very start being timed.
fn cgroup_limits(limits: &Limits) -> Limits {
    let wanted = Limits {
        cpu: None,
        ..*limits
    };
    Support::detect().allowed(&wanted).0
}

/// Measures a plain process, our container without and with a cgroup holding the memory and
/// pids limits of `limits` (and crun and runc when `with_runtimes`), `repeats` starts each, in
/// rounds that start one of every kind; then the steps of our containers, the two ways into a
/// group and each namespace kind alone.
pub fn measure(repeats: usize, with_runtimes: bool, limits: &Limits) -> Result<Costs> {
    virtlab_core::error::check_range("repeats", repeats, 1, 100)?;
    // Two iterations 300 ms apart: alive when the process tree is taken after the first line.
    let work = Work::new("cost", 2, 300)?;
    let limits = cgroup_limits(limits);
    let mut process = (Vec::new(), Vec::new());
    let mut plain = (Vec::new(), Vec::new());
    let mut grouped = (Vec::new(), Vec::new());
    let mut step_times: Vec<(String, Vec<f64>)> = Vec::new();
    let mut plain_steps: Vec<(String, Vec<f64>)> = Vec::new();
    let mut runtimes = if with_runtimes {
        runtimes::prepare()?
    } else {
        Vec::new()
    };
    // Ours and the runtimes in the same round, so all see the machine as it is this second;
    // the order turns by one kind each round, so no kind always follows the same one (a start
    // right after another's busy teardown was faster here than one after an idle pause).
    let kinds = 3 + runtimes.len();
    for round in 0..repeats {
        for turn in 0..kinds {
            match (round + turn) % kinds {
                0 => process_round(&work, &mut process)?,
                1 => container_round(&work, Limits::default(), &mut plain, &mut plain_steps)?,
                2 => container_round(&work, limits, &mut grouped, &mut step_times)?,
                runtime => runtimes[runtime - 3].sample(),
            }
        }
    }
    let mut starts = vec![
        start("process", &mut process.0, &mut process.1),
        start("container, no cgroup", &mut plain.0, &mut plain.1),
        start(
            &format!("container, {}", limits.describe()),
            &mut grouped.0,
            &mut grouped.1,
        ),
    ];
    starts.extend(runtimes.into_iter().map(runtimes::Runtime::cost));
    Ok(Costs {
        cpu: virtlab_core::machine::cpu_model(),
        repeats,
        starts,
        steps: medians(step_times),
        steps_no_cgroup: medians(plain_steps),
        joins: join_costs(repeats.max(9))?,
        // Each is well under a millisecond: many rounds make the median steady on a busy machine.
        namespaces: namespaces_alone(repeats.max(31)),
    })
}

/// One plain worker process: its start → first line and its memory go into `samples`.
fn process_round(work: &Work, samples: &mut (Vec<f64>, Vec<f64>)) -> Result<()> {
    let options = executor::Options {
        snapshot: true,
        ..executor::Options::quiet()
    };
    let run = processes::run(work, 1, options)?;
    samples
        .0
        .extend(run.units.iter().filter_map(|u| u.first_line_ms));
    samples.1.extend(
        run.snapshot
            .iter()
            .flat_map(|s| s.children())
            .map(|c| c.rss_bytes as f64),
    );
    Ok(())
}

/// One container started with `limits`: its start → first line and the memory of its shim and
/// pid 1 go into `samples`, its steps into `steps`.
fn container_round(
    work: &Work,
    limits: Limits,
    samples: &mut (Vec<f64>, Vec<f64>),
    steps: &mut Vec<(String, Vec<f64>)>,
) -> Result<()> {
    let options = executor::Options {
        snapshot: true,
        ..executor::Options::quiet()
    };
    let run = Containers::new(limits)?.run(work, 1, options)?;
    run.check()?;
    for c in &run.units {
        samples.0.extend(c.first_line_ms);
    }
    for c in &run.units {
        add_steps(steps, &c.detail.setup);
    }
    if let Some(s) = &run.snapshot {
        let under: u64 = s
            .processes
            .iter()
            .filter(|p| p.depth > 0)
            .map(|p| p.rss_bytes)
            .sum();
        samples.1.push(under as f64);
    }
    Ok(())
}

/// [`measure`], run by the release `virtlab` program (`container-cost --json`): a notebook's
/// own process is large and many-threaded, which slows every fork it makes (the namespaces'
/// row), and its build is unoptimised.
pub fn measure_in_release_build(
    repeats: usize,
    with_runtimes: bool,
    limits: &Limits,
) -> Result<Costs> {
    virtlab_core::error::check_range("repeats", repeats, 1, 100)?;
    let repeats = repeats.to_string();
    let mut args = vec![
        "container-cost".to_string(),
        "--json".into(),
        "--die-with-parent".into(),
        "--repeats".into(),
        repeats,
    ];
    if let Some(bytes) = limits.memory {
        args.extend(["--memory".into(), bytes.to_string()]);
    }
    if let Some(pids) = limits.pids {
        args.extend(["--pids".into(), pids.to_string()]);
    }
    if !with_runtimes {
        args.push("--no-runtimes".into());
    }
    let output = virtlab_core::release::command(args)?
        .output()
        .map_err(|e| Error::os("starting the measuring program", e))?;
    if !output.status.success() {
        let lines: Vec<String> = String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(String::from)
            .collect();
        return Err(virtlab_core::release::failure(
            "the container cost measurement",
            output.status,
            &lines,
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::bug(format!(
            "container-cost printed something that is not its JSON ({e})"
        ))
    })
}

fn medians(named: Vec<(String, Vec<f64>)>) -> Vec<(String, f64)> {
    named
        .into_iter()
        .map(|(name, mut ms)| (name, median(&mut ms)))
        .collect()
}

fn start(kind: &str, ms: &mut [f64], rss: &mut [f64]) -> StartCost {
    StartCost {
        kind: kind.into(),
        samples_ms: ms.to_vec(),
        first_line_ms: (!ms.is_empty()).then(|| median(ms)),
        memory_bytes: (!rss.is_empty()).then(|| median(rss)),
        note: String::new(),
    }
}

/// Adds the durations between consecutive marks (ordered by time), named by the later mark.
fn add_steps(steps: &mut Vec<(String, Vec<f64>)>, marks: &[(String, u64)]) {
    let mut marks = marks.to_vec();
    marks.sort_by_key(|m| m.1);
    for pair in marks.windows(2) {
        let ms = pair[1].1.saturating_sub(pair[0].1) as f64 / 1e6;
        match steps.iter_mut().find(|(n, _)| *n == pair[1].0) {
            Some((_, v)) => v.push(ms),
            None => steps.push((pair[1].0.clone(), vec![ms])),
        }
    }
}
