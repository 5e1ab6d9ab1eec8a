//! Tokio runtimes that work from any notebook cell: each runs on a fresh std thread of its own,
//! so nothing here nests inside evcxr's runtime after a cell with a top-level `.await` (where a
//! nested `block_on` panics). Panics inside tasks are supervised: they come back through their
//! JoinHandles, not printed and not fatal in strict mode.

use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::strict;

/// A current-thread runtime with timers: the coroutine chapter's one-thread scheduler.
pub(crate) fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

/// A multi-thread runtime with timers (one worker per CPU).
pub(crate) fn multi_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
}

/// Runs `f` on a fresh thread with a runtime built by `build`, returning what `f` returns.
pub(crate) fn on_own_runtime<T: Send + 'static>(
    build: fn() -> std::io::Result<tokio::runtime::Runtime>,
    f: impl AsyncFnOnce() -> T + Send + 'static,
) -> Result<T> {
    std::thread::Builder::new()
        .name("virtlab-runtime".into())
        .spawn(move || -> Result<T> {
            let runtime = build().map_err(|e| Error::os("starting a tokio runtime", e))?;
            strict::supervise(|| runtime.block_on(f()))
                .map_err(|message| Error::bug(format!("the runtime's thread panicked: {message}")))
        })
        .map_err(|e| Error::os("starting the runtime's thread", e))?
        .join()
        .map_err(|_| Error::bug("the runtime's thread was lost"))?
}

/// A current-thread runtime kept running on its own thread until dropped, so tasks can be
/// spawned onto it one by one (through [`RuntimeThread::handle`]) from the caller's thread.
pub(crate) struct RuntimeThread {
    handle: tokio::runtime::Handle,
    tid: u64,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThread {
    /// Starts the thread and its runtime.
    pub(crate) fn start() -> Result<RuntimeThread> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("virtlab-runtime".into())
            .spawn(move || {
                let runtime = match current_thread_runtime() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::os("starting a tokio runtime", e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((
                    runtime.handle().clone(),
                    virtlab_core::timeline::thread_id(),
                )));
                // Task panics come back through their JoinHandles; the hook stays quiet here.
                let _ = strict::supervise(|| runtime.block_on(shutdown_rx));
            })
            .map_err(|e| Error::os("starting the runtime's thread", e))?;
        let (handle, tid) = ready_rx
            .recv()
            .map_err(|_| Error::bug("the runtime's thread ended before it started"))??;
        Ok(RuntimeThread {
            handle,
            tid,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Where to spawn tasks.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// The OS thread that runs every task.
    pub(crate) fn tid(&self) -> u64 {
        self.tid
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        // Ending block_on drops the runtime on its own thread, cancelling what is left.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
