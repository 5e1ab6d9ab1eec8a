//! What a container costs: start → first line and memory beside a plain process, without and
//! with a cgroup (and, through [`super::runtimes`], beside crun and runc), where the time goes
//! from asking to the first line (our cgroup, the shim's exec, the clone, joining the group, the
//! child's set-up, the worker's own start), and what each namespace kind costs alone.

use super::Limits;
use super::kind::Containers;
use super::runtimes;
use super::support::{NAMESPACES, Support};
use crate::display::{Figure, Table};
use crate::plot::BarChart;
use crate::stats::median;
use crate::work::Work;
use crate::{Error, Result, units};
use crate::{executor, processes};
use serde::{Deserialize, Serialize};
use std::time::Instant;

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
    /// Median ms of each start-up step of our container, in order.
    pub steps: Vec<(String, f64)>,
    /// Median ms of fork + unshare(kind) + exit + wait, for no namespace and each kind alone.
    pub namespaces: Vec<(String, f64)>,
}

/// The limits of the "with a cgroup" container: memory and pids, what keeps a container from
/// hurting its neighbours (each left out where this machine cannot set it).
const CGROUP_LIMITS: Limits = Limits {
    cpu: None,
    memory: Some(256 << 20),
    pids: Some(64),
};

/// Measures a plain process, our container without and with a cgroup (and crun and runc when
/// `with_runtimes`), the steps of the one with a cgroup, and each namespace kind alone,
/// `repeats` times each.
pub fn measure(repeats: usize, with_runtimes: bool) -> Result<Costs> {
    crate::error::check_range("repeats", repeats, 1, 100)?;
    // Two iterations 300 ms apart: alive when the process tree is taken after the first line.
    let work = Work::new("cost", 2, 300)?;
    let (limits, _) = Support::detect().allowed(&CGROUP_LIMITS);
    let (mut process_ms, mut process_rss) = (Vec::new(), Vec::new());
    let mut plain = (Vec::new(), Vec::new());
    let mut grouped = (Vec::new(), Vec::new());
    let mut step_times: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..repeats {
        let quiet = executor::Options {
            snapshot: true,
            ..executor::Options::quiet()
        };
        let run = processes::run(&work, 1, quiet)?;
        process_ms.extend(run.units.iter().filter_map(|u| u.first_line_ms));
        process_rss.extend(
            run.snapshot
                .iter()
                .flat_map(|s| s.children())
                .map(|c| c.rss_bytes as f64),
        );
        container_round(&work, Limits::default(), &mut plain, None)?;
        container_round(&work, limits, &mut grouped, Some(&mut step_times))?;
    }
    let mut starts = vec![
        start("process", &mut process_ms, &mut process_rss),
        start("container, no cgroup", &mut plain.0, &mut plain.1),
        start(
            &format!("container, {}", limits.describe()),
            &mut grouped.0,
            &mut grouped.1,
        ),
    ];
    if with_runtimes {
        starts.extend(runtimes::measure(repeats)?);
    }
    Ok(Costs {
        cpu: crate::machine::cpu_model(),
        repeats,
        starts,
        steps: step_times
            .into_iter()
            .map(|(name, mut ms)| (name, median(&mut ms)))
            .collect(),
        // Each is well under a millisecond: many rounds make the median steady on a busy machine.
        namespaces: namespaces_alone(repeats.max(31)),
    })
}

