//! Chapter 5: language virtual machines. One small job — chapter 2's Monte Carlo π — run
//! natively and on several language VMs: WebAssembly (our hand-written module, [`job::WAT`]) on
//! an interpreter (wasmi), a compiler (wasmtime, Cranelift) and Node's V8; CPython; the JVM with
//! its JIT and with `-Xint`; and V8 running a JavaScript version. Every runtime returns the same
//! hit count for a seed and a sample count ([`Comparison::check`]).
//!
//! What is measured ([`measure`]): speed (the runtime's own clock around the job, median of
//! several runs), start-up (from asking for the runtime to its first result), warm-up (the job
//! cut into chunks run one after another in one runtime). A WebAssembly instance is also a kind
//! of worker on the shared executor ([`instance::WasmInstances`]).
//!
//! ```
//! use virtlab_langvm::{Plan, Runtime, measure::Comparison};
//!
//! let plan = Plan::new(20_000, 2)?.runtimes(&[Runtime::Native, Runtime::Wasmi]);
//! let comparison = Comparison::measure(&plan)?;
//! comparison.check()?; // both counted the same hits
//! # Ok::<(), virtlab_core::Error>(())
//! ```

#![warn(missing_docs)]

mod compiled;
mod external;
pub mod instance;
pub mod job;
pub mod measure;
pub mod report;
mod wasm;

pub use measure::{Comparison, Series, Warmup};

use serde::{Deserialize, Serialize};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::error::check_range;

/// The most samples one run of the job may take: seconds natively, many minutes on an
/// interpreter such as CPython (the speed table shows each runtime's time here).
pub const MAX_SAMPLES: u64 = 1_000_000_000;
/// The most runs (or chunks) per runtime.
pub const MAX_REPEATS: usize = 1000;

/// A runtime the job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// The crate's own Rust function, compiled ahead of time.
    Native,
    /// Our WebAssembly module on wasmi, an interpreter, in this process.
    Wasmi,
    /// Our WebAssembly module compiled by wasmtime (Cranelift), in this process.
    Wasmtime,
    /// The Python peer's loop on CPython.
    Python,
    /// The Java version on the JVM, with its tiered JIT.
    Java,
    /// The Java version on the JVM interpreting only (`-Xint`).
    JavaXint,
    /// Our WebAssembly module on Node's V8.
    NodeWasm,
    /// The JavaScript version on Node's V8.
    NodeJs,
}

impl Runtime {
    /// Every runtime, in the order tables show them.
    pub const ALL: [Runtime; 8] = [
        Runtime::Native,
        Runtime::Wasmtime,
        Runtime::NodeWasm,
        Runtime::Wasmi,
        Runtime::Java,
        Runtime::JavaXint,
        Runtime::NodeJs,
        Runtime::Python,
    ];

