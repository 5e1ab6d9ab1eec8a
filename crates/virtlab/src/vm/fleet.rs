//! N virtual machines side by side, each running the essay's loop in its guest: one VM, one
//! vCPU, one host thread. Each time a guest reports an iteration, its thread prints the
//! essay's line, records the event and pauses before resuming the guest. A guest that
//! triple-faults fails the run (the others are stopped, like a crashed process); a guest still
//! running at the deadline is stopped by its interrupter. Every thread is joined and every VM
//! dropped (fds closed, guest memory unmapped) before [`run`] returns.

use super::guest::Guest;
use super::{GuestExit, Interrupter, Vm, support};
use crate::display::{Html, Table};
use crate::observer::{self, Snapshot};
use crate::timeline::{Event, EventKind, Timeline, thread_id};
use crate::work::Work;
use crate::{Error, Result};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most VMs one run makes.
pub const MAX_VMS: usize = 64;
/// How often a pause looks up to see whether the run is stopping.
const PAUSE_SLICE: Duration = Duration::from_millis(20);

/// How to run the VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Guest memory per VM, bytes.
    pub memory_bytes: u64,
    /// Print each line as it comes.
    pub echo: bool,
    /// Take the process tree once every VM has reported its first iteration.
    pub snapshot: bool,
    /// Make VM `.0` (1-based) triple-fault at iteration `.1`, on purpose.
    pub fault: Option<(usize, u32)>,
    /// Make VM number `.0` (1-based) a runaway: it reports once, then loops forever.
    pub runaway: Option<usize>,
    /// Stop VMs still running this long after the start.
    pub deadline: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memory_bytes: 2 << 20,
            echo: true,
            snapshot: true,
            fault: None,
            runaway: None,
            deadline: None,
        }
    }
}

/// How one VM ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Outcome {
    Completed,
    /// "triple fault at iteration 1"
    Crashed(String),
    /// Stopped at the deadline, or because another VM crashed.
    Stopped(String),
    /// It could not be made or run: KVM's error.
    Failed(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Completed => f.write_str("completed"),
            Outcome::Crashed(why) => write!(f, "shut down: {why}"),
            Outcome::Stopped(why) | Outcome::Failed(why) => f.write_str(why),
        }
    }
}

/// One VM's part in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmReport {
    pub name: String,
    /// The host thread that ran its vCPU.
    pub host_tid: u64,
    pub iterations: u32,
    /// From asking for the VM to its first guest line, ms.
    pub first_line_ms: Option<f64>,
    pub outcome: Outcome,
}

/// The result of [`run`].
#[derive(Debug, Clone, Serialize)]
pub struct VmRun {
    /// The virtualization mode the VMs ran in.
    pub mode: String,
    pub pid: u32,
    pub vms: Vec<VmReport>,
    pub timeline: Timeline,
    /// Our process, taken once every VM was running: its vCPU threads are threads of ours.
    pub snapshot: Option<Snapshot>,
    pub wall_ms: f64,
}

impl VmRun {
    /// The process tree taken mid-run, or why there is none.
    pub fn tree(&self) -> Result<Snapshot> {
        observer::taken(&self.snapshot)
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("{} VMs ({})", self.vms.len(), self.mode),
            [
                "VM",
                "host thread",
                "iterations",
                "first line (ms)",
                "ended",
            ],
        );
        for vm in &self.vms {
            t.row([
                vm.name.clone(),
                vm.host_tid.to_string(),
                vm.iterations.to_string(),
                vm.first_line_ms.map_or("-".into(), |ms| format!("{ms:.2}")),
                vm.outcome.to_string(),
            ]);
        }
        t
    }

    pub fn to_html(&self) -> Html {
        self.table().to_html()
    }

    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

/// Refuses VM counts outside 1…[`MAX_VMS`].
pub fn check_vm_count(vms: usize) -> Result<usize> {
    crate::error::check_range("the number of VMs", vms, 1, MAX_VMS)
}

