//! What Slurm's commands print, read into typed values: `sinfo`'s node table and `scontrol show
//! job -o`'s job record (state, submit/start/end times, CPUs), and the accounting derived from it.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `sinfo` format asked for: one node a line, `|`-separated.
pub const SINFO_FORMAT: &str = "%N|%T|%c|%m";

/// One node as `sinfo -N` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name.
    pub node: String,
    /// Its state (idle, allocated, mixed, down, ...).
    pub state: String,
    /// Its CPUs as Slurm schedules them.
    pub cpus: u32,
    /// Its memory as Slurm schedules it, in MiB.
    pub memory_mib: u64,
}

/// `sinfo -N -h -o SINFO_FORMAT`'s output as rows (a node in two partitions shows once).
pub fn parse_sinfo(text: &str) -> Result<Vec<NodeInfo>> {
    let mut rows: Vec<NodeInfo> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('|').collect();
        let bad = || {
            Error::new(
                format!("sinfo printed a line this lab cannot read: {line:?}"),
                "check that sinfo is Slurm's (sinfo --version) and report the line",
            )
        };
        let [node, state, cpus, memory] = fields[..] else {
            return Err(bad());
        };
        let row = NodeInfo {
            node: node.to_string(),
            // sinfo marks a state with a suffix (`idle*`: not responding, `~`: powered off).
            state: state.to_string(),
            cpus: cpus.parse().map_err(|_| bad())?,
            memory_mib: memory.parse().map_err(|_| bad())?,
        };
        if !rows.iter().any(|r| r.node == row.node) {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// A job as slurmctld records it (`scontrol show job -o`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: u64,
    /// Its name (`-J`).
    pub name: String,
    /// PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ...
    pub state: String,
    /// Why it waits or ended (`Resources`, `None`, ...).
    pub reason: String,
    /// When it was submitted, started and ended, in seconds on slurmctld's clock (local time
    /// as written, counted from 1970; only differences are meaningful). None: not yet.
    pub submit_s: Option<i64>,
    /// See `submit_s`.
    pub start_s: Option<i64>,
    /// See `submit_s`.
    pub end_s: Option<i64>,
    /// Nodes and CPUs it was given.
    pub nodes: u32,
    /// See `nodes`.
    pub cpus: u32,
    /// The nodes, in Slurm's notation (`node-[1-3]`).
    pub node_list: String,
    /// Its exit code as `code:signal`.
    pub exit_code: String,
}

impl JobRecord {
    /// Whether the job will not change any more.
    pub fn finished(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "REQUEUED"
        )
    }

    /// Seconds between submission and start: the time it queued (Slurm's clock, whole seconds).
    pub fn wait_s(&self) -> Option<i64> {
        Some(self.start_s? - self.submit_s?)
    }

    /// Seconds between start and end.
    pub fn elapsed_s(&self) -> Option<i64> {
        Some(self.end_s? - self.start_s?)
    }

    /// The job's accounting: elapsed time and CPU-seconds as Slurm charges them.
    pub fn accounting(&self) -> Option<Accounting> {
        let elapsed_s = self.elapsed_s()?;
        Some(Accounting {
            id: self.id,
            name: self.name.clone(),
            state: self.state.clone(),
            elapsed_s,
            cpus: self.cpus,
            cpu_seconds: elapsed_s * i64::from(self.cpus),
            wait_s: self.wait_s().unwrap_or(0),
        })
    }
}

/// A finished job's account, read back from slurmctld's job record (there is no slurmdbd
/// here, so no `sacct`): `cpu_seconds` is what `sacct` calls CPUTime, elapsed × CPUs allocated
/// — what a cluster charges for, whether or not the job kept its CPUs busy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// The job.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its end state.
    pub state: String,
    /// End − start, in seconds.
    pub elapsed_s: i64,
    /// CPUs allocated.
    pub cpus: u32,
    /// elapsed × CPUs.
    pub cpu_seconds: i64,
    /// Start − submit, in seconds.
    pub wait_s: i64,
}

