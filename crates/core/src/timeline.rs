//! Who ran when: events with a timestamp, process id and OS thread id, gathered from every
//! executor (processes, threads, tasks) into one [`Timeline`] and drawn as one lane per worker.
//!
//! Timestamps come from the system-wide monotonic clock, so events recorded in different
//! processes on one machine line up.

use crate::Result;
use serde::{Deserialize, Serialize};
use virtlab_display::plot::LaneChart;
use virtlab_display::{Figure, Table};

/// What happened at an [`Event`]: a worker started, finished one iteration, or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "iteration", rename_all = "snake_case")]
pub enum EventKind {
    /// The worker began its work (the left end of its lane).
    Start,
    /// The worker reached iteration number `i`, counting from 0, and printed its line (a tick on
    /// its lane); the iteration's CPU burn, if any, comes after.
    Iteration(u32),
    /// The worker finished all its work (the right end of its lane).
    End,
}

/// One moment in a worker's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The worker's name, one lane in the plot (e.g. `worker-1`).
    pub lane: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
    /// Nanoseconds on the system-wide monotonic clock.
    pub t_ns: u64,
    /// The process the worker ran in.
    pub pid: u32,
    /// The OS thread id (Linux `gettid`), 0 where the platform has none.
    pub tid: u64,
}

impl Event {
    /// An event stamped now, in this process and on this OS thread.
    pub fn now(lane: &str, kind: EventKind) -> Event {
        Event {
            lane: lane.to_string(),
            kind,
            t_ns: now_ns(),
            pid: std::process::id(),
            tid: thread_id(),
        }
    }
}

/// Nanoseconds on the monotonic clock shared by every process on this machine.
pub fn now_ns() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec through a valid pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
    #[cfg(not(unix))]
    {
        // Not comparable across processes here; still monotonic within one.
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        EPOCH
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}

/// The calling thread's OS thread id (what `top -H` and Process Explorer show).
pub fn thread_id() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() as u64 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// A lane's sort key: its name without the trailing number, then that number.
fn worker_order(lane: &str) -> (&str, u64, &str) {
    let digits = lane.len() - lane.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = lane.split_at(lane.len() - digits);
    (stem, number.parse().unwrap_or(0), lane)
}

/// Events from one run, in time order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Every event of the run, earliest first (when built with [`Timeline::new`]).
    pub events: Vec<Event>,
}

impl Timeline {
    /// A timeline of these events, sorted by time (they arrive from several workers out of order).
    pub fn new(mut events: Vec<Event>) -> Timeline {
        events.sort_by_key(|e| e.t_ns);
        Timeline { events }
    }

    /// Lane names in worker order: `worker-2` before `worker-10`, whoever printed first.
    pub fn lanes(&self) -> Vec<String> {
        let mut lanes: Vec<String> = self.events.iter().map(|e| e.lane.clone()).collect();
        lanes.sort_by(|a, b| worker_order(a).cmp(&worker_order(b)));
        lanes.dedup();
        lanes
    }

    /// When the first event happened, in ns on the monotonic clock: time 0 in tables and charts.
    pub fn start_ns(&self) -> Option<u64> {
        self.events.first().map(|e| e.t_ns)
    }

    /// Distinct (pid, tid) pairs that ran work: how many OS threads the run really used.
    pub fn os_threads(&self) -> Vec<(u32, u64)> {
        let mut seen: Vec<(u32, u64)> = self.events.iter().map(|e| (e.pid, e.tid)).collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    }

