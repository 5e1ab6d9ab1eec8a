//! Strict mode for headless notebook runs: a panic fails the cell instead of being forgiven.
//!
//! evcxr catches a panic in a cell, prints the backtrace and reports the cell as successful, so a
//! rendered gallery could hide a broken chapter. With this hook installed, a panic (in any thread)
//! ends evcxr's worker process, which evcxr reports as an error output that fails the run.
//! The notebook runner injects `virtlab::strict::install();` after a notebook's `:dep` cell.

use std::sync::Once;

/// The exit status a strict panic ends the process with (the same as an uncaught Rust panic).
pub const PANIC_EXIT_STATUS: i32 = 101;

/// Installs the strict panic hook once; later calls do nothing.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            eprintln!(
                "virtlab strict mode: a panic fails this cell (exit status {PANIC_EXIT_STATUS})."
            );
            std::process::exit(PANIC_EXIT_STATUS);
        }));
    });
}
