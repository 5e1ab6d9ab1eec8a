//! One OS thread per unit, named after the unit and joined together: what every kind that runs a
//! unit on a thread of this process shares (threads, VMs' vCPUs, WebAssembly instances).

use super::Unit;
use crate::{Error, Result};
use std::thread::JoinHandle;

/// The units' threads, started one by one and joined all at once in [`Kind::finish`].
///
/// [`Kind::finish`]: super::Kind::finish
#[derive(Default)]
pub struct UnitThreads(Vec<JoinHandle<()>>);

impl UnitThreads {
    /// Runs `body(unit)` on a new thread named after `unit` (so `top -H` and the process
    /// explorer show it). `what` names the thread in the error when the OS refuses it, e.g.
    /// "thread" → "starting thread 3: …".
    pub fn spawn(
        &mut self,
        unit: Unit,
        what: &str,
        body: impl FnOnce(Unit) + Send + 'static,
    ) -> Result<()> {
        let number = unit.index + 1;
        let handle = std::thread::Builder::new()
            .name(unit.work.name().to_string())
            .spawn(move || body(unit))
            .map_err(|e| Error::os(format!("starting {what} {number}"), e))?;
        self.0.push(handle);
        Ok(())
    }

    /// Waits for every thread started so far; returns how many there were.
    pub fn join_all(&mut self) -> usize {
        let started = self.0.len();
        // A unit reports its own end (a panic is caught inside), so a join cannot fail on one.
        for handle in self.0.drain(..) {
            let _ = handle.join();
        }
        started
    }
}
