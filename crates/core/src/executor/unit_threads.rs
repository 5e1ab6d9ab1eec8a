//! One OS thread per unit, named after the unit and joined together: what every kind that runs a
//! unit on a thread of this process shares (threads, VMs' vCPUs, WebAssembly instances).

use super::Unit;
use crate::{Error, Result};
use std::thread::JoinHandle;

/// Each unit thread's stack: Rust's default for spawned threads, set so the room asked for
/// first is the room the thread takes.
const UNIT_STACK: usize = 2 << 20;

/// What a new thread maps beyond its stack in its first moments: the signal stack Rust gives
/// every thread (a few pages, more with AMX state), its guard pages, and its first allocations.
const FIRST_MAPPINGS: usize = 1 << 20;

/// Fails, as the OS would, when this process has no address space left for one more unit
/// thread. Why: when the stack fits but the signal stack Rust maps inside the new thread does not
/// (a process near its `ulimit -v`), Rust aborts the whole process, taking the kernel with it,
/// instead of failing the spawn; asking for both first turns that abort into a refusal.
fn room_for_a_thread() -> std::io::Result<()> {
    let bytes = UNIT_STACK + FIRST_MAPPINGS;
    // SAFETY: an anonymous, inaccessible, unreserved mapping at an address the kernel picks
    // touches no existing memory; it is unmapped at once with the same length.
    unsafe {
        let room = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if room == libc::MAP_FAILED {
            // The code pthread_create gives for the same shortage.
            return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
        }
        libc::munmap(room, bytes);
    }
    Ok(())
}

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
        let starting = || format!("starting {what} {number}");
        room_for_a_thread().map_err(|e| Error::os(starting(), e))?;
        let handle = std::thread::Builder::new()
            .name(unit.work.name().to_string())
            .stack_size(UNIT_STACK)
            .spawn(move || body(unit))
            .map_err(|e| Error::os(starting(), e))?;
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
