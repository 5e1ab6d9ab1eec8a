//! The container's own start-up, run by `virtlab contain … -- worker …` after exec, in a
//! single-threaded process (the notebook's multi-threaded process could not create a user
//! namespace).
//!
//! The shim stays outside, like conmon beside a runtime: it waits for the "go" of the program
//! that started it, which makes the cgroup meanwhile (see `handoff`), then clones the child
//! straight into new user, pid, mount, uts, ipc and network namespaces (so the child is pid 1
//! there) — and, where the group has a cgroup v2 folder, straight into that folder (`clone3`
//! with `CLONE_INTO_CGROUP`) —, sends it its host pid through a pipe (which also says "go"),
//! then waits. It forwards the exit status, reports OOM kills as such, and removes the cgroup when
//! the worker ends — or when the program that started it dies (PR_SET_PDEATHSIG with SIGTERM,
//! which the shim catches: it kills pid 1, which takes the whole namespace down, waits, removes
//! the group).
//!
//! The child first moves itself into the group's cgroup v1 folders (writing "0" to `tasks`,
//! which spares the RCU grace period that writing its pid from outside waits for; see
//! [`Cgroup::join_current_thread`]), so everything after — its set-up and the whole worker —
//! runs inside the group. It writes its uid/gid maps (root inside = our uid outside, setgroups
//! denied), enters a cgroup namespace, sets its hostname, builds a new root on a tmpfs
//! (read-only binds of the host's /usr, /bin, /lib, /lib64, /etc; a private /tmp; a fresh
//! /proc), pivots into it, brings `lo` up and runs the worker. It runs the worker's code itself
//! (the same `virtlab` program, already loaded; the shim has read its command line with
//! [`Shim::worker`]) instead of exec'ing the program a second time: one program start fewer.
//! Nothing goes through a shell.
//!
//! Why one long file: the shim and the child are two halves of one start-up sequence, with the
//! same step log and the same raw system calls; reading them together is how to check them.

use super::cgroup::{Cgroup, Stats};
use super::probe::Probe;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor::{Crash, Status};
use virtlab_core::protocol::Message;
use virtlab_core::timeline::now_ns;

/// What a container says beyond its worker's events and lines, as kind messages of the one
/// line [`protocol`](virtlab_core::protocol): the shim's set-up steps and its end, the worker's
/// probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerMessage {
    /// Set-up timestamps: steps with their CLOCK_MONOTONIC ns, in order.
    Setup(Vec<(String, u64)>),
    /// What the worker sees from inside (printed with `--probe`).
    Probe(Probe),
    /// How the container ended, as the shim saw it (its last message).
    End(End),
}
/// Exit code of a child whose set-up failed (the reason is on stderr), as runtimes use 125.
pub const SETUP_FAILED: i32 = 125;
/// Exit code of a worker that panicked, as a Rust program's.
const PANICKED: i32 = 101;
/// Host folders the container sees, read-only (symlinks, as in merged-/usr systems, are copied).
const HOST_FOLDERS: [&str; 8] = [
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];
/// Where the new root is assembled, in the child's own mount namespace (the host's /tmp is
/// untouched: the tmpfs is mounted over it only in there).
const NEW_ROOT: &str = "/tmp";
/// Size of the container's private /tmp.
const PRIVATE_TMP: &str = "size=16m,mode=1777";

/// What the shim needs, from `virtlab contain`'s flags.
#[derive(Debug, Clone)]
pub struct Shim {
    /// The container's name (its cgroup's too).
    pub name: String,
    /// The hostname it gets in its own uts namespace.
    pub hostname: String,
    /// Its cgroup's folders, one per hierarchy (none without limits).
    pub cgroup_dirs: Vec<PathBuf>,
    /// The cgroup is being made while we start: wait for "go" on stdin before using it (see
    /// `handoff`).
    pub prepared_on_stdin: bool,
    /// Stop if this is no longer our parent (it died before we could arm the death signal).
    pub parent_pid: Option<u32>,
    /// False only when running as root on a kernel that refuses user namespaces.
    pub user_namespace: bool,
    /// The worker's command line after the program: `worker --name … `.
    pub worker_args: Vec<String>,
    /// Reads that command line (the `virtlab` program's own parser for `worker`, given by the
    /// program: the library has none).
    pub worker: WorkerMain,
    /// Print the set-up steps' times and the [`End`] as data lines on stdout.
    pub report: bool,
}

/// Reads a `virtlab` command line (without the program's name) in the shim, before the clone:
/// read in the freshly cloned pid 1 instead, every page the parser writes costs a copy-on-write
/// fault (0.1 ms there against 0.02 ms here). A line it cannot read becomes a worker that says
/// why and fails, as an exec'd worker would.
pub type WorkerMain = fn(&[String]) -> PreparedWorker;