    /// Its name on the command line: `native`, `wasmi`, `java-xint`, `node-wasm` …
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Native => "native",
            Runtime::Wasmi => "wasmi",
            Runtime::Wasmtime => "wasmtime",
            Runtime::Python => "python",
            Runtime::Java => "java",
            Runtime::JavaXint => "java-xint",
            Runtime::NodeWasm => "node-wasm",
            Runtime::NodeJs => "node-js",
        }
    }

    /// What it is, for tables and charts: `wasmi (wasm interpreter)`.
    pub fn label(self) -> &'static str {
        match self {
            Runtime::Native => "native Rust",
            Runtime::Wasmi => "wasmi (wasm interpreter)",
            Runtime::Wasmtime => "wasmtime (wasm, Cranelift)",
            Runtime::Python => "CPython",
            Runtime::Java => "JVM (tiered JIT)",
            Runtime::JavaXint => "JVM -Xint (interpreter)",
            Runtime::NodeWasm => "Node V8 (wasm)",
            Runtime::NodeJs => "Node V8 (JavaScript)",
        }
    }

    /// Whether it runs our `.wasm` module (and so reports the module's hash).
    pub fn runs_wasm(self) -> bool {
        matches!(self, Runtime::Wasmi | Runtime::Wasmtime | Runtime::NodeWasm)
    }

    /// The runtimes a comma-separated list names: runtime names, `java` (both JVM modes),
    /// `node` (wasm and JavaScript) or `all`; each once, in the order given.
    pub fn parse_list(list: &str) -> Result<Vec<Runtime>> {
        let mut chosen = Vec::new();
        for name in list.split(',').map(str::trim) {
            let group: &[Runtime] = match name {
                "all" => &Runtime::ALL,
                "java" => &[Runtime::Java, Runtime::JavaXint],
                "node" => &[Runtime::NodeWasm, Runtime::NodeJs],
                other => match Runtime::ALL.iter().find(|r| r.name() == other) {
                    Some(runtime) => std::slice::from_ref(runtime),
                    None => {
                        let names: Vec<&str> = Runtime::ALL.iter().map(|r| r.name()).collect();
                        return Err(Error::invalid(
                            "a runtime",
                            format!("'{other}'"),
                            format!(
                                "choose from {}, or a group: java (JIT and -Xint), node (wasm \
                                 and JavaScript), all",
                                names.join(", ")
                            ),
                        ));
                    }
                },
            };
            for runtime in group {
                if !chosen.contains(runtime) {
                    chosen.push(*runtime);
                }
            }
        }
        Ok(chosen)
    }
}

/// What to run: the job's size and seed, how many times, on which runtimes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Samples per run of the job (per chunk, for a warm-up).
    pub samples: u64,
    /// Runs per runtime (chunks, for a warm-up).
    pub repeats: usize,
    /// The random generator's seed: the same everywhere, so the hit counts match.
    pub seed: u64,
    /// The runtimes, in order.
    pub runtimes: Vec<Runtime>,
}

impl Plan {
    /// Every runtime, `repeats` runs of `samples` samples each, seed 1; bad sizes refused.
    pub fn new(samples: u64, repeats: usize) -> Result<Plan> {
        check_range("the number of samples", samples, 1, MAX_SAMPLES)?;
        check_range("the number of runs", repeats, 1, MAX_REPEATS)?;
        Ok(Plan {
            samples,
            repeats,
            seed: 1,
            runtimes: Runtime::ALL.to_vec(),
        })
    }

    /// This plan on these runtimes only.
    pub fn runtimes(mut self, runtimes: &[Runtime]) -> Plan {
        self.runtimes = runtimes.to_vec();
        self
    }

    /// Refuses sizes out of range and an empty list of runtimes (a plan built by hand or read
    /// from JSON).
    pub fn check(&self) -> Result<()> {
        Plan::new(self.samples, self.repeats)?;
        if self.runtimes.is_empty() {
            return Err(Error::invalid(
                "the list of runtimes",
                "empty",
                "name at least one, e.g. native,wasmi",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_lists_expand_groups_and_refuse_unknown_names() {
        assert_eq!(
            Runtime::parse_list("native, java,node,native").unwrap(),
            [
                Runtime::Native,
                Runtime::Java,
                Runtime::JavaXint,
                Runtime::NodeWasm,
                Runtime::NodeJs
            ]
        );
        assert_eq!(Runtime::parse_list("all").unwrap(), Runtime::ALL);
        let e = Runtime::parse_list("native,pypy").unwrap_err();
        assert_eq!(e.problem(), "a runtime cannot be 'pypy'");
        assert!(e.fix().contains("wasmtime"), "{e}");
    }

    #[test]
    fn plans_refuse_bad_sizes() {
        assert!(Plan::new(0, 3).is_err());
        assert!(Plan::new(10, 0).is_err());
        assert!(Plan::new(MAX_SAMPLES + 1, 1).is_err());
        assert!(Plan::new(10, 3).unwrap().runtimes(&[]).check().is_err());
    }
}
