//! The front's dispatcher: one thread that owns every instance slot and the queue, hands each
//! arriving request to an instance as the policy says, answers the load generator, and keeps
//! the books (who served what, cold or warm, instances alive over time).
//!
//! Dropping it lets go of every instance and waits for their threads, which stop the instances:
//! nothing outlives it on any path, a panic included.

use super::policy::Policy;
use super::worker::{self, Event, Job, Life};
use super::{AliveSample, InstanceRecord};
use crate::error::{Error, Result};
use crate::instance::Launcher;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Reads requests `<id> <seed>` from the front's socket and passes them on as arrivals; says
/// when the connection closes.
pub(super) fn receive(socket: TcpStream, events: Sender<Event>) {
    for line in BufReader::new(socket).lines() {
        let at = Instant::now();
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let (Some(id), Some(seed)) = (
            words.next().and_then(|w| w.parse().ok()),
            words.next().and_then(|w| w.parse().ok()),
        ) else {
            break;
        };
        if events.send(Event::Arrive { id, seed, at }).is_err() {
            return;
        }
    }
    let _ = events.send(Event::FrontClosed);
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Starting,
    Idle(Instant),
    Busy,
    Stopping,
    Stopped,
}

struct Slot {
    jobs: Option<Sender<Job>>,
    state: State,
    /// Started for a waiting request (not part of a warm fleet): its first request is cold.
    on_demand: bool,
    requests: usize,
}

/// A request waiting for an instance.
struct Pending {
    id: usize,
    seed: u64,
    arrived: Instant,
}

/// How the front handled one request.
pub(super) struct Handling {
    pub arrived: Instant,
    pub assigned: Option<Instant>,
    pub slot: Option<usize>,
    pub cold: bool,
    pub waited: bool,
    pub service_s: f64,
    pub hits: Option<u64>,
}

pub(super) struct Dispatcher {
    policy: Policy,
    samples: u64,
    queue_limit: usize,
    sample_every: Duration,
    launcher: Arc<dyn Launcher>,
    events: Sender<Event>,
    reply: TcpStream,
    pub t0: Instant,
    slots: Vec<Slot>,
    workers: Vec<JoinHandle<()>>,
    queue: VecDeque<Pending>,
    arrived: usize,
    answered: usize,
    pub handled: HashMap<usize, Handling>,
    pub alive: Vec<AliveSample>,
    pub lives: Vec<InstanceRecord>,
}

/// Seconds from `t0` to `t`, negative for a time before it (a warm fleet's start).
pub(super) fn secs_from(t0: Instant, t: Instant) -> f64 {
    match t.checked_duration_since(t0) {
        Some(d) => d.as_secs_f64(),
        None => -(t0 - t).as_secs_f64(),
    }
}

impl Dispatcher {
    pub fn new(
        policy: Policy,
        samples: u64,
        queue_limit: usize,
        sample_every: Duration,
        launcher: Arc<dyn Launcher>,
        events: Sender<Event>,
        reply: TcpStream,
    ) -> Dispatcher {
        Dispatcher {
            policy,
            samples,
            queue_limit,
            sample_every,
            launcher,
            events,
            reply,
            t0: Instant::now(),
            slots: Vec::new(),
            workers: Vec::new(),
            queue: VecDeque::new(),
            arrived: 0,
            answered: 0,
            handled: HashMap::new(),
            alive: Vec::new(),
            lives: Vec::new(),
        }
    }

    /// Starts a fixed fleet and waits until every instance is ready.
    pub fn prewarm(&mut self, events: &Receiver<Event>) -> Result<()> {
        let Policy::Fixed { instances } = self.policy else {
            return Ok(());
        };
        for _ in 0..instances {
            self.launch(false)?;
        }
        while self.slots.iter().any(|s| s.state == State::Starting) {
            let event = events.recv().map_err(|_| lost_events())?;
            self.handle(event)?;
        }
        Ok(())
    }