/// A worker ready to run in pid 1: given its host pid, it runs and returns its exit code.
pub type PreparedWorker = Box<dyn FnOnce(u32) -> i32>;

/// How the container ended, as the shim saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    /// Pid 1 of the container, as the host sees it.
    pub host_pid: u32,
    /// How pid 1 died, or `None` when it exited with status 0.
    pub crash: Option<Crash>,
    /// The cgroup's counters just before it was removed.
    pub stats: Stats,
}

/// The marks of pid 1 setting itself up once in its groups, in order: ids mapped and hostname
/// set, new root built, `lo` up. The start chart draws them as one segment.
pub(crate) const PID1_SETUP: [&str; 3] = ["ids mapped, hostname set", "new root built", "lo up"];

/// Runs the shim; returns how the container ended and the exit code to forward (the worker's,
/// or 128 + its signal).
pub fn shim_main(shim: &Shim) -> Result<(End, i32)> {
    let mut marks = vec![("shim started", now_ns())];
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag on this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    let signals = blocked_signals()?;
    if let Some(p) = shim.parent_pid
        // SAFETY: getppid has no preconditions.
        && unsafe { libc::getppid() } as u32 != p
    {
        // Whatever of the group it made before it died is left to us.
        let _ = Cgroup::open(shim.cgroup_dirs.clone()).remove();
        return Err(Error::new(
            "the program that started this container is already gone",
            "containers are started by `virtlab container` or the chapter-7 notebook",
        ));
    }
    // Read while the group may still be in the making.
    let child = Child::prepare(shim, &signals.old);
    // Before the group is ours to remove: when it could not be made, its maker removes what
    // it made. But a maker killed before its "go" removes nothing: what it made of the group
    // is then left to us (removing it twice, where the maker is alive, does no harm).
    if shim.prepared_on_stdin
        && let Err(e) = super::handoff::receive_go()
    {
        let _ = Cgroup::open(shim.cgroup_dirs.clone()).remove();
        return Err(e);
    }
    let mut cgroup = Cgroup::open(shim.cgroup_dirs.clone());
    let (read_end, write_end) = pipe()?;
    let mut flags = libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET;
    if shim.user_namespace {
        flags |= libc::CLONE_NEWUSER;
    }
    let cloned = clone_child(flags as u64, cgroup.unified_dir());
    if let Ok((0, _)) = cloned {
        drop(write_end);
        child.run(read_end, &cgroup);
    }
    drop(read_end);
    let (pid, into_v2) = match cloned {
        Ok(cloned) => cloned,
        Err(e) => {
            let _ = cgroup.remove();
            return Err(e);
        }
    };
    marks.push((
        if into_v2 {
            "namespaces cloned (into the v2 group)"
        } else {
            "namespaces cloned"
        },
        now_ns(),
    ));
    // The child waits for this pipe. A v2 folder it was not born into (no clone3) is joined
    // from here, by pid, before it may go on; its v1 folders it joins itself, first thing.
    let started = if into_v2 || cgroup.unified_dir().is_none() {
        Ok(())
    } else {
        cgroup.join_unified(pid as u32).map(|()| {
            marks.push(("cgroup joined (v2, by pid: an RCU grace period)", now_ns()));
        })
    }
    .and_then(|()| send_pid(write_end, pid as u32));
    if let Err(e) = started {
        // SAFETY: kill and waitpid act on the child we just cloned.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        let _ = cgroup.remove();
        return Err(e);
    }
    if shim.report {
        print_marks(&marks);
    }
    let status = wait(pid, shim.parent_pid, &signals.set);
    let stats = cgroup.stats();
    let removed = cgroup.remove();
    let end = describe(pid as u32, status, stats);
    if shim.report {
        Message::Kind(ContainerMessage::End(end.clone())).print();
    }
    removed?;
    Ok((end, exit_code(status)))
}

impl End {
    /// Whether the OOM killer ended pid 1 (its group counted a kill).
    pub fn oom_killed(&self) -> bool {
        matches!(self.crash, Some(Crash::OutOfMemory { .. }))
    }

    /// How the unit ended, as the executor reports it.
    pub fn status(&self) -> Status {
        self.crash
            .clone()
            .map_or(Status::Completed, Status::Crashed)
    }

    /// How the worker failed, as an error for whoever started the shim (`None` on success).
    pub fn failure(&self, name: &str) -> Option<Error> {
        self.crash.as_ref().map(|crash| {
            Error::new(
                format!("container {name}: pid 1 {}", crash.describe()),
                if self.oom_killed() {
                    "give it a higher memory limit, or let it allocate less"
                } else {
                    "look at its last lines; `virtlab container --support` shows what this machine allows"
                },
            )
        })
    }
}

