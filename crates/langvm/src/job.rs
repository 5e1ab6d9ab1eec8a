//! The job every runtime runs, in each one's own language: chapter 2's Monte Carlo π
//! ([`hits`]), our WebAssembly module written by hand ([`WAT`], shipped assembled as [`WASM`],
//! named by its SHA-256 [`module_hash`]), and one step of the loop shown in three instruction sets
//! side by side ([`listings`]): WebAssembly, CPython bytecode (`dis`) and JVM bytecode (`javap -c`).

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use virtlab_display::{Html, escape_html};

/// The job natively: how many of `samples` xorshift64* points fall in the quarter circle.
pub use virtlab_core::hits::monte_carlo_hits as hits;

/// Our WebAssembly module in the text format, written by hand: `hits` (the job), `iteration`
/// (the essay's loop, one line per call; reads out of bounds on request) and `spin` (a runaway).
pub const WAT: &str = include_str!("guests/hits.wat");

/// The folder of the guest sources (Java, JavaScript, Python driver) in the crate.
pub(crate) fn guests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/guests")
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

/// The last line of the loop's step in [`WAT`]: the constant that scales `x` to [0, 1).
const WAT_STEP_END: &str = "(f64.const 9007199254740992)";

/// The most lines a listing shows when the end of the step is not found (another version of the
/// tool may print it differently).
const LISTING_LINES: usize = 40;

/// One whole step of the loop, the next random number (`s ^= s >> 12; s ^= s << 25;
/// s ^= s >> 27`, then the multiply, the shift by 11 and the scaling to [0, 1)), in three
/// instruction sets side by side: our WAT, CPython's bytecode of the Python peer's `hits`
/// (`dis`) and the JVM's of the Java version (`javap -c`). A listing whose tool is missing says
/// so instead.
pub fn listings() -> Listings {
    // Each from the shift by 12 (with the loads before it) to the scaling of the first number
    // (`x`); the WAT without the comment above it, which the whole module's listing shows.
    let python = python_bytecode()
        .map(|text| excerpt(&text, "(12)", 2, "(/)"))
        .unwrap_or_else(|why| why);
    let java = super::external::java_bytecode()
        .map(|text| excerpt(&text, "bipush        12", 2, "dstore"))
        .unwrap_or_else(|why| why);
    Listings(vec![
        (
            "WebAssembly (our WAT)".into(),
            excerpt(WAT, "(i64.const 12)", 0, WAT_STEP_END),
        ),
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

/// The lines of `text` from `before` lines above the first line containing `marker` through the
/// next line containing `through` (at most [`LISTING_LINES`] lines when it is not found).
fn excerpt(text: &str, marker: &str, before: usize, through: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.contains(marker)).unwrap_or(0);
    let from = at.saturating_sub(before);
    let to = lines[at..]
        .iter()
        .position(|l| l.contains(through))
        .map_or(from + LISTING_LINES, |end| at + end + 1);
    lines[from..to.min(lines.len())].join("\n")
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
            "d2d8b4aa821f0b0855aa34c3e871d7b4d20a3600bfb77c6f6c8eb52135c7e663"
        );
    }

    #[test]
    fn sha256_matches_the_standard_test_vector() {
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// The instruction that scales the step's number to [0, 1) in [`WAT`].
    const WAT_SCALING: &str = "f64.div";

    #[test]
    fn listings_show_the_whole_step_in_each_language() {
        let listings = listings();
        let [wat, python, java] = [0, 1, 2].map(|i| listings.0[i].1.as_str());
        // The three shifts, then the scaling to [0, 1) that ends the step, and nothing of `y`.
        for (listing, shifts, scaling) in [
            (
                wat,
                ["i64.const 12", "i64.const 25", "i64.const 27"],
                WAT_SCALING,
            ),
            (python, ["(12)", "(25)", "(27)"], "(/)"),
            (
                java,
                ["bipush        12", "bipush        25", "bipush        27"],
                "ddiv",
            ),
        ] {
            for shift in shifts {
                assert_eq!(listing.matches(shift).count(), 1, "{shift} in {listing}");
            }
            assert!(listing.contains(scaling), "{scaling} in {listing}");
        }
    }

    #[test]
    fn excerpts_end_at_their_marker_or_after_a_bounded_count() {
        let text = "a\nb\nstart\nc\nend\nd";
        assert_eq!(excerpt(text, "start", 1, "end"), "b\nstart\nc\nend");
        let long: String = (0..100).map(|i| format!("{i}\n")).collect();
        assert_eq!(
            excerpt(&long, "10", 0, "never").lines().count(),
            LISTING_LINES
        );
    }
}
