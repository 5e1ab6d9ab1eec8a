//! A launcher that watches its instances' scheduling: how long each one's main thread ran and
//! how long it was runnable but waited on a run queue (`/proc/<pid>/schedstat`), from its
//! start to its stop. The wait is the figure KVM hands a guest as steal time for its vCPU
//! thread, so it is what a VM tenant in the instance's place would see.
//!
//! It wraps any [`Launcher`], so serving runs unchanged through [`crate::serve`].

use crate::error::Result;
use crate::instance::{Instance, Launcher, Reading, schedstat};
use crate::prices::Size;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One instance's life as the scheduler saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Life {
    pub pid: u32,
    pub alive_s: f64,
    /// CPU time of its main thread, seconds.
    pub cpu_s: f64,
    /// Time its main thread waited for a CPU while runnable, seconds.
    pub waited_s: f64,
}

/// Launches through `inner` and records each instance's [`Life`] when it stops.
pub struct Watched {
    inner: Arc<dyn Launcher>,
    lives: Arc<Mutex<Vec<Life>>>,
}

impl Watched {
    pub fn new(inner: Arc<dyn Launcher>) -> Watched {
        Watched {
            inner,
            lives: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The lives of the instances stopped so far.
    pub fn lives(&self) -> Vec<Life> {
        self.lives.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Launcher for Watched {
    fn kind(&self) -> String {
        self.inner.kind()
    }

    fn size(&self) -> Size {
        self.inner.size()
    }

    fn launch(&self) -> Result<Box<dyn Instance>> {
        let inner = self.inner.launch()?;
        let start = schedstat(inner.pid())?;
        Ok(Box::new(WatchedInstance {
            inner,
            start,
            started: Instant::now(),
            lives: self.lives.clone(),
        }))
    }
}

/// Its fields drop after [`Drop::drop`] has read the end figures: the instance stops last.
struct WatchedInstance {
    inner: Box<dyn Instance>,
    start: crate::instance::Schedstat,
    started: Instant,
    lives: Arc<Mutex<Vec<Life>>>,
}

impl Instance for WatchedInstance {
    fn pid(&self) -> u32 {
        self.inner.pid()
    }

    fn call(&mut self, samples: u64, seed: u64) -> Result<u64> {
        self.inner.call(samples, seed)
    }

    fn reading(&self) -> Result<Reading> {
        self.inner.reading()
    }
}

impl Drop for WatchedInstance {
    fn drop(&mut self) {
        let pid = self.inner.pid();
        // Read while it still lives; an instance that already died keeps no figures to read.
        if let Ok(end) = schedstat(pid) {
            let life = Life {
                pid,
                alive_s: self.started.elapsed().as_secs_f64(),
                cpu_s: end.cpu_ns.saturating_sub(self.start.cpu_ns) as f64 / 1e9,
                waited_s: end.run_delay_ns.saturating_sub(self.start.run_delay_ns) as f64 / 1e9,
            };
            self.lives
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(life);
        }
    }
}