/// One container started with `limits`: its start → first line and the memory of its shim and
/// pid 1 go into `samples`, its steps into `steps` when given.
fn container_round(
    work: &Work,
    limits: Limits,
    samples: &mut (Vec<f64>, Vec<f64>),
    steps: Option<&mut Vec<(String, Vec<f64>)>>,
) -> Result<()> {
    let options = executor::Options {
        snapshot: true,
        ..executor::Options::quiet()
    };
    let run = Containers::new(limits)?.run(work, 1, options)?;
    run.check()?;
    for c in &run.containers {
        samples.0.extend(c.first_line_ms);
    }
    if let Some(steps) = steps {
        run.containers
            .iter()
            .for_each(|c| add_steps(steps, &c.setup));
    }
    if let Some(s) = &run.run.snapshot {
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
pub fn measure_in_release_build(repeats: usize, with_runtimes: bool) -> Result<Costs> {
    crate::error::check_range("repeats", repeats, 1, 100)?;
    let repeats = repeats.to_string();
    let mut args = vec![
        "container-cost",
        "--json",
        "--die-with-parent",
        "--repeats",
        &repeats,
    ];
    if !with_runtimes {
        args.push("--no-runtimes");
    }
    let output = crate::release::command(args)?
        .output()
        .map_err(|e| Error::os("starting the measuring program", e))?;
    if !output.status.success() {
        let lines: Vec<String> = String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(String::from)
            .collect();
        return Err(crate::release::failure(
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

/// fork + unshare + _exit + waitpid, timed here; "none" is the same without unshare. A user
/// namespace is added to the others when this user is not root (they need it then).
fn namespaces_alone(repeats: usize) -> Vec<(String, f64)> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut kinds: Vec<(String, libc::c_int)> = vec![("none".into(), 0)];
    for (name, flag) in NAMESPACES {
        let flag = if root || flag == libc::CLONE_NEWUSER {
            flag
        } else {
            flag | libc::CLONE_NEWUSER
        };
        kinds.push((name.into(), flag));
    }
    // Round-robin, after one warm-up round: measured one kind after another, the first (none)
    // paid for the warm-up and every drift in the machine's load, and came out dearer than
    // namespaces that do more.
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(repeats); kinds.len()];
    for round in 0..=repeats {
        for (i, (_, flag)) in kinds.iter().enumerate() {
            if let Some(ms) = fork_unshare_ms(*flag)
                && round > 0
            {
                samples[i].push(ms);
            }
        }
    }
    kinds
        .into_iter()
        .zip(samples)
        .map(|((name, _), mut ms)| (name, median(&mut ms)))
        .collect()
}

fn fork_unshare_ms(flag: libc::c_int) -> Option<f64> {
    let started = Instant::now();
    // SAFETY: the child calls only async-signal-safe functions (unshare, _exit).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: unshare changes only this short-lived child; _exit ends it at once.
        unsafe {
            libc::_exit(if flag == 0 || libc::unshare(flag) == 0 {
                0
            } else {
                1
            })
        };
    }
    if pid < 0 {
        return None;
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    // Tearing a namespace down is part of its cost, and happens before the wait returns.
    (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
        .then(|| started.elapsed().as_secs_f64() * 1e3)
}

impl Costs {
    /// Start → first line and memory per kind, with the ratio to a plain process.
    pub fn table(&self) -> Table {
        let process = self.starts.first().and_then(|s| s.first_line_ms);
        let mut t = Table::new(
            format!(
                "Start → first line, median of {} ({})",
                self.repeats, self.cpu
            ),
            [
                "kind",
                "start → first line",
                "× a process",
                "memory",
                "note",
            ],
        );
        for s in &self.starts {
            t.row([
                s.kind.clone(),
                s.first_line_ms
                    .map_or("–".into(), |ms| format!("{ms:.1} ms")),
                match (s.first_line_ms, process) {
                    (Some(ms), Some(p)) if p > 0.0 => format!("{:.1}×", ms / p),
                    _ => "–".into(),
                },
                s.memory_bytes
                    .map_or("–".into(), |b| units::bytes(b.max(0.0) as u64)),
                s.note.clone(),
            ]);
        }
        t
    }

    /// Each step from asking for our container to its first line, median ms.
    pub fn steps_table(&self) -> Table {
        let mut t = Table::new(
            "Where a container's start goes (median ms per step)",
            ["step ends with", "ms"],
        );
        for (name, ms) in &self.steps {
            t.row([name.clone(), format!("{ms:.2}")]);
        }
        t
    }

    /// The steps as one stacked bar, and each namespace kind alone as bars below it.
    pub fn plot(&self) -> Result<Figure> {
        let names: Vec<&str> = self.steps.iter().map(|(n, _)| n.as_str()).collect();
        let values: Vec<f64> = self.steps.iter().map(|(_, ms)| *ms).collect();
        BarChart::new("Our container's start, step by step", &names)
            .x_label("milliseconds")
            .bar("container", &values)
            .render()
    }

    /// fork + unshare + exit + wait per namespace kind.
    pub fn namespaces_table(&self) -> Table {
        let base = self.namespaces.first().map_or(0.0, |n| n.1);
        let mut t = Table::new(
            "Each namespace alone: fork + unshare + exit + wait (median)",
            ["namespace", "ms", "more than none"],
        );
        for (name, ms) in &self.namespaces {
            t.row([
                name.clone(),
                format!("{ms:.3}"),
                format!("{:+.3}", ms - base),
            ]);
        }
        t
    }

    /// Shows the start-cost table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}
