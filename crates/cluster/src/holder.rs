//! The processes that hold a cluster's namespaces. Each holder is two processes forked from the
//! owner: an outer one that stays in the host's namespaces, watches the owner, and cleans up,
//! and an inner one that unshares the namespaces (the node's pid 1 where the node has a pid
//! namespace) and only reaps orphans until it is killed.
//!
//! Every holder keeps the read end of one pipe, the cluster's *life line*, whose only write end
//! stays in the owner. When the owner drops the cluster, errors half-way, panics or is
//! SIGKILLed, the kernel closes the write end and every holder reads end-of-file: it kills its
//! inner process (a pid namespace dies with its pid 1, taking every process of the node along;
//! a network namespace with its last process, taking its veths and bridge along), removes the
//! node's cgroup folders and exits. `PR_SET_PDEATHSIG` wakes a holder too, should the write
//! end ever have leaked into another process.
//!
//! The fork happens in a process that may have many threads (a notebook's kernel), so between
//! fork and exit the children call only async-signal-safe system calls, on strings made before
//! the fork.

use crate::{Error, ErrorKind, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How long a holder has to report that its namespaces exist.
const START_PATIENCE_MS: libc::c_int = 10_000;
/// How long teardown waits for a holder to finish cleaning up before killing it.
const EXIT_PATIENCE: Duration = Duration::from_secs(10);

/// The pipe whose write end is the owner's promise to be alive.
#[derive(Debug)]
pub struct LifeLine {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

/// Two ends of a new close-on-exec pipe.
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into an array of two.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::os(
            "creating a pipe",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl LifeLine {
    /// A new life line.
    pub fn new() -> Result<LifeLine> {
        let (read, write) = pipe()?;
        Ok(LifeLine {
            read,
            write: Some(write),
        })
    }

    /// Closes the owner's end: every holder on this line starts cleaning up.
    pub fn cut(&mut self) {
        self.write = None;
    }
}

/// What one holder makes and, at the end, removes.
#[derive(Debug)]
pub struct HolderPlan {
    /// What the namespaces are for ("node-2", "switch", "head"): the two processes are named
    /// after it ("node-2 holder", "node-2 pid 1"), where they would otherwise carry the name
    /// of the process they were forked from (a notebook's kernel) in every process listing.
    pub name: String,
    /// `CLONE_NEW*` flags for the inner process.
    pub namespaces: libc::c_int,
    /// The hostname set in a new UTS namespace.
    pub hostname: Option<String>,
    /// Whether the node gets its own /proc (its pid namespace's), /tmp and /dev/shm (a machine
    /// of its own: Open MPI names its shared-memory files by host name and job, which repeat
    /// across clusters).
    pub own_proc_and_tmp: bool,
    /// Folders (the node's cgroup) removed once the inner process is gone.
    pub remove_dirs: Vec<String>,
}

/// A running holder.
#[derive(Debug)]
pub struct Holder {
    /// The outer process (host namespaces), our child.
    pub outer: libc::pid_t,
    /// The inner process, whose namespaces are the node's (its host pid, for `nsenter -t`).
    pub inner: libc::pid_t,
}

/// The step of a holder that failed, reported with its errno.
const STEPS: [&str; 7] = [
    "unsharing the namespaces",
    "setting the hostname",
    "forking the node's first process",
    "making the mounts private",
    "mounting the node's /proc",
    "mounting the node's /tmp",
    "mounting the node's /dev/shm",
];

/// Closes every descriptor from 3 up except `keep` (sorted): no other cluster's life line may
/// stay open in this holder.
fn close_others(keep: &[RawFd]) {
    let mut from: libc::c_uint = 3;
    for &fd in keep.iter().chain(std::iter::once(&RawFd::MAX)) {
        let fd = fd as libc::c_uint;
        if fd > from {
            // SAFETY: close_range only closes descriptors; these are not used in this child.
            let r = unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) };
            if r != 0 {
                for old in from..fd.min(65_536) {
                    // SAFETY: as above, one descriptor at a time where close_range is missing.
                    unsafe { libc::close(old as libc::c_int) };
                }
            }
        }
        from = from.max(fd.saturating_add(1));
    }
}

/// Writes two numbers to `fd` (one write: a pipe delivers it whole).
fn report(fd: RawFd, a: i32, b: i32) {
    let words = [a, b];
    // SAFETY: writes 8 bytes from a live array of two i32.
    unsafe { libc::write(fd, words.as_ptr().cast(), 8) };
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Does nothing: installed so SIGCHLD and SIGTERM interrupt a wait instead of being ignored.
extern "C" fn wake(_: libc::c_int) {}

/// Installs [`wake`] for `signal`.
fn wake_on(signal: libc::c_int) {
    // SAFETY: a zeroed sigaction with a valid handler and no flags is a valid argument.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = wake as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// The inner process: mounts, then reaps whatever ends in its pid namespace until killed.
fn inner_main(plan: &Strings, report_fd: RawFd, outer: libc::pid_t) -> ! {
    // SAFETY: prctl, getpid and getppid have no memory preconditions. If the outer process
    // died before the death signal was armed, exit now rather than hold namespaces nobody will
    // clean. As pid 1 of a new pid namespace our parent is outside it, and getppid says 0.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, plan.inner_name.as_ptr());
        let parent = if libc::getpid() == 1 { 0 } else { outer };
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    if plan.own_proc_and_tmp {
        let none = std::ptr::null();
        let mounts: [(
            usize,
            *const libc::c_char,
            *const libc::c_char,
            libc::c_ulong,
        ); 4] = [
            (
                3,
                plan.slash.as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
            ),
            (
                4,
                plan.proc_dir.as_ptr(),
                plan.proc_fs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            ),
            (
                5,
                plan.tmp_dir.as_ptr(),
                plan.tmp_fs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
            ),
            (
                6,
                plan.shm_dir.as_ptr(),
                plan.tmp_fs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
            ),
        ];
        for (step, target, fstype, flags) in mounts {
            let source = if fstype.is_null() { none } else { fstype };
            // SAFETY: every pointer is a NUL-terminated string made before the fork, or null.
            if unsafe { libc::mount(source, target, fstype, flags, none.cast()) } != 0 {
                report(report_fd, -(step as i32), errno());
                // SAFETY: leaves this child without running anything of the parent's.
                unsafe { libc::_exit(1) };
            }
        }
    }
    report(report_fd, 0, 0);
    // SAFETY: closes our copy of the report pipe; signal-mask calls on local sets; waitpid and
    // sigsuspend have no memory preconditions beyond the valid pointers given.
    unsafe {
        libc::close(report_fd);
        let mut block: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &block, std::ptr::null_mut());
        wake_on(libc::SIGCHLD);
        let mut open: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut open);
        loop {
            let mut status = 0;
            while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
            libc::sigsuspend(&open);
        }
    }
}

/// The outer process: makes the inner one, then waits for the owner to go and cleans up.
fn outer_main(plan: &Strings, life: RawFd, report_fd: RawFd, owner: libc::pid_t) -> ! {
    // SAFETY: system calls on descriptors and strings that are live in this child; see each.
    unsafe {
        wake_on(libc::SIGTERM);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        libc::prctl(libc::PR_SET_NAME, plan.outer_name.as_ptr());
        if libc::getppid() != owner {
            libc::_exit(1);
        }
        if libc::unshare(plan.namespaces) != 0 {
            report(report_fd, -1, errno());
            libc::_exit(1);
        }
        if let Some(name) = &plan.hostname
            && libc::sethostname(name.as_ptr(), name.as_bytes().len()) != 0
        {
            report(report_fd, -2, errno());
            libc::_exit(1);
        }
        let me = libc::getpid();
        let inner = libc::fork();
        if inner < 0 {
            report(report_fd, -3, errno());
            libc::_exit(1);
        }
        if inner == 0 {
            libc::close(life);
            inner_main(plan, report_fd, me);
        }
        // The inner process reports its mounts; the owner learns its pid from us first.
        report(report_fd, inner, 0);
        libc::close(report_fd);
        // Wait for the life line's end of file, or the owner's death (reparented).
        let mut watch = libc::pollfd {
            fd: life,
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            let ready = libc::poll(&mut watch, 1, -1);
            if ready > 0 || libc::getppid() != owner {
                break;
            }
        }
        libc::kill(inner, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(inner, &mut status, 0);
        // The node's processes die with its pid 1; their cgroup empties a moment later.
        for _ in 0..500 {
            let mut left = 0;
            for dir in &plan.remove_dirs {
                if libc::rmdir(dir.as_ptr()) != 0 && errno() != libc::ENOENT {
                    left += 1;
                }
            }
            if left == 0 {
                break;
            }
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        libc::_exit(0);
    }
}

/// A plan's strings, made before the fork (the children must not allocate).
struct Strings {
    outer_name: CString,
    inner_name: CString,
    namespaces: libc::c_int,
    hostname: Option<CString>,
    own_proc_and_tmp: bool,
    remove_dirs: Vec<CString>,
    slash: CString,
    proc_dir: CString,
    proc_fs: CString,
    tmp_dir: CString,
    shm_dir: CString,
    tmp_fs: CString,
}

/// `name` cut to the 15 bytes a process name (`comm`) keeps, at a character boundary.
fn comm(name: &str) -> String {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| {
        Error::of(
            ErrorKind::Invalid,
            format!("{s:?} holds a NUL byte"),
            "use plain names",
        )
    })
}

impl Holder {
    /// Forks a holder on `life` that makes `plan`'s namespaces; returns once they exist.
    pub fn start(life: &LifeLine, plan: &HolderPlan) -> Result<Holder> {
        let inner_role = if plan.namespaces & libc::CLONE_NEWPID != 0 {
            "pid 1"
        } else {
            "ns"
        };
        let strings = Strings {
            outer_name: c_string(&comm(&format!("{} holder", plan.name)))?,
            inner_name: c_string(&comm(&format!("{} {inner_role}", plan.name)))?,
            namespaces: plan.namespaces,
            hostname: plan.hostname.as_deref().map(c_string).transpose()?,
            own_proc_and_tmp: plan.own_proc_and_tmp,
            remove_dirs: plan
                .remove_dirs
                .iter()
                .map(|d| c_string(d))
                .collect::<Result<_>>()?,
            slash: c_string("/")?,
            proc_dir: c_string("/proc")?,
            proc_fs: c_string("proc")?,
            tmp_dir: c_string("/tmp")?,
            shm_dir: c_string("/dev/shm")?,
            tmp_fs: c_string("tmpfs")?,
        };
        let (report_read, report_write) = pipe()?;
        let life_fd = life.read.as_raw_fd();
        let report_fd = report_write.as_raw_fd();
        // SAFETY: getpid has no preconditions.
        let owner = unsafe { libc::getpid() };
        // SAFETY: the child runs only async-signal-safe calls (outer_main) and never returns.
        let outer = unsafe { libc::fork() };
        if outer < 0 {
            return Err(Error::os(
                "forking a holder",
                std::io::Error::last_os_error(),
            ));
        }
        if outer == 0 {
            let mut keep = [life_fd, report_fd];
            keep.sort_unstable();
            close_others(&keep);
            outer_main(&strings, life_fd, report_fd, owner);
        }
        drop(report_write);
        let mut started = Holder { outer, inner: 0 };
        // Two reports, in either order: the outer's (the inner pid) and the inner's (0: mounted).
        for _ in 0..2 {
            let (pid, _) = read_report(&report_read, &mut started)?;
            started.inner = started.inner.max(pid);
        }
        Ok(started)
    }

    /// Waits for the outer process to finish cleaning up (after the life line was cut), killing
    /// it after `EXIT_PATIENCE` (10 s).
    pub fn wait(&mut self) {
        if self.outer <= 0 {
            return;
        }
        let deadline = Instant::now() + EXIT_PATIENCE;
        loop {
            let mut status = 0;
            // SAFETY: waits for our own child, writing through a valid pointer.
            let done = unsafe { libc::waitpid(self.outer, &mut status, libc::WNOHANG) };
            if done != 0 {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(self.outer, libc::SIGKILL);
                    libc::waitpid(self.outer, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.outer = 0;
    }
}

/// Reads one report (two numbers); a negative first number is a failed step and its errno.
/// On failure the half-started holder is killed and reaped.
fn read_report(fd: &OwnedFd, holder: &mut Holder) -> Result<(i32, i32)> {
    let mut watch = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let mut words = [0i32; 2];
    // SAFETY: poll on one valid pollfd; read fills at most 8 bytes of a live [i32; 2].
    let got = unsafe {
        if libc::poll(&mut watch, 1, START_PATIENCE_MS) > 0 {
            libc::read(fd.as_raw_fd(), words.as_mut_ptr().cast(), 8)
        } else {
            -1
        }
    };
    let failure = if got != 8 {
        Some(Error::new(
            "a node's holder process ended or stalled before its namespaces were made",
            "run it again; if it keeps failing, check `dmesg` and that namespaces are allowed here",
        ))
    } else if words[0] < 0 {
        let step = STEPS[(-words[0] - 1) as usize % STEPS.len()];
        Some(Error::os(
            format!("a node's holder failed {step}"),
            std::io::Error::from_raw_os_error(words[1]),
        ))
    } else {
        None
    };
    match failure {
        Some(e) => {
            // SAFETY: kills our own child (its inner process follows by its death signal).
            unsafe { libc::kill(holder.outer, libc::SIGKILL) };
            holder.wait();
            Err(e)
        }
        None => Ok((words[0], words[1])),
    }
}
