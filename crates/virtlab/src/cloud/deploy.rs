//! One job description deployed unchanged on several backends (`virtlab deploy`): each backend
//! is a kind of worker made by the registry ([`crate::kinds::make_limited`]) and run by the one
//! executor, measured by the ladder's method ([`crate::cost::run_measured`]); one table sets
//! side by side what changed between them. A backend this machine or build lacks is a row
//! saying which facility is missing and how to get it; the rest runs.

use super::job::Job;
use crate::cost::compare::FIRECRACKER_BOOT_MS;
use crate::cost::{bytes_text, duration_text, run_measured};
use crate::display::Table;
use crate::kinds::{self, Limits};
use crate::outcome::Outcome;
use crate::stats::median;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What each rung isolates, and what a cloud sells it as: a mapping, not a measurement.
const MAPPING: &[(&str, &str, &str)] = &[
    (
        "task",
        "nothing: one thread, one address space",
        "none (inside an instance)",
    ),
    (
        "wasm",
        "linear memory: a sandbox inside one process",
        "edge function (isolates)",
    ),
    (
        "thread",
        "a stack: one address space",
        "none (inside an instance)",
    ),
    (
        "process",
        "an address space",
        "none (a process inside an instance; a function runs in a microVM)",
    ),
    (
        "container",
        "namespaces and a cgroup, one shared kernel",
        "container service (Fargate, Cloud Run)",
    ),
    (
        "vm",
        "guest memory and vCPUs behind KVM; no guest OS (chapter 6's guest)",
        "VM instance (EC2, GCE), which boots a guest OS this one lacks",
    ),
    (
        "rank",
        "a node: its network, pids and cgroup, under MPI",
        "HPC node (a cluster's instances)",
    ),
];

/// What one backend's run of the job measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ran {
    /// From asking for an instance to its first line, median over the instances, ms.
    pub start_ms: f64,
    /// What one instance added to the process tree's memory (user and kernel), bytes.
    pub memory_bytes_each: f64,
    /// The executor's one-line summary of the run.
    pub summary: String,
}

/// One backend: what it is, and what the job measured on it (or why it did not run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    /// Its rung on the ladder: "process", "container", "vm", "rank", …
    pub rung: String,
    /// What it separates an instance from the others by.
    pub isolation: String,
    /// Which of the job's limits it applied.
    pub limits: String,
    /// What a cloud sells it as (a mapping, not a measurement).
    pub price_class: String,
    /// The run, or the missing facility and how to get it.
    pub outcome: Outcome<Ran>,
}

/// The job, and each backend's row, in the order asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The job as deployed.
    pub job: serde_json::Value,
    /// One row per backend.
    pub backends: Vec<Backend>,
    /// The CPU it ran on.
    pub cpu: String,
}

/// Checks the backends' names against the registry before anything runs.
pub fn check_backends(backends: &[String]) -> Result<()> {
    if backends.is_empty() {
        return Err(Error::invalid(
            "the list of backends",
            "empty",
            format!("name at least one of {}", kinds::rungs().join(", ")),
        ));
    }
    backends
        .iter()
        .try_for_each(|b| kinds::entry(b).map(|_| ()))
}

