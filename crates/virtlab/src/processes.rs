//! Chapter 1: the shared [`Work`] run by N real OS processes of our own worker program
//! (`virtlab worker`), as the essay's `multiprocessing` demo does with Python.
//!
//! The parent spawns workers directly (never through a shell) with stdin null — a notebook
//! kernel's stdin is its command pipe — and reads each worker's stdout: human lines
//! ("0: worker-1 pid 4242") are echoed as they arrive, event lines go into the timeline.
//!
//! No orphans: a guard kills and reaps every worker when the run ends, fails or unwinds; on
//! Linux each worker asks to get SIGKILL when the thread that spawned it dies (the kernel process
//! being killed, e.g. by a notebook interrupt); and workers check at start and between pauses
//! that their parent is still the one that started them.

use crate::cost::{CostPoint, Round, sweep};
use crate::observer::{self, Snapshot};
use crate::timeline::{Event, EventKind, Timeline};
use crate::work::Work;
use crate::{Error, Result, display::Table};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

/// Event lines on a worker's stdout start with this; everything else is a line for people.
const EVENT_PREFIX: &str = "@virtlab-event ";
/// The most workers one run may start, whatever the OS would allow.
pub const MAX_WORKERS: usize = 4096;

/// How one worker ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub name: String,
    pub pid: u32,
    /// "exit status 0", "killed by signal 6 (SIGABRT)", ...
    pub status: String,
    pub success: bool,
    /// From just before the spawn call to the worker's first line reaching the parent.
    pub first_line_ms: Option<f64>,
}

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRun {
    pub parent_pid: u32,
    pub workers: Vec<WorkerReport>,
    pub timeline: Timeline,
    /// The process tree, taken once every worker had printed its first line.
    pub snapshot: Option<Snapshot>,
    pub wall_ms: f64,
}

impl ProcessRun {
    /// The process tree taken mid-run.
    pub fn tree(&self) -> Result<Snapshot> {
        observer::taken(&self.snapshot)
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "{} worker processes under pid {}",
                self.workers.len(),
                self.parent_pid
            ),
            ["worker", "pid", "ended with", "spawn → first line"],
        );
        for w in &self.workers {
            let first = w
                .first_line_ms
                .map_or("never".into(), |ms| format!("{ms:.2} ms"));
            t.row([w.name.clone(), w.pid.to_string(), w.status.clone(), first]);
        }
        t
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// How a run behaves beyond its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Print the workers' lines on our stdout as they arrive.
    pub echo: bool,
    /// Snapshot the process tree once all workers are running.
    pub snapshot: bool,
    /// Make worker number `.0` (1-based) abort at iteration `.1`: a crash, on purpose.
    pub crash: Option<(usize, u32)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            echo: true,
            snapshot: true,
            crash: None,
        }
    }
}

/// Runs `work` in `workers` processes named `<work.name>-1` … and waits for all of them.
/// A worker that crashes fails the run; the others are stopped and every one is reaped.
pub fn run(work: &Work, workers: usize, options: Options) -> Result<ProcessRun> {
    check_worker_count(workers)?;
    let program = worker_program()?;
    let started = Instant::now();
    let parent_pid = std::process::id();
    let (tx, rx) = mpsc::channel::<Message>();
    let mut fleet = Fleet::default();
    for index in 0..workers {
        let name = format!("{}-{}", work.name, index + 1);
        let crash_at = options
            .crash
            .filter(|(n, _)| *n == index + 1)
            .map(|(_, at)| at);
        fleet.spawn(&program, &work.named(&name)?, crash_at, index, tx.clone())?;
    }
    drop(tx);

    let mut events = Vec::new();
    let mut first_line: Vec<Option<Instant>> = vec![None; workers];
    let mut snapshot = None;
    let mut failure: Option<Error> = None;
    for message in rx {
        match message {
            Message::Line(index, line, at) => {
                first_line[index].get_or_insert(at);
                if options.echo {
                    println!("{line}");
                }
                if options.snapshot && snapshot.is_none() && first_line.iter().all(Option::is_some)
                {
                    snapshot = observer::snapshot(parent_pid).ok();
                }
            }
            Message::Event(event) => events.push(event),
            Message::Closed(index) => {
                let report = fleet.reap(index);
                if !report.success && failure.is_none() {
                    fleet.kill_all();
                    failure = Some(Error::new(
                        format!(
                            "{} (pid {}) crashed: {}; the other workers were stopped",
                            report.name, report.pid, report.status
                        ),
                        "look at the worker's last lines above; a worker that aborts on purpose (Options::crash) ends this way",
                    ));
                }
            }
        }
    }
    let reports = fleet.finish(&first_line);
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(ProcessRun {
        parent_pid,
        workers: reports,
        timeline: Timeline::new(events),
        snapshot,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// Refuses worker counts the lab or the OS cannot honour, before anything starts.
pub fn check_worker_count(workers: usize) -> Result<usize> {
    let limit = process_limit().min(MAX_WORKERS);
    if workers == 0 || workers > limit {
        return Err(Error::invalid(
            "the number of workers",
            workers,
            format!(
                "choose between 1 and {limit} (the smaller of virtlab's cap of {MAX_WORKERS} and this user's process limit)"
            ),
        ));
    }
    Ok(workers)
}

/// How many more processes this user may start (RLIMIT_NPROC), or usize::MAX if unlimited.
fn process_limit() -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through a valid pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) } == 0
            && limit.rlim_cur != libc::RLIM_INFINITY
        {
            return limit.rlim_cur as usize;
        }
    }
    usize::MAX
}

