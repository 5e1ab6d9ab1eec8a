//! One instance's thread: starts the instance (its cold start), hands it the jobs the
//! dispatcher sends, samples what it uses, and stops it when the dispatcher lets go.

use crate::error::{Error, Result};
use crate::instance::{Launcher, Reading};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// One request for an instance.
pub(super) struct Job {
    pub id: usize,
    pub seed: u64,
    pub samples: u64,
}

/// What an instance used over its life.
pub(super) struct Life {
    pub pid: u32,
    pub started: Instant,
    pub ready: Instant,
    pub stopped: Instant,
    pub cpu_s: f64,
    pub memory_gib_s: f64,
    pub peak_rss_bytes: u64,
}

/// What a worker tells the dispatcher.
pub(super) enum Event {
    /// A request arrived at the front.
    Arrive { id: usize, seed: u64, at: Instant },
    /// The front's connection closed: no more requests.
    FrontClosed,
    /// An instance started (or failed to).
    Ready { slot: usize, result: Result<()> },
    /// An instance answered a request: the hit count, and the round trip to it.
    Done {
        slot: usize,
        id: usize,
        result: Result<u64>,
        service_s: f64,
    },
    /// An instance stopped.
    Stopped { slot: usize, result: Result<Life> },
}

/// Integrates resident memory over time from samples (trapezoids), and keeps the peak.
struct Meter {
    last: Option<(Instant, u64)>,
    gib_s: f64,
    peak: u64,
    cpu_s: f64,
    error: Option<Error>,
}

impl Meter {
    fn add(&mut self, at: Instant, reading: Result<Reading>) {
        match reading {
            Ok(r) => {
                if let Some((t, rss)) = self.last {
                    let mean_gib = (rss + r.rss_bytes) as f64 / 2.0 / (1u64 << 30) as f64;
                    self.gib_s += mean_gib * (at - t).as_secs_f64();
                }
                self.last = Some((at, r.rss_bytes));
                self.peak = self.peak.max(r.rss_bytes);
                self.cpu_s = r.cpu_s;
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// Tells the dispatcher if the worker's thread panics, so it stops waiting for an answer that
/// will not come (the instance itself is dropped, so stopped, while the thread unwinds).
struct PanicReport {
    slot: usize,
    events: Sender<Event>,
}

impl Drop for PanicReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let problem = format!("the thread of instance slot {} panicked", self.slot);
            let fix = "see the panic message above; run it again, and report it if it repeats";
            let result = Err(Error::new(problem, fix));
            let _ = self.events.send(Event::Stopped {
                slot: self.slot,
                result,
            });
        }
    }
}

/// Runs one instance in slot `slot` until `jobs` is dropped.
pub(super) fn run(
    launcher: Arc<dyn Launcher>,
    slot: usize,
    jobs: Receiver<Job>,
    events: Sender<Event>,
    sample_every: Duration,
) {
    let _report = PanicReport {
        slot,
        events: events.clone(),
    };
    let started = Instant::now();
    let mut instance = match launcher.launch() {
        Ok(instance) => instance,
        Err(e) => {
            let _ = events.send(Event::Ready {
                slot,
                result: Err(e),
            });
            return;
        }
    };
    let ready = Instant::now();
    let pid = instance.pid();
    let mut meter = Meter {
        last: None,
        gib_s: 0.0,
        peak: 0,
        cpu_s: 0.0,
        error: None,
    };
    meter.add(ready, instance.reading());
    let _ = events.send(Event::Ready {
        slot,
        result: Ok(()),
    });
    loop {
        match jobs.recv_timeout(sample_every) {
            Ok(job) => {
                let sent = Instant::now();
                let result = instance.call(job.samples, job.seed);
                let service_s = sent.elapsed().as_secs_f64();
                let failed = result.is_err();
                let _ = events.send(Event::Done {
                    slot,
                    id: job.id,
                    result,
                    service_s,
                });
                if failed {
                    break;
                }
                meter.add(Instant::now(), instance.reading());
            }
            Err(RecvTimeoutError::Timeout) => meter.add(Instant::now(), instance.reading()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    meter.add(Instant::now(), instance.reading());
    drop(instance);
    let stopped = Instant::now();
    let result = match meter.error {
        Some(e) => Err(e),
        None => Ok(Life {
            pid,
            started,
            ready,
            stopped,
            cpu_s: meter.cpu_s,
            memory_gib_s: meter.gib_s,
            peak_rss_bytes: meter.peak,
        }),
    };
    let _ = events.send(Event::Stopped { slot, result });
}
