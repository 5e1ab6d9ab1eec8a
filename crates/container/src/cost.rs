//! What a container costs: start → first line and memory beside a plain process, without and
//! with a cgroup (and, through [`super::runtimes`], beside crun and runc), where the time goes
//! from asking to the first line (our cgroup, the shim's exec, the clone, joining the group, the
//! child's set-up, the worker's own start), what each namespace kind costs alone, and the two
//! ways into a cgroup v1 group: a pid written from outside (which waits for an RCU grace
//! period) or the process moving itself (which does not).

use super::Limits;
use super::init::PID1_SETUP;
use super::kind::{Containers, FIRST_LINE, WORKER_RUNNING};
use super::runtimes;
use super::support::{NAMESPACES, Support};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor;
use virtlab_core::processes;
use virtlab_core::stats::median;
use virtlab_core::units;
use virtlab_core::work::Work;
use virtlab_display::plot::BarChart;
use virtlab_display::{Figure, Table};

/// The start chart's segments that stand for several steps each: pid 1's own set-up, and the
/// worker from its start to its first line. With them the chart has at most eight segments, as
/// many as the chart palette has distinct colours (the table keeps every step).
const CHART_GROUPS: [(&str, &[&str]); 2] = [
    ("pid 1 set up (ids, hostname, root, lo)", &PID1_SETUP),
    (
        "worker: running → first line",
        &[WORKER_RUNNING, FIRST_LINE],
    ),
];

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

/// How long a process takes to get into a fresh group, `repeats` times each way, with a pause
/// before each try so the kernel's rcu_sync has gone idle (as it has between two containers):
/// its pid written into `cgroup.procs` from outside (the kernel takes the global
/// `cgroup_threadgroup_rwsem` for writing, whose `rcu_sync_enter` waits for an RCU grace
/// period), and, on cgroup v1, the process writing "0" into `tasks` itself (the current
/// thread moves without that lock). Empty where this machine gives no pids group.
pub fn join_costs(repeats: usize) -> Result<Vec<(String, f64)>> {
    virtlab_core::error::check_range("repeats", repeats, 1, 100)?;
    let wanted = Limits {
        pids: Some(64),
        ..Limits::default()
    };
    let support = Support::detect();
    if support.check(&wanted).is_err() {
        return Ok(Vec::new());
    }
    let group = super::Cgroup::create(&support, "join-cost", &wanted)?;
    let Some(dir) = group.dirs().first().cloned() else {
        return Ok(Vec::new());
    };
    let v1 = dir.join("tasks").exists();
    let mut by_pid = Vec::new();
    let mut by_itself = Vec::new();
    for _ in 0..repeats {
        // A grace period or two is a few ms; 50 ms leaves rcu_sync idle again.
        std::thread::sleep(std::time::Duration::from_millis(50));
        by_pid.extend(join_once(&dir.join("cgroup.procs"), false)?);
        if v1 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            by_itself.extend(join_once(&dir.join("tasks"), true)?);
        }
    }
    let mut rows = vec![(
        "its pid written into cgroup.procs from outside".to_string(),
        median(&mut by_pid),
    )];
    if !by_itself.is_empty() {
        rows.push((
            "the process writes \"0\" into tasks itself".to_string(),
            median(&mut by_itself),
        ));
    }
    Ok(rows)
}

/// One child moved into the group through `file`, by itself (`"0"`) or by its pid written
/// here; ms for the write, `None` if the child could not be started or moved.
fn join_once(file: &std::path::Path, itself: bool) -> Result<Option<f64>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(file.as_os_str().as_bytes())
        .map_err(|_| Error::bug("a cgroup path with a NUL byte"))?;
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into a valid array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Error::os(
            "creating a pipe",
            std::io::Error::last_os_error(),
        ));
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child calls only async-signal-safe functions (clock_gettime, open, write,
    // close, pause) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::close(read_end);
            let mut took = 0.0f64;
            if itself {
                let started = now();
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
                let moved = fd >= 0 && libc::write(fd, c"0".as_ptr().cast(), 1) == 1;
                took = if moved { now() - started } else { -1.0 };
            }
            libc::write(write_end, (&raw const took).cast(), 8);
            // Alive while its pid is written; the parent kills it.
            loop {
                libc::pause();
            }
        }
    }
    // SAFETY: closes our copy of the child's end.
    unsafe { libc::close(write_end) };
    if pid < 0 {
        // SAFETY: closes the descriptor we own.
        unsafe { libc::close(read_end) };
        return Ok(None);
    }
    let mut took = -1.0f64;
    // SAFETY: reads 8 bytes into a valid f64.
    let got = unsafe { libc::read(read_end, (&raw mut took).cast(), 8) };
    if got == 8 && !itself {
        let started = now();
        took = match std::fs::write(file, pid.to_string()) {
            Ok(()) => now() - started,
            Err(_) => -1.0,
        };
    }
    // SAFETY: ends and reaps the child we forked; closes our descriptor.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::close(read_end);
    }
    Ok((got == 8 && took >= 0.0).then_some(took))
}

