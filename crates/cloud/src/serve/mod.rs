//! Elastic serving, for real: a front on a TCP socket (127.0.0.1, a free port) receives a
//! trace's requests from a load generator and hands each to an instance, as a policy says.
//!
//! Every request is timed end to end through the socket and marked cold (it waited for an
//! instance started for it) or warm; every instance's CPU-seconds and memory × time are read
//! from the operating system while it lives. When [`serve`] returns, by any path, every
//! instance, thread and socket it made is gone.

mod client;
mod dispatch;
mod policy;
mod report;
mod worker;

pub use policy::Policy;
pub use report::{Summary, percentile};

use crate::bill::{InstanceUsage, UsageRecord};
use crate::error::{Error, ErrorKind, Result};
use crate::instance::Launcher;
use crate::trace::Trace;
use dispatch::{Dispatcher, secs_from};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to serve a trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServeSpec {
    pub policy: Policy,
    /// Monte Carlo samples per request: the size of the unit of work.
    pub samples_per_request: u64,
    /// Requests the front holds waiting; one more is dropped.
    pub queue_limit: usize,
    /// How often an instance's CPU time and memory are read, seconds.
    pub sample_every_s: f64,
}

impl ServeSpec {
    /// A spec for `policy` with the lab's defaults: 1 000 000 samples a request, a queue of
    /// 1 000, readings every 20 ms.
    pub fn new(policy: Policy) -> ServeSpec {
        ServeSpec {
            policy,
            samples_per_request: 1_000_000,
            queue_limit: 1000,
            sample_every_s: 0.02,
        }
    }

    /// Refuses a spec that cannot serve.
    pub fn check(&self) -> Result<()> {
        self.policy.check()?;
        if !(self.sample_every_s.is_finite() && self.sample_every_s > 0.0) {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("the reading interval cannot be {} s", self.sample_every_s),
                "give how often to read an instance's CPU and memory, in seconds above 0 (0.02 is a fair start)",
            ));
        }
        Ok(())
    }
}

/// One request as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub id: usize,
    /// When the trace says it arrives, seconds from the start.
    pub arrival_s: f64,
    /// From the load generator's send to its answer, through the socket.
    pub latency_s: f64,
    pub dropped: bool,
    /// It waited for an instance started for it: its latency holds a cold start.
    pub cold: bool,
    /// It waited in the front's queue.
    pub waited: bool,
    /// From arriving at the front to being handed to an instance.
    pub queued_s: f64,
    /// The round trip to the instance that did the work.
    pub service_s: f64,
    /// The rest: sockets, threads and the front's own handling.
    pub front_s: f64,
    pub instance: Option<usize>,
    pub hits: Option<u64>,
}

/// One instance's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub slot: usize,
    pub pid: u32,
    /// Started for a waiting request (not part of a warm fleet).
    pub on_demand: bool,
    /// Seconds from the trace's start (negative: started before it, warm).
    pub started_s: f64,
    /// From starting it to its first `ready`.
    pub cold_start_s: f64,
    pub stopped_s: f64,
    pub requests: usize,
    pub cpu_s: f64,
    pub memory_gib_s: f64,
    pub peak_rss_bytes: u64,
}

/// Instances alive from `at_s` on (a step chart).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AliveSample {
    pub at_s: f64,
    pub alive: usize,
}

/// A whole run of one policy on one trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeRun {
    pub spec: ServeSpec,
    /// The instance kind ("process").
    pub kind: String,
    pub size: crate::prices::Size,
    pub trace_duration_s: f64,
    /// From the trace's start to the last answer.
    pub span_s: f64,
    pub requests: Vec<RequestRecord>,
    pub instances: Vec<InstanceRecord>,
    pub alive: Vec<AliveSample>,
    pub summary: Summary,
}

impl ServeRun {
    /// The run's usage record, for the bill: served requests' times (with the start of the
    /// instance a cold one waited for), every instance's life.
    pub fn usage(&self) -> UsageRecord {
        let served = || self.requests.iter().filter(|r| !r.dropped);
        let start_of = |slot: Option<usize>| {
            self.instances
                .iter()
                .find(|i| Some(i.slot) == slot)
                .map_or(0.0, |i| i.cold_start_s)
        };
        UsageRecord {
            span_s: self.span_s,
            request_seconds: served().map(|r| r.service_s).collect(),
            cold_start_seconds: served()
                .map(|r| if r.cold { start_of(r.instance) } else { 0.0 })
                .collect(),
            instances: self
                .instances
                .iter()
                .map(|i| InstanceUsage {
                    alive_s: i.stopped_s - i.started_s,
                    whole_span: !i.on_demand,
                    size: self.size,
                    cpu_s: i.cpu_s,
                    memory_gib_s: i.memory_gib_s,
                })
                .collect(),
        }
    }

    /// Every process the run started (to check that none is left).
    pub fn pids(&self) -> Vec<u32> {
        self.instances.iter().map(|i| i.pid).collect()
    }
}