    /// How many iterations the run's units reported: what a stopped run is judged by, rather
    /// than by how long it took.
    pub fn iterations(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Iteration(_)))
            .count()
    }

    /// Distinct process ids that ran work.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.events.iter().map(|e| e.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// One row per event: ms since the first event, lane, what happened, pid and OS thread id.
    pub fn table(&self) -> Table {
        let start = self.start_ns().unwrap_or(0);
        let mut t = Table::new("Timeline", ["t (ms)", "lane", "event", "pid", "tid"]);
        for e in &self.events {
            let what = match e.kind {
                EventKind::Start => "start".to_string(),
                EventKind::Iteration(i) => format!("iteration {i}"),
                EventKind::End => "end".to_string(),
            };
            t.row([
                format!("{:.1}", (e.t_ns - start) as f64 / 1e6),
                e.lane.clone(),
                what,
                e.pid.to_string(),
                e.tid.to_string(),
            ]);
        }
        t
    }

    /// One lane per worker: a bar from start to end, a tick per iteration.
    pub fn plot(&self, title: &str) -> Result<Figure> {
        let start = self.start_ns().unwrap_or(0);
        let seconds = |t: u64| (t - start) as f64 / 1e9;
        let mut chart = LaneChart::new(title).x_label("seconds since the first event");
        for lane in self.lanes() {
            let events: Vec<&Event> = self.events.iter().filter(|e| e.lane == lane).collect();
            let first = events.first().map_or(0.0, |e| seconds(e.t_ns));
            let last = events.last().map_or(0.0, |e| seconds(e.t_ns));
            let ticks = events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Iteration(_)))
                .map(|e| seconds(e.t_ns))
                .collect();
            let (pid, tid) = events.first().map_or((0, 0), |e| (e.pid, e.tid));
            chart = chart.lane(format!("{lane} (pid {pid}, tid {tid})"), first, last, ticks);
        }
        chart.render().map_err(Into::into)
    }

    /// Shows [`Timeline::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(lane: &str, kind: EventKind, t_ns: u64, pid: u32, tid: u64) -> Event {
        Event {
            lane: lane.into(),
            kind,
            t_ns,
            pid,
            tid,
        }
    }

    #[test]
    fn lanes_are_in_worker_order_whoever_printed_first() {
        let t = Timeline::new(vec![
            event("worker-10", EventKind::Start, 1, 1, 1),
            event("worker-3", EventKind::Start, 2, 1, 1),
            event("worker-1", EventKind::Start, 3, 1, 1),
            event("worker-3", EventKind::End, 4, 1, 1),
        ]);
        assert_eq!(t.lanes(), vec!["worker-1", "worker-3", "worker-10"]);
    }

    #[test]
    fn events_sort_by_time() {
        let t = Timeline::new(vec![
            event("b", EventKind::Start, 20, 2, 2),
            event("a", EventKind::Start, 10, 1, 1),
            event("a", EventKind::End, 30, 1, 1),
        ]);
        assert_eq!(
            t.events.iter().map(|e| e.t_ns).collect::<Vec<_>>(),
            vec![10, 20, 30]
        );
        assert_eq!(t.lanes(), vec!["a", "b"]);
        assert_eq!(t.os_threads(), vec![(1, 1), (2, 2)]);
        assert_eq!(t.pids(), vec![1, 2]);
    }

    #[test]
    fn clock_is_monotonic_and_thread_ids_differ_between_threads() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        let here = thread_id();
        let there = std::thread::spawn(thread_id).join().unwrap();
        if cfg!(target_os = "linux") {
            assert_ne!(here, there);
        }
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = event("worker-1", EventKind::Iteration(3), 5, 42, 43);
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains("\"kind\":\"iteration\"") && json.contains("\"iteration\":3"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
    }

    #[test]
    fn plot_draws_one_lane_per_worker() {
        let t = Timeline::new(vec![
            event("worker-1", EventKind::Start, 0, 1, 1),
            event("worker-1", EventKind::Iteration(0), 1_000_000, 1, 1),
            event("worker-1", EventKind::End, 2_000_000, 1, 1),
            event("worker-2", EventKind::Start, 500_000, 2, 2),
            event("worker-2", EventKind::End, 2_500_000, 2, 2),
        ]);
        let svg = t.plot("two workers").unwrap().svg().to_string();
        assert!(svg.contains("worker-1 (pid 1, tid 1)") && svg.contains("worker-2 (pid 2, tid 2)"));
    }
}