/// CLOCK_MONOTONIC in ms (clock_gettime is async-signal-safe, unlike `Instant` in theory).
fn now() -> f64 {
    virtlab_core::timeline::now_ns() as f64 / 1e6
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

    /// Every step of either container, in order, with its median ms without and with a
    /// cgroup (`None` where a step belongs to the other one only).
    fn step_rows(&self) -> Vec<(String, Option<f64>, Option<f64>)> {
        let mut names: Vec<&String> = self.steps.iter().map(|(n, _)| n).collect();
        for (i, (name, _)) in self.steps_no_cgroup.iter().enumerate() {
            if !names.contains(&name) {
                names.insert(i.min(names.len()), name);
            }
        }
        let find = |steps: &[(String, f64)], name: &String| {
            steps.iter().find(|(n, _)| n == name).map(|(_, ms)| *ms)
        };
        names
            .into_iter()
            .map(|n| {
                (
                    n.clone(),
                    find(&self.steps_no_cgroup, n),
                    find(&self.steps, n),
                )
            })
            .collect()
    }

    /// Each step from asking for our container to its first line, median ms, without and
    /// with a cgroup ("–" where a step belongs to one of them only).
    pub fn steps_table(&self) -> Table {
        let mut t = Table::new(
            "Where a container's start goes (median ms per step)",
            ["step ends with", "no cgroup", "with a cgroup"],
        );
        let cell = |ms: Option<f64>| ms.map_or("–".into(), |ms| format!("{ms:.2}"));
        for (name, plain, grouped) in self.step_rows() {
            t.row([name, cell(plain), cell(grouped)]);
        }
        t
    }

    /// The two ways into a cgroup v1 group: which one waits for the kernel's RCU grace period.
    pub fn joins_table(&self) -> Table {
        let mut t = Table::new(
            "Into a cgroup: a pid written from outside vs the process moving itself (median)",
            ["how", "ms"],
        );
        for (how, ms) in &self.joins {
            t.row([how.clone(), format!("{ms:.2}")]);
        }
        t
    }

    /// The steps as drawn: [`Costs::step_rows`] with each of [`CHART_GROUPS`] summed into one
    /// segment, so that no two segments share a colour.
    fn chart_rows(&self) -> Vec<(String, f64, f64)> {
        let mut rows: Vec<(String, f64, f64)> = Vec::new();
        for (name, plain, grouped) in self.step_rows() {
            let (plain, grouped) = (plain.unwrap_or(0.0), grouped.unwrap_or(0.0));
            let label = CHART_GROUPS
                .iter()
                .find(|(_, steps)| steps.contains(&name.as_str()))
                .map_or(name, |(label, _)| label.to_string());
            match rows.iter_mut().find(|r| r.0 == label) {
                Some(row) => {
                    row.1 += plain;
                    row.2 += grouped;
                }
                None => rows.push((label, plain, grouped)),
            }
        }
        rows
    }

    /// The steps as one stacked bar per container: without and with a cgroup.
    pub fn plot(&self) -> Result<Figure> {
        let rows = self.chart_rows();
        let names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
        let plain: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let grouped: Vec<f64> = rows.iter().map(|r| r.2).collect();
        BarChart::new("Our container's start, step by step", &names)
            .x_label("milliseconds")
            .bar("no cgroup", &plain)
            .bar("with a cgroup", &grouped)
            .render()
            .map_err(Into::into)
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

    /// Which namespace kinds cost most and least beyond a bare fork, in this run.
    pub fn namespaces_summary(&self) -> String {
        let Some(((_, base), kinds)) = self.namespaces.split_first() else {
            return "The namespace kinds were not measured.".into();
        };
        let by_cost = |a: &&(String, f64), b: &&(String, f64)| a.1.total_cmp(&b.1);
        match (kinds.iter().max_by(by_cost), kinds.iter().min_by(by_cost)) {
            (Some((dearest, most)), Some((cheapest, least))) => format!(
                "Beyond a bare fork ({base:.3} ms): the dearest namespace here was {dearest} \
                 ({:+.3} ms), the cheapest {cheapest} ({:+.3} ms).",
                most - base,
                least - base
            ),
            _ => "No namespace kind could be created here.".into(),
        }
    }

    /// Shows the start-cost table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_table_lines_up_both_containers_and_marks_missing_steps() {
        let named = |l: &[(&str, f64)]| l.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        let costs = Costs {
            cpu: "cpu".into(),
            repeats: 1,
            starts: Vec::new(),
            steps: named(&[("cgroup created", 0.3), ("joined", 0.1), ("lo up", 0.2)]),
            steps_no_cgroup: named(&[("cgroup created", 0.1), ("lo up", 0.4)]),
            joins: Vec::new(),
            namespaces: Vec::new(),
        };
        let rows = costs.step_rows();
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names, ["cgroup created", "joined", "lo up"]);
        assert_eq!(rows[1], ("joined".to_string(), None, Some(0.1)));
        assert_eq!(rows[2], ("lo up".to_string(), Some(0.4), Some(0.2)));
        assert!(costs.steps_table().to_string().contains("–"));
        assert!(costs.plot().is_ok());
    }

    #[test]
    fn the_namespace_summary_names_the_dearest_and_the_cheapest() {
        let costs = Costs {
            cpu: "cpu".into(),
            repeats: 1,
            starts: Vec::new(),
            steps: Vec::new(),
            steps_no_cgroup: Vec::new(),
            joins: Vec::new(),
            namespaces: vec![
                ("none".into(), 0.5),
                ("uts".into(), 0.52),
                ("net".into(), 1.4),
                ("mnt".into(), 0.7),
            ],
        };
        let text = costs.namespaces_summary();
        assert!(
            text.contains("dearest namespace here was net (+0.900 ms)"),
            "{text}"
        );
        assert!(text.contains("the cheapest uts (+0.020 ms)"), "{text}");
    }

    #[test]
    fn the_chart_sums_its_step_groups_and_stays_within_eight_colours() {
        let named = |l: &[&str]| {
            l.iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i as f64))
                .collect::<Vec<_>>()
        };
        // Every step a container with a cgroup v1 group reports, in order.
        let steps = [
            "shim asked for",
            "cgroup made (beside the shim's start)",
            "shim started",
            "namespaces cloned",
            "child running",
            "cgroup joined (v1, itself: no RCU wait)",
            PID1_SETUP[0],
            PID1_SETUP[1],
            PID1_SETUP[2],
            WORKER_RUNNING,
            FIRST_LINE,
        ];
        let costs = Costs {
            cpu: "cpu".into(),
            repeats: 1,
            starts: Vec::new(),
            steps: named(&steps),
            steps_no_cgroup: Vec::new(),
            joins: Vec::new(),
            namespaces: Vec::new(),
        };
        let rows = costs.chart_rows();
        assert!(rows.len() <= 8, "{rows:?}");
        assert_eq!(rows.len(), steps.len() - 3);
        let setup = rows.iter().find(|r| r.0 == CHART_GROUPS[0].0).unwrap();
        assert_eq!(setup.2, 6.0 + 7.0 + 8.0, "the three steps summed");
        let last = rows.last().unwrap();
        assert_eq!(
            (last.0.as_str(), last.2),
            (CHART_GROUPS[1].0, 9.0 + 10.0),
            "order kept"
        );
        assert_eq!(
            costs.steps_table().rows().len(),
            steps.len(),
            "the table keeps all"
        );
    }
}