/// The load generator's and the front's own threads and sockets: stopped, shut and joined when
/// dropped, whichever way [`serve`] leaves.
struct Threads {
    stop: Arc<AtomicBool>,
    sockets: Vec<TcpStream>,
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| Error::os(format!("starting the {name} thread"), e))?;
        self.handles.push(handle);
        Ok(())
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in &self.sockets {
            // Unblocks any thread still reading; fails harmlessly on a closed socket.
            let _ = s.shutdown(Shutdown::Both);
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn socket_error(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::os(format!("{what} on 127.0.0.1"), e)
}

/// Plays `trace` against a front serving with `spec`'s policy on instances from `launcher`.
pub fn serve(trace: &Trace, spec: &ServeSpec, launcher: Arc<dyn Launcher>) -> Result<ServeRun> {
    spec.check()?;
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(socket_error("opening the front's socket"))?;
    let addr = listener
        .local_addr()
        .map_err(socket_error("reading the front's port"))?;
    // The connection completes in the listener's backlog, so connecting before accepting
    // cannot wait forever.
    let client = TcpStream::connect(addr).map_err(socket_error("connecting to the front"))?;
    let (front, _) = listener
        .accept()
        .map_err(socket_error("accepting at the front"))?;
    drop(listener);
    let clone = |s: &TcpStream| s.try_clone().map_err(socket_error("sharing a socket"));
    for s in [&client, &front] {
        s.set_nodelay(true)
            .map_err(socket_error("setting TCP_NODELAY"))?;
    }
    let mut threads = Threads {
        stop: Arc::new(AtomicBool::new(false)),
        sockets: vec![clone(&client)?, clone(&front)?],
        handles: Vec::new(),
    };
    let (events_tx, events) = mpsc::channel();
    let mut dispatcher = Dispatcher::new(
        spec.policy,
        spec.samples_per_request,
        spec.queue_limit,
        Duration::from_secs_f64(spec.sample_every_s),
        launcher.clone(),
        events_tx.clone(),
        clone(&front)?,
    );
    let front_reader = clone(&front)?;
    threads.spawn("front", move || dispatch::receive(front_reader, events_tx))?;
    dispatcher.prewarm(&events)?;

    let t0 = Instant::now();
    dispatcher.t0 = t0;
    let (sent_tx, sent_rx) = mpsc::channel();
    let (answer_tx, answer_rx) = mpsc::channel();
    let (player, stop) = (clone(&client)?, threads.stop.clone());
    let arrivals = trace.arrivals.clone();
    threads.spawn("load", move || {
        client::play(player, arrivals, t0, stop, sent_tx)
    })?;
    let listener_socket = clone(&client)?;
    threads.spawn("answers", move || {
        client::listen(listener_socket, answer_tx)
    })?;

    dispatcher.run(&events)?;
    // Every request is answered: closing the front's side ends the answer reader.
    front
        .shutdown(Shutdown::Write)
        .map_err(socket_error("closing the front's socket"))?;
    let sent: HashMap<usize, Instant> = sent_rx.iter().collect();
    let answers: HashMap<usize, (Instant, Option<u64>)> = answer_rx
        .iter()
        .map(|(id, at, hits)| (id, (at, hits)))
        .collect();
    drop(threads);

    let mut requests = Vec::with_capacity(trace.arrivals.len());
    for (id, arrival) in trace.arrivals.iter().enumerate() {
        let (Some(sent_at), Some((answered_at, _)), Some(h)) =
            (sent.get(&id), answers.get(&id), dispatcher.handled.get(&id))
        else {
            return Err(Error::new(
                format!("request {id} was not sent, answered or handled"),
                "run it again; if it repeats, report it with the message above",
            ));
        };
        let latency_s = (*answered_at - *sent_at).as_secs_f64();
        let queued_s = h.assigned.map_or(0.0, |a| (a - h.arrived).as_secs_f64());
        requests.push(RequestRecord {
            id,
            arrival_s: arrival.at_s,
            latency_s,
            dropped: h.assigned.is_none(),
            cold: h.cold,
            waited: h.waited,
            queued_s,
            service_s: h.service_s,
            front_s: (latency_s - queued_s - h.service_s).max(0.0),
            instance: h.slot,
            hits: h.hits,
        });
    }
    let last_answer = answers
        .values()
        .map(|(at, _)| secs_from(t0, *at))
        .fold(0.0, f64::max);
    let mut instances = std::mem::take(&mut dispatcher.lives);
    instances.sort_by_key(|i| i.slot);
    let alive = std::mem::take(&mut dispatcher.alive);
    let max_alive = alive.iter().map(|a| a.alive).max().unwrap_or(0);
    Ok(ServeRun {
        spec: *spec,
        kind: launcher.kind(),
        size: launcher.size(),
        trace_duration_s: trace.spec.duration_s,
        span_s: trace.spec.duration_s.max(last_answer),
        summary: Summary::of(&requests, &instances, max_alive),
        requests,
        instances,
        alive,
    })
}