/// SIGCHLD and the stop signals, blocked so the shim takes them one at a time in `wait`.
struct Signals {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

fn blocked_signals() -> Result<Signals> {
    // SAFETY: sigset functions initialise and fill sets we own; sigprocmask changes only
    // this single-threaded process's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return Err(Error::io(
                "blocking signals in the container shim",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Signals { set, old })
    }
}

/// Waits for pid 1 of the container. A stop signal, or our parent going away, kills it (and
/// with it every process of its pid namespace) first. Returns the raw wait status.
fn wait(pid: libc::pid_t, parent_pid: Option<u32>, set: &libc::sigset_t) -> libc::c_int {
    let slice = libc::timespec {
        tv_sec: 0,
        tv_nsec: Duration::from_millis(200).as_nanos() as libc::c_long,
    };
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing through a valid pointer.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return status;
        }
        if done < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // Not expected (it is our only child): report a failure, never a success.
            return 255 << 8;
        }
        // SAFETY: sigtimedwait reads a valid set and timeout; the info pointer may be null.
        let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &slice) };
        // SAFETY: getppid has no preconditions.
        let orphaned = parent_pid.is_some_and(|p| unsafe { libc::getppid() } as u32 != p);
        if matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGHUP) || orphaned {
            // SAFETY: kill signals our own child, pid 1 of the container.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn print_marks(marks: &[(&str, u64)]) {
    let marks = marks
        .iter()
        .map(|&(step, t)| (step.to_string(), t))
        .collect();
    Message::Kind(ContainerMessage::Setup(marks)).print();
}

fn describe(host_pid: u32, status: libc::c_int, stats: Stats) -> End {
    use std::os::unix::process::ExitStatusExt;
    let killed = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let crash = if killed == Some(libc::SIGKILL) && stats.oom_kills.unwrap_or(0) > 0 {
        Some(Crash::OutOfMemory {
            at_bytes: stats.memory_limit,
        })
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        None
    } else {
        Some(Crash::of_exit(ExitStatus::from_raw(status), None))
    };
    End {
        host_pid,
        crash,
        stats,
    }
}

fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// `CLONE_INTO_CGROUP` (include/uapi/linux/sched.h; Linux 5.7), not in the libc crate.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes), the same
/// on every architecture.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Clones the child into new namespaces (`flags`), like fork (same stack, SIGCHLD at its
/// end). With a cgroup v2 folder it is born in that folder (`clone3` + `CLONE_INTO_CGROUP`):
/// no migration at all. Returns the child's pid (0 in the child) and whether it was born in
/// the folder (false where the kernel cannot, before Linux 5.7).
fn clone_child(flags: u64, unified: Option<&Path>) -> Result<(libc::pid_t, bool)> {
    let refused = |e: std::io::Error| {
        Error::errno(
            "the kernel refused to create the container's namespaces",
            e.raw_os_error().unwrap_or(0),
            "run it as root, or where unprivileged user namespaces are allowed (`virtlab container --support` shows which)",
            "see `virtlab container --support` for what this machine allows",
        )
        .caused_by(e)
    };
    if let Some(dir) = unified {
        let folder = std::fs::File::open(dir)
            .map_err(|e| Error::io(format!("opening the cgroup {}", dir.display()), e))?;
        let args = CloneArgs {
            flags: flags | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: folder.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: clone3 reads a valid clone_args of the size given. Without a stack it
        // behaves like fork; this process is single-threaded (the shim starts no threads),
        // so the child may allocate. It never returns to the caller's frames (`Child::run`).
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if pid >= 0 {
            return Ok((pid as libc::pid_t, true));
        }
        let error = std::io::Error::last_os_error();
        // No clone3 (before 5.3), or one that does not know `cgroup` (5.3-5.6): clone below.
        if !matches!(error.raw_os_error(), Some(libc::ENOSYS | libc::E2BIG)) {
            return Err(refused(error));
        }
    }
    // SAFETY: as above, with the older clone (no cgroup to be born in).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_long | libc::SIGCHLD as libc::c_long,
            0,
            0,
            0,
            0,
        )
    };
    if pid < 0 {
        return Err(refused(std::io::Error::last_os_error()));
    }
    Ok((pid as libc::pid_t, false))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into a valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io(
            "creating the container's start pipe",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn send_pid(write_end: OwnedFd, pid: u32) -> Result<()> {
    std::fs::File::from(write_end)
        .write_all(pid.to_string().as_bytes())
        .map_err(|e| Error::io("starting the container", e))
}

/// Everything the child needs, prepared before the clone.
struct Child {
    hostname: String,
    uid: u32,
    gid: u32,
    user_namespace: bool,
    worker: PreparedWorker,
    signal_mask: libc::sigset_t,
    report: bool,
}

impl Child {
    fn prepare(shim: &Shim, signal_mask: &libc::sigset_t) -> Child {
        Child {
            hostname: shim.hostname.clone(),
            // SAFETY: getuid and getgid have no preconditions.
            uid: unsafe { libc::getuid() },
            // SAFETY: as above.
            gid: unsafe { libc::getgid() },
            user_namespace: shim.user_namespace,
            worker: (shim.worker)(&shim.worker_args),
            signal_mask: *signal_mask,
            report: shim.report,
        }
    }

    /// The child: never returns (runs the worker and exits with its code, or exits with
    /// [`SETUP_FAILED`]). Nothing of the shim's frames is dropped here: `_exit` ends it.
    fn run(self, start: OwnedFd, cgroup: &Cgroup) -> ! {
        let code = match self.setup(start, cgroup) {
            Ok(host_pid) => self.run_worker(host_pid),
            Err(error) => {
                let _ = writeln!(std::io::stderr(), "{error}");
                SETUP_FAILED
            }
        };
        let _ = std::io::stdout().flush();
        // SAFETY: _exit ends the child without running the shim's exit handlers.
        unsafe { libc::_exit(code) }
    }

    /// Sets up everything but the worker; returns pid 1's host pid.
    fn setup(&self, start: OwnedFd, cgroup: &Cgroup) -> Result<u32> {
        // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag on this process.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let mut host_pid = String::new();
        std::fs::File::from(start)
            .read_to_string(&mut host_pid)
            .map_err(|e| Error::io("waiting for the shim", e))?;
        let host_pid = host_pid
            .parse()
            .map_err(|_| step("waiting for the shim", "it ended before saying go"))?;
        let mut marks = vec![("child running", now_ns())];
        // First: nothing after this (set-up, worker) runs outside the group.
        if cgroup.join_current_thread()? {
            marks.push(("cgroup joined (v1, itself: no RCU wait)", now_ns()));
        }
        if self.user_namespace {
            write_proc("setgroups", "deny")?;
            write_proc("gid_map", &format!("0 {} 1", self.gid))?;
            write_proc("uid_map", &format!("0 {} 1", self.uid))?;
        }
        // After joining the group (done by the shim), so the group is this container's root.
        check(
            // SAFETY: unshare changes only this process.
            unsafe { libc::unshare(libc::CLONE_NEWCGROUP) },
            "entering a cgroup namespace",
        )?;
        check(
            // SAFETY: sethostname reads len bytes from a valid buffer.
            unsafe { libc::sethostname(self.hostname.as_ptr().cast(), self.hostname.len()) },
            "setting the hostname",
        )?;
        let [ids_mapped, root_built, lo_up] = PID1_SETUP;
        marks.push((ids_mapped, now_ns()));
        self.build_root()?;
        marks.push((root_built, now_ns()));
        bring_up_loopback()?;
        marks.push((lo_up, now_ns()));
        if self.report {
            print_marks(&marks);
        }
        Ok(host_pid)
    }

    fn build_root(&self) -> Result<()> {
        let root = Path::new(NEW_ROOT);
        // Nothing we mount from here on may reach the host's mount namespace.
        mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?;
        mount(
            Some("virtlab"),
            root,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("size=1m,mode=755"),
        )?;
        for name in HOST_FOLDERS {
            let host = Path::new("/").join(name);
            let inside = root.join(name);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(&host)
                        .map_err(|e| io_step("reading a link", &host, e))?;
                    std::os::unix::fs::symlink(target, &inside)
                        .map_err(|e| io_step("copying a link", &inside, e))?;
                }
                Ok(m) if m.is_dir() => {
                    std::fs::create_dir(&inside).map_err(|e| io_step("creating", &inside, e))?;
                    bind_read_only(&host, &inside)?;
                }
                _ => {}
            }
        }
        let tmp = root.join("tmp");
        std::fs::create_dir(&tmp).map_err(|e| io_step("creating", &tmp, e))?;
        mount(
            Some("tmp"),
            &tmp,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(PRIVATE_TMP),
        )?;
        // Mounted before the old root goes: the kernel lets a user namespace mount proc only
        // while a full proc is visible in its mount namespace.
        let proc = root.join("proc");
        std::fs::create_dir(&proc).map_err(|e| io_step("creating", &proc, e))?;
        let no_exec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        mount(Some("proc"), &proc, Some("proc"), no_exec, None)?;
        std::env::set_current_dir(root).map_err(|e| io_step("entering", root, e))?;
        let dot = c".";
        check(
            // SAFETY: pivot_root with "." twice stacks the old root under the new one.
            unsafe {
                libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int
            },
            "pivoting into the new root",
        )?;
        check(
            // SAFETY: detaches the old root, now stacked on ".".
            unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) },
            "detaching the host's root",
        )?;
        std::env::set_current_dir("/").map_err(|e| io_step("entering", Path::new("/"), e))?;
        // The root itself read-only: only the private /tmp can be written.
        mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            None,
        )
    }

    /// Runs the prepared worker in this process, as an exec'd worker would start: the
    /// environment holds only PATH and HOME, no descriptor beyond 0-2 is open, the signal
    /// mask is the one the shim started with.
    fn run_worker(self, host_pid: u32) -> i32 {
        for (key, _) in std::env::vars_os() {
            // SAFETY: this process is single-threaded (a clone of the single-threaded shim).
            unsafe { std::env::remove_var(key) };
        }
        // SAFETY: as above.
        unsafe {
            std::env::set_var("PATH", "/usr/local/bin:/usr/bin:/bin");
            std::env::set_var("HOME", "/tmp");
        }
        // Every descriptor of ours is close-on-exec; without an exec they are closed by hand.
        // SAFETY: close_range only closes descriptors of this process (none is in use).
        unsafe { libc::syscall(libc::SYS_close_range, 3, libc::c_uint::MAX, 0) };
        // SAFETY: restores the mask saved before blocking.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.signal_mask, std::ptr::null_mut()) };
        // A panic must end here, as it would end an exec'd worker (its message printed, code
        // 101): unwinding further would run the shim's destructors in this process (its
        // cgroup guard would remove the group around us).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.worker)(host_pid)))
            .unwrap_or(PANICKED)
    }
}

