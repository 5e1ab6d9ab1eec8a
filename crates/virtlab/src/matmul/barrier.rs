//! A spinning barrier for the threads of one matrix product: they meet once per panel of A
//! (every few milliseconds), arrive within microseconds of each other, and must not sleep in
//! between — waking a sleeping thread costs tens to hundreds of microseconds in a VM. After a
//! short spin a waiter yields, so more threads than CPUs still make progress.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Spins before each yield while waiting.
const SPINS_BEFORE_YIELD: u32 = 1 << 12;

pub(crate) struct SpinBarrier {
    parties: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    /// Set when a party panicked: the others stop waiting for it.
    broken: AtomicBool,
}

impl SpinBarrier {
    pub(crate) fn new(parties: usize) -> Self {
        SpinBarrier {
            parties,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            broken: AtomicBool::new(false),
        }
    }

    /// Waits until every party has called `wait` this round; every write a party made before
    /// its call is visible to all after it. False when the barrier was broken (a party panicked):
    /// the caller should stop.
    pub(crate) fn wait(&self) -> bool {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return true;
        }
        let mut spins = 0;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.broken.load(Ordering::Relaxed) {
                return false;
            }
            if spins < SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
        true
    }

    /// Releases every waiter for good (a party is gone).
    pub(crate) fn break_it(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_party_passes_a_round_before_all_have_arrived() {
        let parties = 3;
        let rounds = 200;
        let barrier = SpinBarrier::new(parties);
        let written = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..parties {
                scope.spawn(|| {
                    for round in 0..rounds {
                        written.fetch_add(1, Ordering::Relaxed);
                        assert!(barrier.wait());
                        // Everyone has written this round's mark, and nobody the next one's.
                        let seen = written.load(Ordering::Relaxed);
                        assert_eq!(seen, (round + 1) * parties, "round {round}");
                        assert!(barrier.wait());
                    }
                });
            }
        });
        assert_eq!(written.into_inner(), rounds * parties);
    }

    #[test]
    fn a_broken_barrier_releases_its_waiters() {
        let barrier = SpinBarrier::new(2);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| barrier.wait());
            std::thread::sleep(std::time::Duration::from_millis(20));
            barrier.break_it();
            assert!(!waiter.join().unwrap());
        });
    }
}
