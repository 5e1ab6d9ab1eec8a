//! Elastic serving with real `virtlab-instance` processes: each policy on a small trace, the
//! answers checked, and nothing left behind (no instance process, no socket) on success, on an
//! instance that fails to start, and on a panic inside an instance's thread.

use std::sync::{Arc, Mutex};
use virtlab_cloud::bill::{BillOptions, bill};
use virtlab_cloud::instance::{Instance, Launcher, ProcessLauncher, Reading};
use virtlab_cloud::prices::{PriceBook, Size};
use virtlab_cloud::serve::{Policy, ServeRun, ServeSpec, serve};
use virtlab_cloud::trace::{Trace, TraceSpec};
use virtlab_cloud::work::monte_carlo_hits;
use virtlab_cloud::{ErrorKind, Result};

/// Serving runs one at a time, so counting this process's open files and children is exact.
static SERIAL: Mutex<()> = Mutex::new(());

const SIZE: Size = Size {
    vcpu: 1.0,
    memory_gib: 2.0,
};

fn launcher() -> ProcessLauncher {
    ProcessLauncher::new(env!("CARGO_BIN_EXE_virtlab-instance"), SIZE).unwrap()
}

fn trace() -> Trace {
    Trace::generate(TraceSpec {
        rate_per_s: 40.0,
        duration_s: 3.0,
        stretch_s: 1.0,
        burst_factor: 3.0,
        seed: 11,
    })
    .unwrap()
}

fn spec(policy: Policy) -> ServeSpec {
    ServeSpec {
        samples_per_request: 20_000,
        ..ServeSpec::new(policy)
    }
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Our children still in the process table (alive or unreaped).
fn children() -> Vec<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent pid is the second field after the command's closing parenthesis.
            let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}

/// Runs `f` and checks it left no child process and no open file behind.
fn leaves_nothing<T>(f: impl FnOnce() -> T) -> T {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let files = open_files();
    assert!(children().is_empty());
    let out = f();
    assert_eq!(children(), Vec::<u32>::new(), "instances left behind");
    assert_eq!(open_files(), files, "sockets or pipes left open");
    out
}

fn check_answers(run: &ServeRun, trace: &Trace) {
    for r in run.requests.iter().filter(|r| !r.dropped) {
        let want = monte_carlo_hits(run.spec.samples_per_request, trace.arrivals[r.id].seed);
        assert_eq!(r.hits, Some(want), "request {}", r.id);
        assert!(r.latency_s > 0.0 && r.service_s > 0.0 && r.latency_s >= r.service_s);
    }
}

#[test]
fn a_fixed_fleet_serves_every_request_warm() {
    let t = trace();
    let run = leaves_nothing(|| {
        serve(
            &t,
            &spec(Policy::Fixed { instances: 2 }),
            Arc::new(launcher()),
        )
        .unwrap()
    });
    check_answers(&run, &t);
    let s = &run.summary;
    assert_eq!((s.served, s.dropped, s.cold), (t.arrivals.len(), 0, 0));
    assert_eq!(s.instances_started, 2);
    assert!(
        run.instances
            .iter()
            .all(|i| !i.on_demand && i.started_s < 0.0 && i.cpu_s > 0.0)
    );
    assert!(
        run.instances
            .iter()
            .all(|i| i.memory_gib_s > 0.0 && i.peak_rss_bytes > 0)
    );
    assert_eq!(
        run.instances.iter().map(|i| i.requests).sum::<usize>(),
        s.served
    );
    assert!(s.p50_s <= s.p95_s && s.p95_s <= s.p99_s);
    // The usage goes into the bill: two always-on instances, a month of them on Fargate.
    let usage = run.usage();
    assert!(usage.instances.iter().all(|i| i.whole_span));
    let book = PriceBook::load_shipped().unwrap();
    let b = bill(&book, "aws-fargate-x86", &usage, &BillOptions::default()).unwrap();
    let month = 2.0 * 730.0 * (0.04048 + 2.0 * 0.004445);
    assert!(
        (b.month_usd - month).abs() < 1e-6,
        "{} vs {month}",
        b.month_usd
    );
}

#[test]
fn autoscale_starts_on_demand_marks_cold_requests_and_scales_to_zero() {
    let t = trace();
    let policy = Policy::Autoscale {
        max_instances: 3,
        keep_alive_s: 0.3,
    };
    let run = leaves_nothing(|| serve(&t, &spec(policy), Arc::new(launcher())).unwrap());
    check_answers(&run, &t);
    let s = &run.summary;
    assert_eq!(s.served, t.arrivals.len());
    assert!(s.max_alive <= 3 && s.instances_started >= 1);
    // It starts at zero, so the first request waits for a cold start. A cold request is the
    // first one of an instance started on demand; an instance whose waiting request was taken
    // by one that came free first serves its first request warm, so there may be fewer.
    assert!(run.requests[0].cold);
    let mut cold_instances: Vec<usize> = run
        .requests
        .iter()
        .filter(|r| r.cold)
        .filter_map(|r| r.instance)
        .collect();
    cold_instances.sort();
    cold_instances.dedup();
    assert_eq!(cold_instances.len(), s.cold);
    assert!(
        cold_instances
            .iter()
            .all(|slot| run.instances[*slot].on_demand)
    );
    assert!(run.requests.iter().filter(|r| r.cold).all(|r| r.waited));
    // The trace ends in silence or the run ends: either way the last count is zero.
    assert_eq!(run.alive.last().unwrap().alive, 0);
    assert!(run.usage().instances.iter().all(|i| !i.whole_span));
}