fn step(what: &str, why: &str) -> Error {
    Error::new(
        format!("container set-up failed while {what}: {why}"),
        "see `virtlab container --support` for what this machine allows; run as root if a step needs it",
    )
}

fn io_step(what: &str, path: &Path, e: std::io::Error) -> Error {
    step(&format!("{what} {}", path.display()), &e.to_string())
}

fn check(rc: libc::c_int, what: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(step(what, &std::io::Error::last_os_error().to_string()))
    }
}

fn write_proc(file: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/self").join(file);
    std::fs::write(&path, value).map_err(|e| io_step(&format!("writing {value:?} to"), &path, e))
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| step("preparing a path", "it holds a NUL byte"))
}

pub(super) fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    let opt = |s: Option<&str>| s.map(|s| CString::new(s).unwrap_or_default());
    let (source_c, fstype_c, data_c) = (opt(source), opt(fstype), opt(data));
    let target_c = c_path(target)?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a valid C string alive for the call.
    let rc = unsafe {
        libc::mount(
            ptr(&source_c),
            target_c.as_ptr(),
            ptr(&fstype_c),
            flags,
            ptr(&data_c).cast(),
        )
    };
    check(
        rc,
        &format!(
            "mounting {} on {}",
            source.or(fstype).unwrap_or("(remount)"),
            target.display()
        ),
    )
}

/// Binds `source` on `target`, then makes the bind read-only. The remount must repeat the
/// flags the kernel locked on the source (nosuid, nodev, noexec, atime): a user namespace may
/// not clear them.
fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    let source_str = source.to_string_lossy();
    mount(
        Some(&source_str),
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;
    let target_c = c_path(target)?;
    // SAFETY: statvfs is a plain C struct of integers, for which all zero bytes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `target_c` is a NUL-terminated path that outlives the call, and `st` is a live,
    // writable statvfs the kernel fills.
    let rc = unsafe { libc::statvfs(target_c.as_ptr(), &mut st) };
    check(rc, "reading mount flags")?;
    let kept = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
    .fold(0, |acc, (_, ms)| acc | ms);
    mount(
        None,
        target,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | kept,
        None,
    )
}

/// A new network namespace has only `lo`, and down: bring it up so the worker can talk to itself.
fn bring_up_loopback() -> Result<()> {
    // SAFETY: socket returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(step(
            "opening a socket for lo",
            &std::io::Error::last_os_error().to_string(),
        ));
    }
    // SAFETY: fd was just created and is owned here only.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the flags field of a valid ifreq.
    unsafe {
        check(
            libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req),
            "reading lo's flags",
        )?;
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        check(
            libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req),
            "bringing lo up",
        )
    }
}
