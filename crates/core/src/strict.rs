//! How panics are handled: strict mode for headless notebook runs, and supervised threads whose
//! panics become errors.
//!
//! evcxr catches a panic in a cell, prints the backtrace and reports the cell as successful, so a
//! rendered gallery could hide a broken chapter. With strict mode on, a panic ends evcxr's worker
//! process, which evcxr reports as an error output that fails the run. The notebook runner injects
//! `virtlab::strict::install();` after a notebook's `:dep` cell.
//!
//! A thread run under [`supervise`] is different: its panic is expected to be reported by the
//! executor that started it (as an `Err` naming the thread), so the hook records the message for
//! it and neither prints nor exits.

use std::cell::{Cell, RefCell};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status a strict panic ends the process with (the same as an uncaught Rust panic).
pub const PANIC_EXIT_STATUS: i32 = 101;

static STRICT: AtomicBool = AtomicBool::new(false);

thread_local! {
    static SUPERVISED: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Turns strict mode on: from now on a panic outside supervised threads ends the process.
pub fn install() {
    install_hook();
    STRICT.store(true, Ordering::SeqCst);
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if SUPERVISED.get() {
                let message = payload_text(info.payload());
                let at = info.location().map_or(String::new(), |l| format!(" at {}:{}", short_path(l.file()), l.line()));
                LAST_PANIC.set(Some(format!("{message}{at}")));
                return;
            }
            previous(info);
            if STRICT.load(Ordering::SeqCst) {
                eprintln!("virtlab strict mode: a panic fails this cell (exit status {PANIC_EXIT_STATUS}).");
                std::process::exit(PANIC_EXIT_STATUS);
            }
        }));
    });
}

/// Runs `f` on this thread; a panic inside it comes back as `Err(message with location)`,
/// without printing and without ending the process in strict mode.
pub fn supervise<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    SUPERVISED.set(true);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    SUPERVISED.set(false);
    outcome.map_err(|payload| LAST_PANIC.take().unwrap_or_else(|| payload_text(&*payload)))
}

/// A source path without the machine-specific part before the crate (evcxr compiles from absolute paths).
fn short_path(file: &str) -> &str {
    file.rfind("crates/").map_or(file, |i| &file[i..])
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervised_panic_comes_back_as_its_message_and_location() {
        let err = std::thread::spawn(|| supervise(|| -> u32 { panic!("boom {}", 7) }))
            .join()
            .unwrap()
            .unwrap_err();
        assert!(err.starts_with("boom 7 at "), "{err}");
        assert!(err.contains("strict.rs"), "{err}");
    }

    #[test]
    fn panic_locations_lose_the_machine_specific_prefix() {
        assert_eq!(
            short_path("/home/me/virtlab/crates/virtlab/src/threads.rs"),
            "crates/virtlab/src/threads.rs"
        );
        assert_eq!(short_path("src/lib.rs"), "src/lib.rs");
    }

    #[test]
    fn a_supervised_success_passes_its_value_through() {
        assert_eq!(supervise(|| 42), Ok(42));
        assert!(!SUPERVISED.get(), "supervision ends with the call");
    }
}
