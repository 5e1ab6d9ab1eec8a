//! One job description, deployable unchanged on every backend: the work each instance runs,
//! how many instances, and the limits a backend applies where it takes them. The format is
//! JSON (the workspace already reads JSON everywhere); `data/job.json` is the shipped example:
//!
//! ```json
//! {
//!   "work": { "name": "job", "iterations": 5, "interval_ms": 200, "burn_ms": 0 },
//!   "instances": 4,
//!   "limits": { "cpu": 0.5, "memory_mib": 64 }
//! }
//! ```
//!
//! `burn_ms` and `limits` (and either of its fields) may be left out. Unknown fields are
//! refused, so a misspelt field is named rather than silently ignored.

use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use virtlab_core::work::Work;

/// The most instances one job may ask for on one backend: the count a VM or a container can
/// reach on a small machine, well above what a typo would need.
pub const MAX_INSTANCES: usize = 64;

/// The smallest memory limit a job may ask for: chapter 7's smallest container (a VM's guest
/// needs far less, so every backend that takes memory can honour it).
pub const MIN_MEMORY_MIB: u64 = 16;

/// What a job asks each backend to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// The work every instance runs.
    pub work: Work,
    /// How many instances.
    pub instances: usize,
    /// The limits, where a backend takes them.
    pub limits: JobLimits,
}

/// A job's limits: each is applied by the backends that take it, and said so in the table.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobLimits {
    /// CPUs' worth of time per instance, e.g. 0.5.
    pub cpu: Option<f64>,
    /// Memory per instance, MiB.
    pub memory_mib: Option<u64>,
}

/// The file's form, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    work: WorkFile,
    instances: usize,
    #[serde(default)]
    limits: JobLimits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkFile {
    name: String,
    iterations: u32,
    interval_ms: u64,
    #[serde(default)]
    burn_ms: u64,
}

const FIX: &str = "write the job as data/job.json does: {\"work\": {\"name\", \"iterations\", \"interval_ms\", \"burn_ms\" (optional)}, \"instances\", \"limits\": {\"cpu\", \"memory_mib\"} (optional)}";

impl Job {
    /// The example job the repository ships.
    pub fn shipped_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/job.json")
    }

    /// Reads and checks a job file.
    pub fn load(path: &Path) -> Result<Job> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::of(
                ErrorKind::Io,
                format!("cannot read the job file {}: {e}", path.display()),
                "check the path (the lab ships an example as data/job.json), then run it again",
            )
        })?;
        Job::parse(&text).map_err(|e| {
            Error::of(
                e.kind(),
                format!("the job file {}: {}", path.display(), e.problem()),
                e.fix(),
            )
        })
    }

    /// Parses and checks a job from its JSON text.
    pub fn parse(text: &str) -> Result<Job> {
        let file: JobFile = serde_json::from_str(text)
            .map_err(|e| Error::of(ErrorKind::Invalid, format!("it is not a job: {e}"), FIX))?;
        let work = Work::new(&file.work.name, file.work.iterations, file.work.interval_ms)
            .and_then(|w| w.burning(file.work.burn_ms))
            .map_err(|e| {
                Error::of(
                    ErrorKind::Invalid,
                    format!("its field \"work\": {}", e.problem()),
                    e.fix(),
                )
            })?;
        if file.instances == 0 || file.instances > MAX_INSTANCES {
            return Err(Error::invalid(
                "its field \"instances\"",
                file.instances,
                format!("ask for 1 to {MAX_INSTANCES} instances"),
            ));
        }
        file.limits.check()?;
        Ok(Job {
            work,
            instances: file.instances,
            limits: file.limits,
        })
    }
}

impl JobLimits {
    fn check(&self) -> Result<()> {
        if let Some(cpu) = self.cpu
            && !(cpu.is_finite() && cpu > 0.0)
        {
            return Err(Error::invalid(
                "its field \"limits.cpu\"",
                cpu,
                "give CPUs' worth of time above 0, e.g. 0.5 for half of one CPU, or leave it out",
            ));
        }
        if let Some(mib) = self.memory_mib
            && mib < MIN_MEMORY_MIB
        {
            return Err(Error::invalid(
                "its field \"limits.memory_mib\"",
                mib,
                format!("give at least {MIN_MEMORY_MIB} MiB, or leave it out"),
            ));
        }
        Ok(())
    }

    /// The memory limit in bytes, if there is one.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory_mib.map(|mib| mib << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"work": {"name": "job", "iterations": 3, "interval_ms": 50},
                           "instances": 2, "limits": {"memory_mib": 64}}"#;

    #[test]
    fn a_job_parses_with_its_optional_parts_left_out() {
        let job = Job::parse(GOOD).unwrap();
        assert_eq!(job.work.iterations(), 3);
        assert_eq!(job.work.burn(), std::time::Duration::ZERO);
        assert_eq!(job.instances, 2);
        assert_eq!(job.limits.cpu, None);
        assert_eq!(job.limits.memory_bytes(), Some(64 << 20));
    }

    #[test]
    fn the_shipped_example_loads() {
        let job = Job::load(&Job::shipped_path()).unwrap();
        assert!(job.instances >= 1);
    }

    fn refused(text: &str) -> Error {
        Job::parse(text).unwrap_err()
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = refused(r#"{"work": {"name": "job", "iterations": 3, "interval_ms": 50}}"#);
        assert!(e.problem().contains("missing field `instances`"), "{e}");
        assert!(e.fix().contains("data/job.json"), "{e}");
    }

    #[test]
    fn zero_instances_are_refused_with_the_range() {
        let e = refused(&GOOD.replace("\"instances\": 2", "\"instances\": 0"));
        assert!(e.problem().contains("\"instances\" cannot be 0"), "{e}");
        assert!(e.fix().contains("1 to 64"), "{e}");
    }

    #[test]
    fn a_misspelt_field_and_a_malformed_file_are_named() {
        let e = refused(&GOOD.replace("memory_mib", "memory_mb"));
        assert!(e.problem().contains("unknown field `memory_mb`"), "{e}");
        let e = refused("{\"work\": ");
        assert!(e.problem().contains("line 1"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn bad_work_and_bad_limits_are_refused() {
        let e = refused(&GOOD.replace("\"iterations\": 3", "\"iterations\": 0"));
        assert!(e.problem().contains("\"work\""), "{e}");
        let e = refused(&GOOD.replace("\"memory_mib\": 64", "\"cpu\": -1"));
        assert!(e.problem().contains("limits.cpu"), "{e}");
        let e = refused(&GOOD.replace("\"memory_mib\": 64", "\"memory_mib\": 1"));
        assert!(e.problem().contains("limits.memory_mib"), "{e}");
    }

    #[test]
    fn a_missing_file_says_where_the_example_is() {
        let e = Job::load(Path::new("/nonexistent/job.json")).unwrap_err();
        assert!(e.problem().contains("/nonexistent/job.json"), "{e}");
        assert!(e.fix().contains("data/job.json"), "{e}");
    }
}
