//! Chapter 1: the shared [`Work`] run by N real OS processes of our own worker program
//! (`virtlab worker`), as the essay's `multiprocessing` demo does with Python. The process is
//! one kind of worker ([`Processes`]) of the shared [`executor`].
//!
//! The parent spawns workers directly (never through a shell) with stdin null — a notebook
//! kernel's stdin is its command pipe — and reads each worker's stdout and stderr from one pipe:
//! human lines ("0: worker-1 pid 4242") and event lines, relayed to the executor.
//!
//! No orphans: every worker is killed and reaped when the run ends, fails or unwinds; on Linux
//! each worker asks to get SIGKILL when the thread that spawned it dies (the kernel process
//! being killed, e.g. by a notebook interrupt); and workers check at start and between pauses
//! that their parent is still the one that started them.
//!
//! ```no_run
//! use virtlab_core::{executor::Options, processes, work::Work};
//!
//! let run = processes::run(&Work::new("worker", 3, 500)?, 3, Options::default())?;
//! println!("{}", run.tree()?.table()); // the parent and three children
//! # Ok::<(), virtlab_core::Error>(())
//! ```

use crate::executor::{self, Crash, Kind, Options, Reporter, Run, Status, Stop, Unit, UnitLimit};
use crate::protocol::{self, Line, Message, NoKindMessages};
use crate::release;
use crate::work::Work;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The most workers one run may start, whatever the OS would allow.
pub const MAX_WORKERS: usize = 4096;

/// How many workers one run may start: the smaller of virtlab's cap and this user's process
/// limit.
pub fn worker_limit() -> UnitLimit {
    UnitLimit {
        units: "workers",
        most: process_limit().min(MAX_WORKERS),
        why: format!("the smaller of virtlab's cap of {MAX_WORKERS} and this user's process limit"),
    }
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

/// One started worker: the child (shared with its reader thread, which reaps it when its output
/// ends) and that reader thread.
struct Worker {
    child: Arc<Mutex<Child>>,
    reader: Option<JoinHandle<()>>,
}

/// Turns a unit's worker command into the one to spawn (a container's, say).
pub type Wrap = dyn FnMut(&Unit, Command) -> Result<Command>;

/// What a wrapped kind did with one line its unit's program wrote (see [`Processes::taking`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Pass it on as usual: an event becomes the unit's event, a line for people is relayed.
    Relay,
    /// The kind kept it (a message of its own); nothing is passed on.
    Kept,
    /// The kind kept it, and it says how the unit ended: this becomes the unit's status
    /// instead of the one read from the program's exit status.
    Ends(Status),
}

/// Looks at each line unit `index` (0-based) wrote, read once into a [`Line`], on that unit's
/// reader thread.
pub type Take<K> = dyn Fn(usize, &Line<K>) -> Taken + Send + Sync;

/// Processes as a kind of worker: each unit is a `virtlab worker` process, a child of this one.
/// A fault on purpose is an abort (SIGABRT); stopping a unit kills it.
///
/// Later kinds that are "a process with extra options" (a container) give [`Processes::wrapped`]
/// a function that turns the worker's command into theirs, and read their own messages (`K`,
/// see [`protocol`]) with [`Processes::taking`].
pub struct Processes<K = NoKindMessages> {
    program: PathBuf,
    wrap: Box<Wrap>,
    take: Arc<Take<K>>,
    workers: Vec<Worker>,
}

impl Processes {
    /// Workers started from the release `virtlab` program (see [`release::program`]).
    pub fn new() -> Result<Processes> {
        Processes::wrapped(Box::new(|_, command| Ok(command)))
    }
}

impl<K: DeserializeOwned + Send + 'static> Processes<K> {
    /// Workers whose command `wrap` changes before it is spawned.
    pub fn wrapped(wrap: Box<Wrap>) -> Result<Processes<K>> {
        Ok(Processes {
            program: release::program()?,
            wrap,
            take: Arc::new(|_, _| Taken::Relay),
            workers: Vec::new(),
        })
    }

    /// These workers with `take` looking at every line before it is relayed: a wrapped kind
    /// keeps its own messages (a container's probe, its shim's steps and end) and may name how
    /// a unit ended ([`Taken::Ends`]).
    pub fn taking(self, take: Box<Take<K>>) -> Processes<K> {
        Processes {
            take: take.into(),
            ..self
        }
    }

    /// How many worker processes were started.
    pub fn started(&self) -> usize {
        self.workers.len()
    }

    /// The pid of unit `index`'s process (a container's shim), once started.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.workers.get(index).map(|w| lock(&w.child).id())
    }

    /// The worker command for `unit`: `virtlab worker --name … --parent-pid <us>`.
    fn worker_command(&self, unit: &Unit) -> Command {
        let work = &unit.work;
        let mut command = Command::new(&self.program);
        command
            .arg("worker")
            .args(["--name", work.name()])
            .args(["--iterations", &work.iterations().to_string()])
            .args(["--interval-ms", &work.interval().as_millis().to_string()])
            .args(["--burn-ms", &work.burn().as_millis().to_string()])
            .args(["--parent-pid", &std::process::id().to_string()])
            .env(release::ERRORS_ENV, "json")
            .stdin(Stdio::null());
        if let Some(at) = unit.fault_at {
            command.args(["--crash-at", &at.to_string()]);
        }
        command
    }
}

