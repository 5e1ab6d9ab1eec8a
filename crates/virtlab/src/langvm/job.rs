//! The job every runtime runs, in each one's own language: chapter 2's Monte Carlo π
//! ([`hits`]), our WebAssembly module written by hand ([`WAT`], shipped assembled as [`WASM`],
//! named by its SHA-256 [`module_hash`]), and the same loop shown in three instruction sets side by side
//! ([`listings`]): WebAssembly, CPython bytecode (`dis`) and JVM bytecode (`javap -c`).

use crate::display::{Html, escape_html};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The job natively: how many of `samples` xorshift64* points fall in the quarter circle.
pub use crate::threads::scaling::monte_carlo_hits as hits;

/// Our WebAssembly module in the text format, written by hand: `hits` (the job), `iteration`
/// (the essay's loop, one line per call; reads out of bounds on request) and `spin` (a runaway).
pub const WAT: &str = include_str!("guests/hits.wat");

/// The folder of the guest sources (Java, JavaScript, Python driver) in the crate.
pub(crate) fn guests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/langvm/guests")
}

/// The folder of the Python peers (`hits` lives in `threads_cpu.py`).
pub(crate) fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers")
}

/// [`WAT`] assembled into the binary `.wasm` module every WebAssembly runtime loads. It is
/// shipped assembled (`guests/hits.wasm`) so that no build, the notebooks' included, compiles a
/// WAT parser; a test assembles [`WAT`] with the `wat` crate and checks the two are the same bytes.
pub const WASM: &[u8] = include_bytes!("guests/hits.wasm");

/// The SHA-256 of `bytes` in hex, as `sha256sum` prints it.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SHA-256 of our `.wasm` module: every runtime that ran it reports the same.
pub fn module_hash() -> String {
    sha256(WASM)
}

/// How many lines of each listing [`listings`] shows.
const LISTING_LINES: usize = 14;

/// The loop's first step (`s ^= s >> 12`, then `<< 25`, `>> 27`) in three instruction sets,
/// side by side: our WAT, CPython's bytecode of the Python peer's `hits` (`dis`) and the JVM's
/// of the Java version (`javap -c`). A listing whose tool is missing says so instead.
pub fn listings() -> Listings {
    let python = python_bytecode()
        .map(|text| excerpt(&text, "(12)"))
        .unwrap_or_else(|why| why);
    let java = super::external::java_bytecode()
        .map(|text| excerpt(&text, "bipush        12"))
        .unwrap_or_else(|why| why);
    Listings(vec![
        ("WebAssembly (our WAT)".into(), excerpt(WAT, "i64.const 12")),
        ("CPython bytecode (dis)".into(), python),
        ("JVM bytecode (javap -c)".into(), java),
    ])
}

/// Listings side by side: (heading, text) each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listings(pub Vec<(String, String)>);

impl Listings {
    /// The listings as HTML, one fixed-width column each.
    pub fn to_html(&self) -> Html {
        let mut html = String::from("<div class=\"virtlab\" style=\"display:flex;gap:1.5em\">");
        for (heading, text) in &self.0 {
            html += &format!(
                "<div><p style=\"margin:0.2em 0\"><b>{}</b></p>\
                 <pre style=\"font-size:12px;margin:0\">{}</pre></div>",
                escape_html(heading),
                escape_html(text)
            );
        }
        Html(html + "</div>")
    }

    /// Shows the listings as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

impl std::fmt::Display for Listings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (heading, text) in &self.0 {
            writeln!(f, "{heading}\n{text}\n")?;
        }
        Ok(())
    }
}

/// `LISTING_LINES` lines of `text` from just before the first line containing `marker`.
fn excerpt(text: &str, marker: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.contains(marker)).unwrap_or(0);
    let from = at.saturating_sub(2);
    lines[from..(from + LISTING_LINES).min(lines.len())].join("\n")
}

/// CPython's disassembly of the Python peer's `hits`, or why it could not be had.
fn python_bytecode() -> std::result::Result<String, String> {
    super::external::stdout_of(
        std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import dis, sys; sys.path.insert(0, sys.argv[1]); import threads_cpu; \
                 dis.dis(threads_cpu.hits)",
            )
            .arg(peers_dir()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set to rewrite `guests/hits.wasm` from `hits.wat` (then run the tests again: the module is
    /// compiled into the crate).
    const WRITE_WASM_ENV: &str = "VIRTLAB_WRITE_WASM";

    #[test]
    fn the_shipped_wasm_is_the_wat_assembled() {
        let assembled = wat::parse_str(WAT).expect("hits.wat should parse");
        if std::env::var_os(WRITE_WASM_ENV).is_some() {
            std::fs::write(guests_dir().join("hits.wasm"), &assembled).unwrap();
        }
        assert!(
            assembled == WASM,
            "guests/hits.wasm is not hits.wat assembled: run `{WRITE_WASM_ENV}=1 cargo test -p \
             virtlab --lib langvm::job`, then the tests again"
        );
    }

    #[test]
    fn the_module_hash_is_stable() {
        assert_eq!(&WASM[..4], b"\0asm");
        assert_eq!(module_hash(), sha256(WASM));
        // Changing the module changes this: update it together with the notebook's prose.
        assert_eq!(
            module_hash(),
            "3169568cd8c3733461c060eae7421dd1387d3f8fb1e5adb3ad98d313ec8671e3"
        );
    }

    #[test]
    fn sha256_matches_the_standard_test_vector() {
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn listings_show_the_shift_by_12_in_each_language() {
        let listings = listings();
        let [wat, python, java] = [0, 1, 2].map(|i| listings.0[i].1.as_str());
        assert!(wat.contains("i64.shr_u"), "{wat}");
        assert!(
            python.contains("RSHIFT") || python.contains(">>"),
            "{python}"
        );
        assert!(java.contains("lushr"), "{java}");
    }
}
