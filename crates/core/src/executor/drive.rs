//! The [`Work`] loop, driven: written once as an `async fn` over [`Work::steps`], and run two
//! ways — [`drive`] on a blocking thread (processes, threads, VMs: a pause sleeps) and
//! [`drive_async`] inside a tokio task (a pause is `.await`ed, so other tasks run meanwhile).

use super::{Reporter, Status};
use crate::timeline::{Event, EventKind};
use crate::work::{self, Step, Work};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// How a driven loop waits between iterations.
pub trait Pause {
    /// Waits `d`; `false` when the unit should stop instead of going on.
    fn pause(&mut self, d: Duration) -> impl Future<Output = bool>;
}

/// A blocking pause: sleeps in short slices, asking `keep_going` between them.
pub struct SleepPause<F: Fn() -> bool>(pub F);

impl<F: Fn() -> bool> Pause for SleepPause<F> {
    async fn pause(&mut self, d: Duration) -> bool {
        work::pause(d, &self.0)
    }
}

/// What a unit does at each iteration: `Ok` with the line to show (or none), or `Err` with the
/// status it ends with (a fault on purpose, a guest that crashed).
pub type Iteration<'a> = dyn FnMut(u32) -> Result<Option<String>, Status> + Send + 'a;

/// The loop itself: events for Start, each Iteration and End; the unit's line; burns; pauses.
async fn steps(
    work: &Work,
    reporter: &Reporter,
    pause: &mut impl Pause,
    on_iteration: &mut Iteration<'_>,
) -> Status {
    let event = |kind| reporter.event(Event::now(work.name(), kind));
    for step in work.steps() {
        match step {
            Step::Start => event(EventKind::Start),
            Step::Iteration(i) => match on_iteration(i) {
                Ok(line) => {
                    event(EventKind::Iteration(i));
                    if let Some(line) = line {
                        reporter.line(line);
                    }
                }
                Err(status) => return status,
            },
            Step::Burn(d) => work::burn(d),
            Step::Pause(d) => {
                if !pause.pause(d).await {
                    return Status::Stopped;
                }
            }
            Step::End => event(EventKind::End),
        }
    }
    Status::Completed
}

/// Runs `work` on the calling thread, pausing with a sleep that ends early once `keep_going`
/// says no; returns how the unit ended (the caller sends it with [`Reporter::ended`]).
pub fn drive(
    work: &Work,
    reporter: &Reporter,
    keep_going: impl Fn() -> bool,
    on_iteration: &mut Iteration<'_>,
) -> Status {
    let mut pause = SleepPause(keep_going);
    let mut looping = pin!(steps(work, reporter, &mut pause, on_iteration));
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        // A sleep pause never waits on a waker, so each poll runs to the end; the loop is a
        // formality of polling a future by hand.
        if let Poll::Ready(status) = looping.as_mut().poll(&mut cx) {
            return status;
        }
    }
}

/// Runs `work` inside an async task: each pause is `pause`'s, which yields the thread to the
/// other tasks (chapter 3's tokio pause, which lives with the tasks, not in this crate).
pub async fn drive_async(
    work: &Work,
    reporter: &Reporter,
    pause: &mut impl Pause,
    on_iteration: &mut Iteration<'_>,
) -> Status {
    steps(work, reporter, pause, on_iteration).await
}