impl<K: DeserializeOwned + Send + 'static> Kind for Processes<K> {
    type Detail = ();

    fn name(&self) -> &'static str {
        "process"
    }

    fn limit(&self) -> UnitLimit {
        worker_limit()
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, _stop: Stop) -> Result<()> {
        let number = unit.index + 1;
        let (reader, writer) =
            std::io::pipe().map_err(|e| Error::os("creating a pipe for a worker", e))?;
        let writer_for_stderr = writer
            .try_clone()
            .map_err(|e| Error::os("creating a pipe for a worker", e))?;
        // Wrapped before its output is set: a wrapper builds a new command from this one's
        // program and arguments (a Command's stdio cannot be read back).
        let command = self.worker_command(&unit);
        let mut command = (self.wrap)(&unit, command)?;
        command.stdout(writer).stderr(writer_for_stderr);
        let child = command
            .spawn()
            .map_err(|e| Error::os(format!("starting worker process {number}"), e))?;
        // The command holds our copies of the pipe's write end; drop them so EOF arrives when the worker exits.
        drop(command);
        let child = Arc::new(Mutex::new(child));
        let reaped = child.clone();
        let take = self.take.clone();
        let index = unit.index;
        let reader = std::thread::Builder::new()
            .name(format!("read-{}", unit.work.name()))
            .spawn(move || relay_until_exit(reader, &reaped, &reporter, |line| take(index, line)));
        let reader = match reader {
            Ok(handle) => Some(handle),
            Err(e) => {
                kill_and_reap(&child);
                return Err(Error::os("starting a thread to read a worker", e));
            }
        };
        self.workers.push(Worker { child, reader });
        Ok(())
    }

    fn interrupt(&mut self, index: usize) {
        if let Some(worker) = self.workers.get(index) {
            // std's Child knows when it was reaped, so this never signals a reused pid.
            let _ = lock(&worker.child).kill();
        }
    }

    fn finish(&mut self) -> String {
        for worker in &mut self.workers {
            if lock(&worker.child).try_wait().ok().flatten().is_none() {
                kill_and_reap(&worker.child);
            }
            if let Some(reader) = worker.reader.take() {
                let _ = reader.join();
            }
        }
        format!(
            "{} worker processes under pid {}",
            self.workers.len(),
            std::process::id()
        )
    }
}

fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(|e| e.into_inner())
}

fn kill_and_reap(child: &Mutex<Child>) {
    let mut child = lock(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// Relays a worker's output (what `take` leaves) until it ends, then reaps it and reports how
/// it ended. Each line is read once ([`protocol::read`]); a line that does not parse ends the
/// unit as crashed, naming the line.
fn relay_until_exit<K: DeserializeOwned>(
    reader: std::io::PipeReader,
    child: &Mutex<Child>,
    reporter: &Reporter,
    take: impl Fn(&Line<K>) -> Taken,
) {
    let mut reported_error = None;
    let mut ended = None;
    for text in BufReader::new(reader).lines() {
        let Ok(text) = text else { break };
        let line = match protocol::read::<K>(&text) {
            Ok(line) => line,
            Err(e) => {
                ended.get_or_insert(Status::Crashed(Crash::Protocol {
                    line: text,
                    problem: e.problem().to_string(),
                }));
                continue;
            }
        };
        if let Line::Message(Message::Error(error)) = line {
            reported_error = Some(error);
            continue;
        }
        match take(&line) {
            Taken::Relay => match line {
                Line::People(text) => reporter.line(text),
                Line::Message(Message::Event(event)) => reporter.event(event),
                // Kept by the kind, or already handled above.
                Line::Message(_) => {}
            },
            Taken::Kept => {}
            Taken::Ends(status) => ended = Some(status),
        }
    }
    let waited = lock(child).wait();
    let status = match (ended, waited) {
        (Some(status), _) => status,
        (None, Ok(status)) if status.success() => Status::Completed,
        (None, Ok(status)) => Status::Crashed(Crash::of_exit(
            status,
            reported_error.map(|e| e.problem().to_string()),
        )),
        (None, Err(e)) => Status::Crashed(Crash::Unreported(format!(
            "it could not be waited for ({e})"
        ))),
    };
    reporter.ended(status);
}

/// Runs `work` in `workers` processes named `<work.name()>-1` … and waits for all of them.
pub fn run(work: &Work, workers: usize, options: Options) -> Result<Run> {
    executor::run(&mut Processes::new()?, work, workers, options)
}

/// The worker side: runs `work` in this process, printing the essay's line and an event line
/// per step. Stops early if `parent_pid` is given and is no longer our parent. `extra(i)` runs
/// at iteration `i` and returns text for the end of its line (a container's host pid and
/// hostname, the memory it holds).
pub fn worker_main(
    work: &Work,
    parent_pid: Option<u32>,
    crash_at: Option<u32>,
    extra: &mut (dyn FnMut(u32) -> String + Send),
) -> Result<()> {
    release::die_with_parent();
    // Checked after asking for the signal, so a parent that died in between is still noticed.
    let parent_alive = || parent_pid.is_none_or(|p| current_parent_pid() == Some(p));
    if !parent_alive() {
        return Err(Error::new(
            "the parent process is already gone",
            "workers are started by `virtlab processes`",
        ));
    }
    let pid = std::process::id();
    let status = executor::drive(
        work,
        &executor::Reporter::stdout(),
        parent_alive,
        &mut |i| {
            if crash_at == Some(i) {
                std::process::abort();
            }
            Ok(Some(format!("{i}: {} pid {pid}{}", work.name(), extra(i))))
        },
    );
    match status {
        Status::Completed => Ok(()),
        _ => Err(Error::new(
            "the parent process went away, so this worker stopped",
            "nothing to fix: this is how orphans are avoided",
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_limit_is_virtlabs_cap_or_less() {
        let limit = worker_limit();
        assert!((1..=MAX_WORKERS).contains(&limit.most), "{limit:?}");
        assert!(limit.why.contains("process limit"), "{limit:?}");
    }
}