/// Deploys `job` unchanged on every backend in `backends`, one after the other, in this
/// process. Unknown backend names are refused before anything runs; a backend this machine
/// cannot make (no KVM, no MPI, a missing cgroup controller) is a row saying so; a run whose
/// instance fails gives the error naming it.
pub fn deploy(job: &Job, backends: &[String]) -> Result<Deployment> {
    check_backends(backends)?;
    let limits = Limits {
        cpu: job.limits.cpu,
        memory_bytes: job.limits.memory_bytes(),
    };
    let rows = backends
        .iter()
        .map(|rung| {
            let entry = kinds::entry(rung)?;
            let (isolation, price_class) = mapping(rung);
            let outcome = match kinds::make_limited(rung, limits).and_then(|kind| {
                kind.check(job.instances)?;
                Ok(kind)
            }) {
                Err(e) => Outcome::Skipped(e.sentence()),
                Ok(mut kind) => Outcome::Measured(ran(kind.as_mut(), job)?),
            };
            Ok(Backend {
                rung: rung.clone(),
                isolation: isolation.into(),
                limits: entry.takes.into(),
                price_class: price_class.into(),
                outcome,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Deployment {
        job: serde_json::to_value(job).map_err(|e| Error::bug(format!("a job as JSON: {e}")))?,
        backends: rows,
        cpu: virtlab_core::machine::cpu_model(),
    })
}

fn ran(kind: &mut dyn crate::executor::AnyKind, job: &Job) -> Result<Ran> {
    let measured = run_measured(kind, &job.work, job.instances)?;
    let mut starts: Vec<f64> = measured
        .run
        .units
        .iter()
        .filter_map(|u| u.first_line_ms)
        .collect();
    Ok(Ran {
        start_ms: median(&mut starts),
        memory_bytes_each: measured.user_bytes_each + measured.kernel_bytes_each,
        summary: measured.run.summary.clone(),
    })
}

/// What `rung` isolates and what a cloud sells it as.
fn mapping(rung: &str) -> (&'static str, &'static str) {
    MAPPING
        .iter()
        .find(|(r, _, _)| *r == rung)
        .map_or(("not mapped", "not mapped"), |(_, i, p)| (*i, *p))
}

/// The job file at `path` as written, once it has passed [`Job::load`]'s checks.
pub fn job_text(path: &Path) -> Result<String> {
    Job::load(path)?;
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// Deploys the job file at `path` in a fresh release `virtlab` program (`virtlab deploy
/// --json`), which has every backend built in and a memory reading no earlier cell disturbs.
pub fn in_release(path: &Path, backends: &[&str]) -> Result<Deployment> {
    Job::load(path)?;
    let path = std::fs::canonicalize(path)
        .map_err(|e| Error::io(format!("finding {}", path.display()), e))?;
    let path = path.to_string_lossy();
    crate::release::json(
        "the deployment",
        &["deploy", &path, "--backends", &backends.join(","), "--json"],
    )
}

impl Deployment {
    /// The backends that ran, with their runs.
    pub fn ran(&self) -> Vec<(&str, &Ran)> {
        self.backends
            .iter()
            .filter_map(|b| b.outcome.measured().map(|r| (b.rung.as_str(), r)))
            .collect()
    }

    /// One row per backend: start, isolation, memory per instance, limits, price class.
    pub fn table(&self) -> Table {
        let instances = self.job["instances"].as_u64().unwrap_or(0);
        let mut table = Table::new(
            format!(
                "One job ({instances} instances each) on every backend, through the one executor ({})",
                self.cpu
            ),
            [
                "backend",
                "start (asked → first line, median)",
                "isolation (what it separates)",
                "memory per instance (PSS + kernel)",
                "limits it took",
                "sold as (a mapping, not measured)",
            ],
        );
        for b in &self.backends {
            let (start, memory) = match &b.outcome {
                Outcome::Measured(r) => {
                    (duration_text(r.start_ms), bytes_text(r.memory_bytes_each))
                }
                Outcome::Skipped(why) => (format!("not run: {why}"), "-".into()),
            };
            table.row([
                b.rung.clone(),
                start,
                b.isolation.clone(),
                memory,
                b.limits.clone(),
                b.price_class.clone(),
            ]);
        }
        table.monospace_first_column()
    }

    /// The spread of start times in one sentence, computed from the rows that ran; and where
    /// the VM came out cheaper than a process, a second sentence saying why.
    pub fn spread(&self) -> String {
        match self.why_the_vm_is_cheap() {
            Some(why) => format!("{}\n{why}", self.start_spread()),
            None => self.start_spread(),
        }
    }

    /// Chapter 6's guest is a small program with no guest OS, so it can start faster and take
    /// less memory than a process; a cloud VM boots a kernel first. Said only where it happened.
    fn why_the_vm_is_cheap(&self) -> Option<String> {
        let ran = self.ran();
        let of = |rung| ran.iter().find(|(r, _)| *r == rung).map(|(_, run)| *run);
        let (vm, process) = (of("vm")?, of("process")?);
        let mut cheaper = Vec::new();
        if vm.start_ms < process.start_ms {
            cheaper.push(format!(
                "started in {} against a process's {}",
                duration_text(vm.start_ms),
                duration_text(process.start_ms)
            ));
        }
        if vm.memory_bytes_each < process.memory_bytes_each {
            cheaper.push(format!(
                "added {} against a process's {}",
                bytes_text(vm.memory_bytes_each),
                bytes_text(process.memory_bytes_each)
            ));
        }
        (!cheaper.is_empty()).then(|| {
            format!(
                "The VM {}: chapter 6's guest is a small program with no guest OS, so it boots \
                 no kernel and starts no init. A cloud VM instance does both before your code \
                 runs (Firecracker's published guest boot alone takes up to {FIRECRACKER_BOOT_MS:.0} ms).",
                cheaper.join(" and ")
            )
        })
    }

    fn start_spread(&self) -> String {
        let ran = self.ran();
        let by_start = |a: &&(&str, &Ran), b: &&(&str, &Ran)| a.1.start_ms.total_cmp(&b.1.start_ms);
        match (ran.iter().min_by(by_start), ran.iter().max_by(by_start)) {
            (Some(low), Some(high)) if ran.len() > 1 => format!(
                "The same job file started in {} on {} and in {} on {}: {:.0}× apart, \
                 from asking for an instance to its first line (median of {} instances, {}).",
                duration_text(low.1.start_ms),
                low.0,
                duration_text(high.1.start_ms),
                high.0,
                high.1.start_ms / low.1.start_ms,
                self.job["instances"],
                self.cpu
            ),
            _ => format!(
                "Only {} backend ran here, so there is no spread to compare; the rows above \
                 say what the others need.",
                ran.len()
            ),
        }
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rung_of_the_registry_is_mapped() {
        for rung in kinds::rungs() {
            assert_ne!(mapping(rung).0, "not mapped", "{rung}");
        }
    }

    #[test]
    fn unknown_and_missing_backends_are_refused_before_anything_runs() {
        let e = check_backends(&["process".into(), "lambda".into()]).unwrap_err();
        assert!(e.problem().contains("'lambda'"), "{e}");
        assert!(e.fix().contains("process, container"), "{e}");
        assert!(check_backends(&[]).unwrap_err().problem().contains("empty"));
    }

    fn job() -> Job {
        Job::parse(
            r#"{"work": {"name": "job", "iterations": 2, "interval_ms": 100}, "instances": 2}"#,
        )
        .unwrap()
    }

    #[test]
    fn threads_run_the_job_and_fill_their_row() {
        let deployment = deploy(&job(), &["thread".into()]).unwrap();
        let row = &deployment.backends[0];
        let ran = row.outcome.measured().expect("threads run everywhere");
        assert!(ran.start_ms > 0.0);
        assert_eq!(row.limits, "none");
        let table = deployment.table();
        assert_eq!(table.rows().len(), 1);
        assert!(table.rows()[0][2].contains("address space"));
        assert!(deployment.spread().contains("Only 1 backend"));
    }

    /// A row of `rung` that ran, started in `start_ms` and added `memory_bytes_each`.
    fn row(rung: &str, start_ms: f64, memory_bytes_each: f64) -> Backend {
        let (isolation, price_class) = mapping(rung);
        Backend {
            rung: rung.into(),
            isolation: isolation.into(),
            limits: String::new(),
            price_class: price_class.into(),
            outcome: Outcome::Measured(Ran {
                start_ms,
                memory_bytes_each,
                summary: String::new(),
            }),
        }
    }

    #[test]
    fn the_spread_names_the_cheapest_and_the_dearest() {
        let deployment = Deployment {
            job: serde_json::json!({"instances": 4}),
            backends: vec![
                row("process", 2.0, 0.0),
                row("vm", 8.0, 0.0),
                Backend {
                    outcome: Outcome::Skipped("no MPI".into()),
                    ..row("rank", 0.0, 0.0)
                },
            ],
            cpu: "a CPU".into(),
        };
        let sentence = deployment.spread();
        assert!(sentence.contains("2.00 ms on process"), "{sentence}");
        assert!(sentence.contains("8.00 ms on vm: 4× apart"), "{sentence}");
        // A VM slower than a process needs no explaining.
        assert!(!sentence.contains("no guest OS"), "{sentence}");
        assert!(deployment.table().rows()[2][1].starts_with("not run: no MPI"));
    }

    #[test]
    fn a_vm_cheaper_than_a_process_is_explained_by_its_missing_guest_os() {
        let mut deployment = Deployment {
            job: serde_json::json!({"instances": 4}),
            backends: vec![row("process", 2.0, 4096.0), row("vm", 1.5, 8192.0)],
            cpu: "a CPU".into(),
        };
        let said = deployment.spread();
        assert!(
            said.contains(
                "The VM started in 1.50 ms against a process's 2.00 ms: chapter 6's guest"
            ),
            "{said}"
        );
        assert!(!said.contains("added"), "{said}");
        assert!(
            said.contains(&format!("{FIRECRACKER_BOOT_MS:.0} ms")),
            "{said}"
        );
        deployment.backends[1] = row("vm", 3.0, 1024.0);
        assert!(deployment.spread().contains("The VM added"));
        let table = deployment.table();
        assert!(table.rows()[1][2].contains("no guest OS (chapter 6's guest)"));
        assert!(table.rows()[0][5].starts_with("none (a process inside an instance"));
    }
}
