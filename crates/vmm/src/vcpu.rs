//! Stopping a vCPU from outside. While the guest runs, its host thread sits inside the
//! `KVM_RUN` ioctl and sees nothing else; a guest that never exits (`jmp $`) keeps it there
//! forever. The way out is a signal to that thread: the ioctl returns `EINTR`.
//!
//! The race: the signal may arrive just *before* the thread enters `KVM_RUN`, and then it would
//! be lost. So the signal handler also sets the vCPU's `immediate_exit` flag, which makes the
//! next `KVM_RUN` return `EINTR` at once; and the thread checks the stop flag before every run.

use kvm_bindings::kvm_run;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use virtlab_core::Error;
use virtlab_core::Result;

thread_local! {
    /// The `kvm_run` area of the vCPU this thread is running, while it runs one (else null).
    /// Read by the signal handler, on this same thread.
    static RUNNING: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The signal that kicks a vCPU thread out of `KVM_RUN`: a real-time one no one else uses here.
fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN() + 3
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    RUNNING.with(|run| {
        let run = run.get();
        if !run.is_null() {
            // SAFETY: `run` points at the mmapped kvm_run of the vCPU this thread is running;
            // it is cleared (under `Shared::thread`) before that vCPU can be dropped.
            unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
        }
    });
}

/// Installs the kick signal's handler once per process. No `SA_RESTART`: the ioctl must fail
/// with `EINTR` rather than be restarted.
pub(crate) fn install_kick_handler() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| {
            Error::new(
                format!("could not install the signal handler that stops vCPUs: {e}"),
                "nothing else in this process should handle real-time signal SIGRTMIN+3",
            )
        })
}

/// What the vCPU side and its interrupters share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set once and for good: every run from then on returns `Interrupted`.
    pub stop: AtomicBool,
    /// The thread inside [`Shared::enter`]…[`Shared::leave`], the only one it is safe to signal.
    thread: Mutex<Option<libc::pthread_t>>,
}

impl Shared {
    /// Called by the vCPU's thread before running it: from now on a kick reaches this thread.
    pub fn enter(&self, run: *mut kvm_run) {
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        RUNNING.with(|r| r.set(run));
        // SAFETY: pthread_self has no preconditions.
        *thread = Some(unsafe { libc::pthread_self() });
    }

    /// Called by the vCPU's thread after running it: kicks stop here.
    pub fn leave(&self) {
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        *thread = None;
        RUNNING.with(|r| r.set(std::ptr::null_mut()));
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Stops a VM's vCPU from any thread: the run in progress (or the next one) returns
/// [`super::GuestExit::Interrupted`], and so does every run after it.
#[derive(Debug, Clone)]
pub struct Interrupter {
    pub(crate) shared: Arc<Shared>,
}

impl Interrupter {
    /// Asks the vCPU to stop and kicks its thread out of the guest if it is in one.
    pub fn interrupt(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let thread = self.shared.thread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(thread) = *thread {
            // SAFETY: the thread is registered, so it is alive and inside `enter`…`leave`
            // (it cannot leave while we hold the lock); the handler is installed before any
            // thread registers.
            unsafe { libc::pthread_kill(thread, kick_signal()) };
        }
    }

    /// Whether [`Interrupter::interrupt`] was called.
    pub fn is_interrupted(&self) -> bool {
        self.shared.stopped()
    }
}