    /// Serves until the front closes and every request is answered, then stops every instance
    /// and collects what each used.
    pub fn run(&mut self, events: &Receiver<Event>) -> Result<()> {
        let mut front_open = true;
        while front_open || self.answered < self.arrived {
            let now = Instant::now();
            let wait = self
                .next_expiry()
                .map_or(Duration::from_millis(100), |t| {
                    t.saturating_duration_since(now)
                })
                .min(Duration::from_millis(100));
            match events.recv_timeout(wait) {
                Ok(Event::FrontClosed) => front_open = false,
                Ok(event) => self.handle(event)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(lost_events()),
            }
            self.expire_idle();
        }
        for slot in 0..self.slots.len() {
            self.stop(slot);
        }
        while self.slots.iter().any(|s| s.state != State::Stopped) {
            let event = events.recv().map_err(|_| lost_events())?;
            self.handle(event)?;
        }
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Arrive { id, seed, at } => self.arrive(Pending {
                id,
                seed,
                arrived: at,
            }),
            Event::FrontClosed => Ok(()),
            Event::Ready { slot, result } => {
                result?;
                self.slots[slot].state = State::Idle(Instant::now());
                match self.queue.pop_front() {
                    Some(p) => self.assign(slot, p, self.slots[slot].on_demand),
                    None => Ok(()),
                }
            }
            Event::Done {
                slot,
                id,
                result,
                service_s,
            } => {
                let hits = result?;
                self.answer(id, Some(hits))?;
                if let Some(h) = self.handled.get_mut(&id) {
                    h.service_s = service_s;
                    h.hits = Some(hits);
                }
                self.slots[slot].requests += 1;
                if let Policy::PerRequest { .. } = self.policy {
                    self.stop(slot);
                } else {
                    self.slots[slot].state = State::Idle(Instant::now());
                    if let Some(p) = self.queue.pop_front() {
                        self.assign(slot, p, false)?;
                    }
                }
                self.scale_up()
            }
            Event::Stopped { slot, result } => {
                let life = result?;
                self.slots[slot].state = State::Stopped;
                self.record_life(slot, &life);
                self.scale_up()
            }
        }
    }

    fn arrive(&mut self, p: Pending) -> Result<()> {
        self.arrived += 1;
        if let Some(slot) = self
            .slots
            .iter()
            .position(|s| matches!(s.state, State::Idle(_)))
        {
            return self.assign(slot, p, false);
        }
        let waited = self.queue.len() < self.queue_limit;
        self.handled.insert(
            p.id,
            Handling {
                arrived: p.arrived,
                assigned: None,
                slot: None,
                cold: false,
                waited,
                service_s: 0.0,
                hits: None,
            },
        );
        if !waited {
            // The queue is full: drop it, and say so at once.
            return self.answer(p.id, None);
        }
        self.queue.push_back(p);
        self.scale_up()
    }

    fn assign(&mut self, slot: usize, p: Pending, cold: bool) -> Result<()> {
        let job = Job {
            id: p.id,
            seed: p.seed,
            samples: self.samples,
        };
        let sent = self.slots[slot]
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(Error::new(
                format!("the thread of instance slot {slot} ended early"),
                "see the message above; run it again",
            ));
        }
        self.slots[slot].state = State::Busy;
        let waited = self.handled.get(&p.id).is_some_and(|h| h.waited);
        self.handled.insert(
            p.id,
            Handling {
                arrived: p.arrived,
                assigned: Some(Instant::now()),
                slot: Some(slot),
                cold,
                waited,
                service_s: 0.0,
                hits: None,
            },
        );
        Ok(())
    }

    fn answer(&mut self, id: usize, hits: Option<u64>) -> Result<()> {
        self.answered += 1;
        let line = match hits {
            Some(hits) => format!("{id} {hits}\n"),
            None => format!("{id} dropped\n"),
        };
        self.reply
            .write_all(line.as_bytes())
            .map_err(|e| Error::os("answering the load generator over the front's socket", e))
    }

    /// Starts instances for waiting requests, as far as the policy allows.
    fn scale_up(&mut self) -> Result<()> {
        let (Policy::Autoscale { max_instances, .. } | Policy::PerRequest { max_instances }) =
            self.policy
        else {
            return Ok(());
        };
        while self.queue.len() > self.count(|s| s == State::Starting)
            && self.count(|s| s != State::Stopped) < max_instances
        {
            self.launch(true)?;
        }
        Ok(())
    }

    fn count(&self, which: impl Fn(State) -> bool) -> usize {
        self.slots.iter().filter(|s| which(s.state)).count()
    }

    fn launch(&mut self, on_demand: bool) -> Result<()> {
        let slot = self.slots.len();
        let (jobs, their_jobs) = mpsc::channel();
        let (launcher, events, every) = (
            self.launcher.clone(),
            self.events.clone(),
            self.sample_every,
        );
        let handle = std::thread::Builder::new()
            .name(format!("instance-{slot}"))
            .spawn(move || worker::run(launcher, slot, their_jobs, events, every))
            .map_err(|e| Error::os("starting an instance's thread", e))?;
        self.workers.push(handle);
        self.slots.push(Slot {
            jobs: Some(jobs),
            state: State::Starting,
            on_demand,
            requests: 0,
        });
        self.note_alive(Instant::now());
        Ok(())
    }

    fn stop(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        if s.state != State::Stopped {
            // Its thread sees the closed channel, stops the instance and reports its life.
            s.jobs = None;
            s.state = State::Stopping;
        }
    }

    fn keep_alive(&self) -> Option<Duration> {
        match self.policy {
            Policy::Autoscale { keep_alive_s, .. } => Some(Duration::from_secs_f64(keep_alive_s)),
            _ => None,
        }
    }

    fn next_expiry(&self) -> Option<Instant> {
        let keep = self.keep_alive()?;
        self.slots
            .iter()
            .filter_map(|s| match s.state {
                State::Idle(since) => Some(since + keep),
                _ => None,
            })
            .min()
    }

    fn expire_idle(&mut self) {
        let Some(keep) = self.keep_alive() else {
            return;
        };
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            if let State::Idle(since) = self.slots[slot].state
                && now.duration_since(since) >= keep
            {
                self.stop(slot);
            }
        }
    }

    fn note_alive(&mut self, at: Instant) {
        let alive = self.count(|s| s != State::Stopped);
        self.alive.push(AliveSample {
            at_s: secs_from(self.t0, at),
            alive,
        });
    }

    fn record_life(&mut self, slot: usize, life: &Life) {
        self.note_alive(life.stopped);
        self.lives.push(InstanceRecord {
            slot,
            pid: life.pid,
            on_demand: self.slots[slot].on_demand,
            started_s: secs_from(self.t0, life.started),
            cold_start_s: (life.ready - life.started).as_secs_f64(),
            stopped_s: secs_from(self.t0, life.stopped),
            requests: self.slots[slot].requests,
            cpu_s: life.cpu_s,
            memory_gib_s: life.memory_gib_s,
            peak_rss_bytes: life.peak_rss_bytes,
        });
    }
}

fn lost_events() -> Error {
    Error::new(
        "the front lost its event channel",
        "run it again; if it repeats, report it with the message above",
    )
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            slot.jobs = None;
        }
        for worker in self.workers.drain(..) {
            // A worker that panicked has already stopped its instance while unwinding.
            let _ = worker.join();
        }
    }
}
