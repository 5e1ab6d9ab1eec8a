//! The executor's rules, checked with real threads: refusals, fail-fast, deadlines, cancels,
//! and `finish` on every path.

use super::*;
use crate::threads::Threads;

/// Threads that refuse to start unit `refuse` (0-based), and count their `finish` calls.
struct Refusing {
    threads: Threads,
    refuse: usize,
    finished: usize,
}

impl Kind for Refusing {
    type Detail = ();

    fn name(&self) -> &'static str {
        "thread"
    }

    fn limit(&self) -> UnitLimit {
        self.threads.limit()
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        if unit.index == self.refuse {
            return Err(Error::os(
                "starting a thread",
                std::io::Error::from_raw_os_error(libc::EAGAIN),
            ));
        }
        self.threads.start(unit, reporter, stop)
    }

    fn finish(&mut self) -> String {
        self.finished += 1;
        self.threads.finish()
    }
}

#[test]
fn options_naming_a_unit_that_does_not_exist_are_refused_before_anything_starts() {
    let work = Work::new("w", 1, 1).unwrap();
    let mut kind = Threads::new();
    let bad = [
        Options::quiet().with_fault(0, 0),
        Options::quiet().with_fault(4, 0),
        Options {
            cancel: Some(Cancel {
                unit: 9,
                after: Duration::from_millis(1),
            }),
            ..Options::quiet()
        },
        Options {
            deadline: Some(Duration::ZERO),
            ..Options::quiet()
        },
        // Threads stop at their flag; they cannot run away on purpose.
        Options::quiet().with_runaway(1, 0),
    ];
    for options in bad {
        let err = run(&mut kind, &work, 3, options).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Invalid, "{err}");
    }
    for units in [0, crate::threads::MAX_THREADS + 1] {
        let err = run(&mut kind, &work, units, Options::quiet()).unwrap_err();
        assert!(err.problem().contains("number of threads"), "{err}");
        assert!(err.fix().contains("choose between 1 and"), "{err}");
    }
}

#[test]
fn a_refused_unit_stops_the_others_and_everything_is_released() {
    let work = Work::new("t", 100, 20).unwrap();
    let mut kind = Refusing {
        threads: Threads::new(),
        refuse: 1,
        finished: 0,
    };
    let run = run(&mut kind, &work, 3, Options::quiet()).unwrap();
    assert_eq!(kind.finished, 1);
    assert_eq!(run.units.len(), 2, "nothing is started after a refusal");
    assert!(
        matches!(&run.units[1].status, Status::Refused(why) if why.problem().contains("starting a thread")),
        "{:?}",
        run.units
    );
    assert_eq!(
        run.units[0].status,
        Status::StoppedBecause {
            unit: "t-2".into(),
            failure: Failure::Refused
        }
    );
    assert!(run.check().unwrap_err().fix().contains("fewer units"));
}

#[test]
fn a_deadline_times_out_every_unit_still_running() {
    let work = Work::new("t", 1000, 20).unwrap();
    let options = Options {
        deadline: Some(Duration::from_millis(100)),
        ..Options::quiet()
    };
    let run = run(&mut Threads::new(), &work, 2, options).unwrap();
    for unit in &run.units {
        assert_eq!(unit.status, Status::TimedOut { after_ms: 100 });
    }
    assert!(run.check().is_ok(), "a timeout is not a unit's own failure");
}

#[test]
fn units_are_named_after_the_work_in_order_with_their_first_line_timed() {
    let work = Work::new("w", 2, 1).unwrap();
    let options = Options {
        snapshot: true,
        ..Options::quiet()
    };
    let run = run(&mut Threads::new(), &work, 3, options).unwrap();
    assert_eq!(
        run.units
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        vec!["w-1", "w-2", "w-3"]
    );
    assert!(run.units.iter().all(|u| u.first_line_ms.is_some()));
    assert!(run.snapshot.is_some());
    assert_eq!(run.table().rows().len(), 3);
    assert!(run.summary.starts_with("3 threads in one process"));
}

#[test]
fn without_fail_fast_the_neighbours_of_a_failed_unit_run_to_the_end() {
    let work = Work::new("t", 3, 5).unwrap();
    let options = Options {
        fail_fast: false,
        ..Options::quiet().with_fault(2, 0)
    };
    let run = run(&mut Threads::new(), &work, 3, options).unwrap();
    assert!(matches!(run.units[1].status, Status::Panicked(_)));
    assert_eq!(run.units[0].status, Status::Completed);
    assert_eq!(run.units[2].status, Status::Completed);
    assert!(run.check().is_err(), "the failure is still reported");
}

/// Threads held back until the last unit is asked for, then started together: the shape of a
/// kind whose units start as one (MPI ranks under one mpirun).
#[derive(Default)]
struct Together {
    threads: Threads,
    told: Vec<usize>,
    held: Vec<(Unit, Reporter, Stop)>,
}

impl Kind for Together {
    type Detail = ();

    fn name(&self) -> &'static str {
        "thread"
    }

    fn limit(&self) -> UnitLimit {
        self.threads.limit()
    }

    fn starting(&mut self, units: usize) {
        self.told.push(units);
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        let last = unit.index + 1 == self.told.last().copied().unwrap_or(0);
        self.held.push((unit, reporter, stop));
        if last {
            for (unit, reporter, stop) in self.held.drain(..) {
                self.threads.start(unit, reporter, stop)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> String {
        self.threads.finish()
    }
}

#[test]
fn a_kind_is_told_the_unit_count_once_before_its_units_start_so_they_can_start_together() {
    let work = Work::new("r", 2, 1).unwrap();
    let mut kind = Together::default();
    let run = run(&mut kind, &work, 3, Options::quiet()).unwrap();
    assert_eq!(kind.told, vec![3]);
    assert!(kind.held.is_empty());
    assert!(run.succeeded(), "{:?}", run.units);
}