#[test]
fn one_instance_per_request_makes_every_request_cold() {
    let t = trace();
    let run = leaves_nothing(|| {
        serve(
            &t,
            &spec(Policy::PerRequest { max_instances: 4 }),
            Arc::new(launcher()),
        )
        .unwrap()
    });
    check_answers(&run, &t);
    let s = &run.summary;
    assert_eq!(
        (s.served, s.cold, s.instances_started),
        (t.arrivals.len(), s.served, s.served)
    );
    assert!(
        run.instances
            .iter()
            .all(|i| i.requests == 1 && i.cold_start_s > 0.0)
    );
    assert!(s.max_alive <= 4);
}

#[test]
fn a_full_queue_drops_requests_and_answers_them_at_once() {
    let t = trace();
    let run = leaves_nothing(|| {
        let spec = ServeSpec {
            samples_per_request: 4_000_000,
            queue_limit: 0,
            ..ServeSpec::new(Policy::Fixed { instances: 1 })
        };
        serve(&t, &spec, Arc::new(launcher())).unwrap()
    });
    let s = &run.summary;
    assert!(s.dropped > 0, "{s:?}");
    assert_eq!(s.served + s.dropped, t.arrivals.len());
    assert!(
        run.requests
            .iter()
            .filter(|r| r.dropped)
            .all(|r| r.hits.is_none())
    );
}

/// Real instances, except that launch number `fail_at` starts a program that never says
/// `ready` and call number `panic_at` panics in the instance's thread.
struct Faulty {
    inner: ProcessLauncher,
    launches: Mutex<usize>,
    fail_at: usize,
    panic_at: Option<usize>,
}

struct PanicsOnCall {
    inner: Box<dyn Instance>,
    calls: usize,
    panic_at: Option<usize>,
}

impl Instance for PanicsOnCall {
    fn pid(&self) -> u32 {
        self.inner.pid()
    }
    fn call(&mut self, samples: u64, seed: u64) -> Result<u64> {
        self.calls += 1;
        if Some(self.calls) == self.panic_at {
            panic!("a deliberate panic inside an instance's thread");
        }
        self.inner.call(samples, seed)
    }
    fn reading(&self) -> Result<Reading> {
        self.inner.reading()
    }
}

impl Launcher for Faulty {
    fn kind(&self) -> String {
        "faulty process".into()
    }
    fn size(&self) -> Size {
        SIZE
    }
    fn launch(&self) -> Result<Box<dyn Instance>> {
        let n = {
            let mut launches = self.launches.lock().unwrap();
            *launches += 1;
            *launches
        };
        if n == self.fail_at {
            // A real program that exits at once, without a word.
            return ProcessLauncher::new("/bin/true", SIZE)?.launch();
        }
        Ok(Box::new(PanicsOnCall {
            inner: self.inner.launch()?,
            calls: 0,
            panic_at: self.panic_at,
        }))
    }
}

#[test]
fn an_instance_that_fails_to_start_ends_the_run_with_nothing_left() {
    let t = trace();
    let faulty = Faulty {
        inner: launcher(),
        launches: Mutex::new(0),
        fail_at: 3,
        panic_at: None,
    };
    let e = leaves_nothing(|| {
        serve(
            &t,
            &spec(Policy::PerRequest { max_instances: 2 }),
            Arc::new(faulty),
        )
        .unwrap_err()
    });
    assert_eq!(e.kind(), ErrorKind::Failed);
    assert!(e.problem().contains("exited without answering"), "{e}");
}

#[test]
fn a_panic_in_an_instance_thread_ends_the_run_with_nothing_left() {
    let t = trace();
    let faulty = Faulty {
        inner: launcher(),
        launches: Mutex::new(0),
        fail_at: 0,
        panic_at: Some(3),
    };
    let e = leaves_nothing(|| {
        serve(&t, &spec(Policy::Fixed { instances: 2 }), Arc::new(faulty)).unwrap_err()
    });
    assert!(e.problem().contains("panicked"), "{e}");
}

#[test]
fn bad_values_are_refused_before_anything_starts() {
    let t = trace();
    let policy = Policy::Autoscale {
        max_instances: 2,
        keep_alive_s: -1.0,
    };
    let e = leaves_nothing(|| serve(&t, &spec(policy), Arc::new(launcher())).unwrap_err());
    assert!(e.problem().contains("keep-alive"), "{e}");
    let bad = ServeSpec {
        sample_every_s: 0.0,
        ..spec(Policy::Fixed { instances: 1 })
    };
    assert!(serve(&t, &bad, Arc::new(launcher())).is_err());
}