enum Message {
    Line(usize, String, Instant),
    Event(Event),
    Closed(usize),
}

struct Worker {
    name: String,
    child: Child,
    spawned_at: Instant,
    status: Option<std::process::ExitStatus>,
}

/// The running workers. Dropping it kills and reaps whatever is still alive.
#[derive(Default)]
struct Fleet {
    workers: Vec<Worker>,
}

impl Fleet {
    fn spawn(
        &mut self,
        program: &PathBuf,
        work: &Work,
        crash_at: Option<u32>,
        index: usize,
        tx: mpsc::Sender<Message>,
    ) -> Result<()> {
        let (reader, writer) =
            std::io::pipe().map_err(|e| Error::io("creating a pipe for a worker", e))?;
        let writer_for_stderr = writer
            .try_clone()
            .map_err(|e| Error::io("creating a pipe for a worker", e))?;
        let mut command = Command::new(program);
        command
            .arg("worker")
            .args(["--name", &work.name])
            .args(["--iterations", &work.iterations.to_string()])
            .args(["--interval-ms", &work.interval.as_millis().to_string()])
            .args(["--burn-ms", &work.burn.as_millis().to_string()])
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_for_stderr);
        if let Some(at) = crash_at {
            command.args(["--crash-at", &at.to_string()]);
        }
        let spawned_at = Instant::now();
        let child = command.spawn().map_err(|e| {
            Error::new(
                format!("could not start worker {} of the run ({e}); the workers already started were stopped", index + 1),
                "run fewer workers, or check the worker program with `virtlab worker --help`",
            )
        })?;
        // The command holds our copies of the pipe's write end; drop them so EOF arrives when the worker exits.
        drop(command);
        std::thread::Builder::new()
            .name(format!("read-{}", work.name))
            .spawn(move || read_worker(index, reader, tx))
            .map_err(|e| Error::io("starting a reader thread", e))?;
        self.workers.push(Worker {
            name: work.name.clone(),
            child,
            spawned_at,
            status: None,
        });
        Ok(())
    }

    fn reap(&mut self, index: usize) -> WorkerReport {
        let worker = &mut self.workers[index];
        if worker.status.is_none() {
            worker.status = worker.child.wait().ok();
        }
        report(worker, None)
    }

    fn kill_all(&mut self) {
        for w in self.workers.iter_mut().filter(|w| w.status.is_none()) {
            let _ = w.child.kill();
        }
    }

    fn finish(&mut self, first_line: &[Option<Instant>]) -> Vec<WorkerReport> {
        self.workers
            .iter_mut()
            .zip(first_line)
            .map(|(w, first)| {
                if w.status.is_none() {
                    w.status = w.child.wait().ok();
                }
                report(w, *first)
            })
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.kill_all();
        for w in self.workers.iter_mut().filter(|w| w.status.is_none()) {
            w.status = w.child.wait().ok();
        }
    }
}

fn report(w: &Worker, first_line: Option<Instant>) -> WorkerReport {
    let (status, success) = match w.status {
        Some(s) => (describe_status(s), s.success()),
        None => ("unknown (could not wait for it)".into(), false),
    };
    WorkerReport {
        name: w.name.clone(),
        pid: w.child.id(),
        status,
        success,
        first_line_ms: first_line.map(|t| t.duration_since(w.spawned_at).as_secs_f64() * 1e3),
    }
}

/// "exit status 0" or "killed by signal 6 (SIGABRT)".
pub fn describe_status(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGINT => " (SIGINT)",
                _ => "",
            };
            return format!("killed by signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "ended without a status".into(),
    }
}

fn read_worker(index: usize, reader: std::io::PipeReader, tx: mpsc::Sender<Message>) {
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        let message = match line.strip_prefix(EVENT_PREFIX) {
            Some(json) => match serde_json::from_str::<Event>(json) {
                Ok(event) => Message::Event(event),
                Err(_) => Message::Line(index, line, Instant::now()),
            },
            None => Message::Line(index, line, Instant::now()),
        };
        if tx.send(message).is_err() {
            return;
        }
    }
    let _ = tx.send(Message::Closed(index));
}