/// Seconds from 1970-01-01T00:00:00 of a Slurm time (`2026-12-07T04:53:16`); None for
/// `Unknown`, `None` or anything else.
pub fn parse_time(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (&[y, m, day], &[h, min, s]) = (&d[..], &t[..]) else {
        return None;
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + h * 3_600 + min * 60 + s)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One `scontrol show job -o` line as a record.
pub fn parse_job(line: &str) -> Result<JobRecord> {
    // Fields are `Key=Value` separated by spaces; a value has no space except in Command and
    // a few free-text fields, which are not read here.
    let fields: HashMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect();
    let field = |k: &str| fields.get(k).copied().unwrap_or("");
    let id = field("JobId").parse().map_err(|_| {
        Error::new(
            format!("scontrol printed no job id: {:?}", line.trim()),
            "check that the job id exists (scontrol show job) and report the line",
        )
    })?;
    let number = |k: &str| field(k).parse().unwrap_or(0);
    Ok(JobRecord {
        id,
        name: field("JobName").to_string(),
        state: field("JobState").to_string(),
        reason: field("Reason").to_string(),
        submit_s: parse_time(field("SubmitTime")),
        start_s: parse_time(field("StartTime")),
        end_s: parse_time(field("EndTime")),
        nodes: number("NumNodes"),
        cpus: number("NumCPUs"),
        node_list: field("NodeList").to_string(),
        exit_code: field("ExitCode").to_string(),
    })
}

/// `sbatch --parsable`'s answer (`42` or `42;cluster`) as a job id.
pub fn parse_job_id(text: &str) -> Result<u64> {
    text.trim()
        .split(';')
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            Error::new(
                format!("sbatch answered without a job id: {:?}", text.trim()),
                "see the controller's log in the cluster's run folder (slurm/slurmctld.log)",
            )
        })
}

/// The plugin names of `srun --mpi=list` (22.05: "MPI plugin types are..." then one a line,
/// indented; 23.02 on: "MPI plugin types are..." then one a line after a tab as well).
pub fn parse_mpi_list(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('\t') || l.starts_with(' '))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !l.contains(' '))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinfo_rows_parse_and_a_strange_line_is_an_error() {
        let rows =
            parse_sinfo("node-1|idle|1|512\nnode-2|allocated|2|1024\nnode-1|idle|1|512\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1],
            NodeInfo {
                node: "node-2".into(),
                state: "allocated".into(),
                cpus: 2,
                memory_mib: 1024
            }
        );
        let e = parse_sinfo("PARTITION AVAIL\n").unwrap_err();
        assert!(e.problem().contains("PARTITION AVAIL"), "{e}");
    }

    #[test]
    fn slurm_times_count_seconds_from_1970() {
        assert_eq!(parse_time("1970-01-01T00:00:00"), Some(0));
        // `date -u -d 2026-12-07T04:53:16 +%s`
        assert_eq!(parse_time("2026-12-07T04:53:16"), Some(1_796_619_196));
        assert_eq!(parse_time("2024-03-01T00:00:00"), Some(1_709_251_200));
        assert_eq!(parse_time("Unknown"), None);
        assert_eq!(parse_time("None"), None);
        assert_eq!(parse_time("2026-13-01T00:00:00"), None);
    }

    #[test]
    fn a_job_record_gives_its_wait_and_accounting() {
        let line = "JobId=7 JobName=second UserId=root(0) JobState=COMPLETED Reason=None \
            Dependency=(null) ExitCode=0:0 RunTime=00:00:03 SubmitTime=2026-12-07T04:53:16 \
            EligibleTime=2026-12-07T04:53:16 StartTime=2026-12-07T04:53:20 \
            EndTime=2026-12-07T04:53:23 NodeList=node-[1-3] NumNodes=3 NumCPUs=3 \
            Command=(null) WorkDir=/run/x";
        let job = parse_job(line).unwrap();
        assert_eq!(job.id, 7);
        assert!(job.finished());
        assert_eq!(job.wait_s(), Some(4));
        let account = job.accounting().unwrap();
        assert_eq!((account.elapsed_s, account.cpu_seconds), (3, 9));
        let pending = parse_job(
            "JobId=8 JobName=x JobState=PENDING Reason=Resources SubmitTime=2026-12-07T04:53:16 StartTime=Unknown EndTime=Unknown NumNodes=3 NumCPUs=3",
        )
        .unwrap();
        assert!(!pending.finished());
        assert_eq!(pending.wait_s(), None);
        assert!(pending.accounting().is_none());
        assert!(parse_job("slurm_load_jobs error: Invalid job id specified").is_err());
        assert_eq!(parse_job_id("42;virtlab7\n").unwrap(), 42);
        assert!(parse_job_id("sbatch: error: Batch job submission failed").is_err());
    }

    #[test]
    fn srun_mpi_list_gives_the_plugin_names() {
        // Slurm 22.05.8's answer, as printed here.
        let text = "MPI plugin types are...\n\tpmix\n\tnone\n\tcray_shasta\n\tpmi2\nspecific pmix plugin versions available: pmix_v4\n";
        assert_eq!(
            parse_mpi_list(text),
            ["pmix", "none", "cray_shasta", "pmi2"]
        );
    }
}