/// Runs `work` (its iterations and pause; a CPU burn is not supported in a guest) in `vms` VMs
/// named `<work.name>-1` …. A VM that triple-faults fails the run after the others are stopped.
pub fn run(work: &Work, vms: usize, options: Options) -> Result<VmRun> {
    check_vm_count(vms)?;
    super::machine::check_memory(options.memory_bytes)?;
    check_choice("--fault-vm", options.fault.map(|(n, _)| n), vms)?;
    check_choice("--runaway-vm", options.runaway, vms)?;
    if !work.burn.is_zero() {
        return Err(Error::new(
            "a VM's guest cannot burn host CPU time",
            "leave the CPU burn at 0 for VMs; chapter 6 compares guest compute separately",
        ));
    }
    let found = support();
    found.ready()?;
    let mut guests = Vec::with_capacity(vms);
    for index in 0..vms {
        let number = index + 1;
        let fault_at = options
            .fault
            .filter(|(n, _)| *n == number)
            .map(|(_, at)| at);
        guests.push(if options.runaway == Some(number) {
            Guest::runaway()?
        } else {
            Guest::essay_loop(work.iterations, fault_at)?
        });
    }

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Message>();
    let mut threads = Vec::with_capacity(vms);
    for (index, guest) in guests.into_iter().enumerate() {
        let unit = Unit {
            index,
            work: work.named(&format!("{}-{}", work.name, index + 1))?,
            guest,
            memory_bytes: options.memory_bytes,
            stop: stop.clone(),
            tx: tx.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(unit.work.name.clone())
            .spawn(move || unit.run());
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                drop(tx);
                join_all(threads, &rx);
                return Err(Error::new(
                    format!("the OS refused a thread for VM {} ({e})", index + 1),
                    "run fewer VMs",
                ));
            }
        }
    }
    drop(tx);

    let mut reports: Vec<Option<VmReport>> = vec![None; vms];
    let mut interrupters: Vec<Option<Interrupter>> = vec![None; vms];
    let mut first_line = vec![None; vms];
    let mut events = Vec::new();
    let mut snapshot = None;
    let mut crashed: Option<String> = None;
    let mut stop_why = String::new();
    let stop_all = |interrupters: &[Option<Interrupter>]| {
        stop.store(true, Ordering::SeqCst);
        interrupters
            .iter()
            .flatten()
            .for_each(Interrupter::interrupt);
    };
    loop {
        let wait = match options.deadline {
            Some(d) if !stop.load(Ordering::SeqCst) => d
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1)),
            _ => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(Message::Running(index, interrupter)) => {
                if stop.load(Ordering::SeqCst) {
                    interrupter.interrupt();
                }
                interrupters[index] = Some(interrupter);
            }
            Ok(Message::Line(index, line)) => {
                first_line[index].get_or_insert(started.elapsed().as_secs_f64() * 1e3);
                if options.echo {
                    println!("{line}");
                }
                if options.snapshot && snapshot.is_none() && first_line.iter().all(Option::is_some)
                {
                    snapshot = observer::snapshot(std::process::id()).ok();
                }
            }
            Ok(Message::Event(event)) => events.push(event),
            Ok(Message::Done(index, mut report)) => {
                if let Outcome::Crashed(why) = &report.outcome
                    && crashed.is_none()
                {
                    crashed = Some(format!("{} shut down: {why}", report.name));
                    stop_why = format!("stopped because {} crashed", report.name);
                    stop_all(&interrupters);
                }
                if let Outcome::Stopped(why) = &mut report.outcome {
                    why.clone_from(&stop_why);
                }
                report.first_line_ms = first_line[index];
                reports[index] = Some(report);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !stop.load(Ordering::SeqCst) {
                    stop_why = format!(
                        "stopped at its deadline ({} ms)",
                        options.deadline.unwrap_or_default().as_millis()
                    );
                    stop_all(&interrupters);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let panicked = join_all(threads, &rx);
    if let Some(why) = crashed {
        return Err(Error::new(
            format!("{why}; the other VMs were stopped"),
            "look at the VM's last line above; a guest that faults on purpose (--fault-vm) ends this way",
        ));
    }
    if panicked > 0 {
        return Err(Error::new(
            format!("{panicked} VM thread(s) panicked"),
            "this is a bug in virtlab; please report it",
        ));
    }
    let vms = reports.into_iter().flatten().collect::<Vec<_>>();
    if let Some(failed) = vms.iter().find(|r| matches!(r.outcome, Outcome::Failed(_))) {
        return Err(Error::new(
            format!("{}: {}", failed.name, failed.outcome),
            "see the fix in the message; `virtlab vm-inside` still works without KVM",
        ));
    }
    Ok(VmRun {
        mode: found.label(),
        pid: std::process::id(),
        vms,
        timeline: Timeline::new(events),
        snapshot,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

fn check_choice(flag: &str, chosen: Option<usize>, vms: usize) -> Result<()> {
    match chosen {
        Some(n) if n == 0 || n > vms => Err(Error::invalid(
            flag,
            n,
            format!("name a VM between 1 and {vms}"),
        )),
        _ => Ok(()),
    }
}

/// Joins every thread (draining messages meanwhile); returns how many panicked.
fn join_all(threads: Vec<std::thread::JoinHandle<()>>, rx: &mpsc::Receiver<Message>) -> usize {
    while rx.recv().is_ok() {}
    threads.into_iter().filter_map(|t| t.join().err()).count()
}

enum Message {
    /// The VM exists and its vCPU is about to run: here is how to stop it.
    Running(usize, Interrupter),
    Line(usize, String),
    Event(Event),
    Done(usize, VmReport),
}

/// One VM's thread: makes the VM, runs its guest through the work's loop, reports.
struct Unit {
    index: usize,
    work: Work,
    guest: Guest,
    memory_bytes: u64,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Message>,
}

impl Unit {
    fn run(self) {
        let name = self.work.name.clone();
        let mut iterations = 0;
        let outcome = match Vm::new(&name, self.memory_bytes, &self.guest) {
            Err(e) => Outcome::Failed(e.to_string()),
            Ok(mut vm) => {
                let _ = self.tx.send(Message::Running(self.index, vm.interrupter()));
                self.event(EventKind::Start);
                let outcome = self.drive(&mut vm, &mut iterations);
                self.event(EventKind::End);
                outcome
                // `vm` drops here, on its own thread: fds closed, memory unmapped.
            }
        };
        let report = VmReport {
            name,
            host_tid: thread_id(),
            iterations,
            first_line_ms: None,
            outcome,
        };
        let _ = self.tx.send(Message::Done(self.index, report));
    }

    /// Resumes the guest exit by exit: line and pause for each report, until it halts.
    fn drive(&self, vm: &mut Vm, iterations: &mut u32) -> Outcome {
        let tid = thread_id();
        loop {
            let exit = match vm.run() {
                Ok(exit) => exit,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            match exit {
                GuestExit::Report(i) => {
                    *iterations = i + 1;
                    self.event(EventKind::Iteration(i));
                    let line = format!("{i}: {} vcpu 0 (host tid {tid})", self.work.name);
                    let _ = self.tx.send(Message::Line(self.index, line));
                    if i + 1 < self.work.iterations && !self.pause() {
                        return Outcome::Stopped(String::new());
                    }
                }
                GuestExit::Halted => return Outcome::Completed,
                GuestExit::TripleFault => {
                    let at = iterations.saturating_sub(1);
                    return Outcome::Crashed(format!("triple fault at iteration {at}"));
                }
                GuestExit::Interrupted => return Outcome::Stopped(String::new()),
                GuestExit::Other(what) => return Outcome::Failed(what),
            }
        }
    }

    /// The pause between iterations, in slices; false when the run is stopping.
    fn pause(&self) -> bool {
        let until = Instant::now() + self.work.interval;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(PAUSE_SLICE));
        }
    }

    fn event(&self, kind: EventKind) {
        let _ = self
            .tx
            .send(Message::Event(Event::now(&self.work.name, kind)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kvm_usable() -> bool {
        support()
            .ready()
            .map_err(|e| eprintln!("skipped: {e}"))
            .is_ok()
    }

    fn quiet() -> Options {
        Options {
            echo: false,
            snapshot: false,
            ..Options::default()
        }
    }

    #[test]
    fn bad_choices_are_refused_before_any_vm() {
        let work = Work::new("vm", 2, 1).unwrap();
        assert!(run(&work, 0, quiet()).is_err());
        let fault = Options {
            fault: Some((3, 0)),
            ..quiet()
        };
        assert!(
            run(&work, 2, fault)
                .unwrap_err()
                .problem()
                .contains("--fault-vm")
        );
        let memory = Options {
            memory_bytes: 12345,
            ..quiet()
        };
        assert!(run(&work, 2, memory).is_err());
        let burning = work.clone().burning(5).unwrap();
        assert!(run(&burning, 1, quiet()).is_err());
    }

    #[test]
    fn three_vms_report_every_iteration_on_their_own_threads() {
        let _serial = super::super::tests::one_at_a_time();
        if !kvm_usable() {
            return;
        }
        let options = Options {
            snapshot: true,
            ..quiet()
        };
        let fds = super::super::tests::kvm_fds();
        let run = run(&Work::new("vm", 3, 1).unwrap(), 3, options).unwrap();
        assert_eq!(super::super::tests::kvm_fds(), fds, "every VM closed");
        for vm in &run.vms {
            let task = format!("/proc/self/task/{}", vm.host_tid);
            assert!(!std::path::Path::new(&task).exists(), "{} joined", vm.name);
        }
        assert_eq!(run.vms.len(), 3);
        assert!(
            run.vms
                .iter()
                .all(|v| v.outcome == Outcome::Completed && v.iterations == 3)
        );
        let iterations = run
            .timeline
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Iteration(_)))
            .count();
        assert_eq!(iterations, 9);
        assert_eq!(
            run.timeline.os_threads().len(),
            3,
            "one host thread per vCPU"
        );
        assert_eq!(run.timeline.pids(), vec![std::process::id()]);
        assert!(run.tree().is_ok());
    }

    #[test]
    fn a_triple_fault_fails_the_run_and_stops_the_others() {
        let _serial = super::super::tests::one_at_a_time();
        if !kvm_usable() {
            return;
        }
        let options = Options {
            fault: Some((2, 1)),
            ..quiet()
        };
        let e = run(&Work::new("vm", 3, 1000).unwrap(), 3, options).unwrap_err();
        assert!(
            e.problem()
                .contains("vm-2 shut down: triple fault at iteration 1"),
            "{e}"
        );
    }

    #[test]
    fn a_runaway_is_stopped_at_the_deadline() {
        let _serial = super::super::tests::one_at_a_time();
        if !kvm_usable() {
            return;
        }
        let options = Options {
            runaway: Some(1),
            deadline: Some(Duration::from_millis(300)),
            ..quiet()
        };
        let fds = super::super::tests::kvm_fds();
        let run = run(&Work::new("vm", 2, 1).unwrap(), 2, options).unwrap();
        assert_eq!(super::super::tests::kvm_fds(), fds, "every VM closed");
        assert!(
            !std::path::Path::new(&format!("/proc/self/task/{}", run.vms[0].host_tid)).exists()
        );
        assert_eq!(
            run.vms[0].outcome,
            Outcome::Stopped("stopped at its deadline (300 ms)".into())
        );
        assert_eq!(run.vms[0].iterations, 1);
        assert_eq!(run.vms[1].outcome, Outcome::Completed);
    }
}