/// On Linux, asks the kernel to SIGKILL this process when the thread that spawned it dies.
/// A child asks for itself, after exec (workers, `virtlab matmul --die-with-parent`): a
/// `pre_exec` hook in the parent would force a full fork of the (possibly large) parent
/// instead of a cheap `posix_spawn`.
pub fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// The worker side: runs `work` in this process, printing the essay's line and an event line
/// per step. Stops early if `parent_pid` is given and is no longer our parent. `extra` sees each
/// event before it is printed (a container rewrites its pid to the host's) and returns text
/// appended to the iteration's line.
pub fn worker_main(
    work: &Work,
    parent_pid: Option<u32>,
    crash_at: Option<u32>,
    extra: &mut dyn FnMut(&mut Event) -> String,
) -> Result<()> {
    die_with_parent();
    // Checked after asking for the signal, so a parent that died in between is still noticed.
    let parent_alive = || parent_pid.is_none_or(|p| current_parent_pid() == Some(p));
    if !parent_alive() {
        return Err(Error::new(
            "the parent process is already gone",
            "workers are started by `virtlab processes`",
        ));
    }
    let mut out = std::io::stdout().lock();
    let mut write_failed = false;
    let finished = work.run(
        |event| {
            let mut event = event.clone();
            let suffix = extra(&mut event);
            let mut text = String::new();
            if let EventKind::Iteration(i) = event.kind {
                text += &format!("{i}: {} pid {}{suffix}\n", work.name, std::process::id());
            }
            text += &format!(
                "{EVENT_PREFIX}{}\n",
                serde_json::to_string(&event).unwrap_or_default()
            );
            write_failed |= out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err();
            if let (EventKind::Iteration(i), Some(at)) = (event.kind, crash_at)
                && i == at
            {
                std::process::abort();
            }
        },
        parent_alive,
    );
    if !finished {
        return Err(Error::new(
            "the parent process went away, so this worker stopped",
            "nothing to fix: this is how orphans are avoided",
        ));
    }
    if write_failed {
        return Err(Error::new(
            "the parent stopped reading this worker's output",
            "nothing to fix if the run was interrupted",
        ));
    }
    Ok(())
}

fn current_parent_pid() -> Option<u32> {
    #[cfg(unix)]
    {
        // SAFETY: getppid has no preconditions.
        Some(unsafe { libc::getppid() } as u32)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The `virtlab` program that runs workers, found without the user setting anything:
/// `$VIRTLAB_WORKER` if set; this program if it is `virtlab`; else the workspace's release
/// build, built (or brought up to date) with cargo on first use.
pub fn worker_program() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("VIRTLAB_WORKER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::new(
                format!(
                    "VIRTLAB_WORKER names {}, which is not a file",
                    path.display()
                ),
                "unset VIRTLAB_WORKER, or point it at a built `virtlab` binary",
            ))
        };
    }
    if let Ok(me) = std::env::current_exe()
        && me.file_stem().is_some_and(|s| s == "virtlab")
    {
        return Ok(me);
    }
    static BUILT: std::sync::OnceLock<std::result::Result<PathBuf, Error>> =
        std::sync::OnceLock::new();
    BUILT.get_or_init(build_worker_program).clone()
}

fn build_worker_program() -> std::result::Result<PathBuf, Error> {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = crate_dir.join("../../target");
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            "virtlab",
            "--manifest-path",
        ])
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::new(
                format!("could not run cargo to build the worker program ({e})"),
                "install Rust (cargo), or set VIRTLAB_WORKER to a built `virtlab` binary",
            )
        })?;
    if !output.status.success() {
        return Err(Error::new(
            format!(
                "building the worker program failed:\n{}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            format!(
                "run `cargo build --release` in {} and fix what it reports",
                crate_dir.display()
            ),
        ));
    }
    Ok(target
        .join("release")
        .join(format!("virtlab{}", std::env::consts::EXE_SUFFIX)))
}

/// Spawn cost against worker count: for each count, `repeats` runs of one-iteration workers
/// that hold for `hold_ms`, reporting the median spawn-to-first-line and the median RSS per worker.
pub fn spawn_cost(counts: &[usize], repeats: usize, hold_ms: u64) -> Result<Vec<CostPoint>> {
    let work = Work::new("cost", 2, hold_ms)?;
    sweep(
        counts,
        repeats,
        |n| check_worker_count(n).map(drop),
        |n| {
            let run = run(
                &work,
                n,
                Options {
                    echo: false,
                    snapshot: true,
                    crash: None,
                },
            )?;
            Ok(Round {
                latencies_ms: run.workers.iter().filter_map(|w| w.first_line_ms).collect(),
                bytes_each: run
                    .snapshot
                    .iter()
                    .flat_map(|s| s.children())
                    .map(|c| c.rss_bytes as f64)
                    .collect(),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_counts_outside_the_limits_are_refused() {
        assert!(
            check_worker_count(0)
                .unwrap_err()
                .problem()
                .contains("number of workers cannot be 0")
        );
        let err = check_worker_count(MAX_WORKERS + 1).unwrap_err();
        assert!(err.fix().contains("choose between 1 and"), "{err}");
        assert_eq!(check_worker_count(3), Ok(3));
    }

    #[cfg(unix)]
    #[test]
    fn statuses_name_their_signal() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_status(std::process::ExitStatus::from_raw(0)),
            "exit status 0"
        );
        assert_eq!(
            describe_status(std::process::ExitStatus::from_raw(3 << 8)),
            "exit status 3"
        );
        assert_eq!(
            describe_status(std::process::ExitStatus::from_raw(libc::SIGABRT)),
            "killed by signal 6 (SIGABRT)"
        );
    }
}
