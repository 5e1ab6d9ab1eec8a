//! One cgroup per container, on cgroup v2 (one folder) or v1 (a folder in each hierarchy):
//! limits written, counters read (CPU time, throttled periods, memory, OOM kills, pids), and
//! removal that kills whatever is left inside and removes every folder.
//!
//! Groups are named `virtlab-<owner pid>-<container>`, so a later run can tell a stale group
//! (its owner is dead: the owner was SIGKILLed before it could clean up) from a live one, and
//! removes it.

use super::support::{Support, Version};
use super::{CPU_PERIOD_US, Limits};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;

/// How long removal waits for killed processes to leave before giving up.
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// A container's group; dropping it removes the group (killing what is left inside).
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
}

/// Counters of a group at one moment; `None` where this machine does not keep that counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time used by everything in the group.
    pub cpu_ns: Option<u64>,
    /// CFS periods with runnable work, and how many of those ran out of quota.
    pub periods: Option<u64>,
    /// Periods in which the group ran out of quota.
    pub throttled_periods: Option<u64>,
    /// Time the group spent waiting for its next period.
    pub throttled_ns: Option<u64>,
    /// Memory charged to the group now.
    pub memory_bytes: Option<u64>,
    /// The most memory charged to the group so far.
    pub memory_peak_bytes: Option<u64>,
    /// The group's memory limit (`None` when unlimited).
    pub memory_limit: Option<u64>,
    /// Processes the OOM killer killed in this group.
    pub oom_kills: Option<u64>,
    /// Processes and threads in the group now.
    pub pids: Option<u64>,
    /// Forks refused because the group was at its pids limit.
    pub pids_refused: Option<u64>,
}

/// A group decided but not made yet: its folders are known before they exist, so a container's
/// shim can be started while another thread makes them.
#[derive(Debug, Clone)]
pub struct Planned {
    wanted: Vec<&'static str>,
    bases: Vec<(Version, PathBuf)>,
    leaf: String,
    limits: Limits,
}

impl Planned {
    /// The group `virtlab-<our pid>-<name>` under the controllers `limits` need.
    pub fn new(support: &Support, name: &str, limits: &Limits) -> Planned {
        let mut wanted = Vec::new();
        if limits.cpu.is_some() {
            // cpuacct: CPU time, which v1's cpu.stat does not count.
            wanted.extend(["cpu", "cpuacct"]);
        }
        if limits.memory.is_some() {
            wanted.push("memory");
        }
        if limits.pids.is_some() {
            wanted.push("pids");
        }
        let mut bases: Vec<(Version, PathBuf)> = Vec::new();
        for c in support
            .controllers
            .iter()
            .filter(|c| wanted.contains(&c.name))
        {
            if let Ok(place) = &c.place
                && !bases.contains(place)
            {
                bases.push(place.clone());
            }
        }
        Planned {
            wanted,
            bases,
            leaf: format!("virtlab-{}-{name}", std::process::id()),
            limits: *limits,
        }
    }

    /// The folders the group will have (none when no limit needs one).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.bases
            .iter()
            .map(|(_, base)| base.join(&self.leaf))
            .collect()
    }

    /// Makes the group: stale groups of dead owners swept, folders created, limits written.
    /// What was made is removed again when a step fails.
    pub fn create(self) -> Result<Cgroup> {
        for (_, base) in &self.bases {
            sweep_stale(base);
        }
        let mut group = Cgroup { dirs: Vec::new() };
        for (version, base) in &self.bases {
            if *version == Version::V2 {
                enable_controllers(base, &self.wanted);
            }
            let dir = base.join(&self.leaf);
            std::fs::create_dir(&dir)
                .map_err(|e| Error::io(format!("creating the cgroup {}", dir.display()), e))?;
            group.dirs.push(dir);
        }
        group.limit(&self.limits)?;
        Ok(group)
    }
}

impl Cgroup {
    /// Creates `virtlab-<our pid>-<name>` under the controllers `limits` need (none: no group,
    /// as joining a v1 hierarchy costs milliseconds), then writes the limits (the caller
    /// checked them with [`Support::check`]). Stale groups left by dead owners go first.
    pub fn create(support: &Support, name: &str, limits: &Limits) -> Result<Cgroup> {
        Planned::new(support, name, limits).create()
    }

    /// A group made elsewhere (the shim gets its folders on the command line).
    pub fn open(dirs: Vec<PathBuf>) -> Cgroup {
        Cgroup { dirs }
    }

    /// The group's folders (one on v2, one per hierarchy on v1).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn limit(&self, limits: &Limits) -> Result<()> {
        if let Some(cpu) = limits.cpu {
            let quota = ((cpu * CPU_PERIOD_US as f64).round() as u64).max(1000);
            if self.find("cpu.max").is_some() {
                self.write("cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
            } else {
                self.write("cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                self.write("cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        if let Some(memory) = limits.memory {
            if self.find("memory.max").is_some() {
                self.write("memory.max", &memory.to_string())?;
                // No swap, so going past the limit means the OOM killer, not a slow crawl.
                if self.find("memory.swap.max").is_some() {
                    self.write("memory.swap.max", "0")?;
                }
            } else {
                self.write("memory.limit_in_bytes", &memory.to_string())?;
                if self.find("memory.memsw.limit_in_bytes").is_some() {
                    self.write("memory.memsw.limit_in_bytes", &memory.to_string())?;
                }
            }
        }
        if let Some(pids) = limits.pids {
            self.write("pids.max", &pids.to_string())?;
        }
        Ok(())
    }

    /// The group's cgroup v2 folder, if it has one (v2 has no `tasks` file; v1 always does).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| !d.join("tasks").exists())
            .map(PathBuf::as_path)
    }

    /// Moves process `pid` (all its threads) into the group's v2 folder, by `cgroup.procs`.
    /// Only where `clone3(CLONE_INTO_CGROUP)` could not put it there at birth: writing another
    /// process's pid takes the kernel's global `cgroup_threadgroup_rwsem` for writing, which
    /// waits for an RCU grace period (milliseconds) unless the hierarchy is mounted with
    /// `favordynmods`.
    pub fn join_unified(&self, pid: u32) -> Result<()> {
        let Some(dir) = self.unified_dir() else {
            return Ok(());
        };
        let path = dir.join("cgroup.procs");
        std::fs::write(&path, pid.to_string())
            .map_err(|e| Error::io(format!("moving pid {pid} into {}", path.display()), e))
    }

    /// Moves the calling thread into the group on every v1 hierarchy, by writing "0" (the
    /// caller itself) to `tasks`. The kernel moves the current thread without taking the
    /// global `cgroup_threadgroup_rwsem` (kernel/cgroup/cgroup.c, `cgroup_procs_write_start`:
    /// `CGRP_ATTACH_LOCK_NONE` when `pid == 0` and not a whole thread group), so no RCU grace
    /// period is waited for: about 0.3 ms here instead of 5-15 ms for a pid written into
    /// `cgroup.procs`. For a single-threaded process (the container's pid 1 before it runs
    /// anything) moving its only thread moves the process. v2 refuses single threads outside
    /// threaded groups; it gets `clone3(CLONE_INTO_CGROUP)` instead.
    /// Returns whether there was a v1 hierarchy to join.
    pub fn join_current_thread(&self) -> Result<bool> {
        let mut joined = false;
        for dir in self.dirs.iter().filter(|d| d.join("tasks").exists()) {
            let path = dir.join("tasks");
            std::fs::write(&path, "0")
                .map_err(|e| Error::io(format!("moving itself into {}", path.display()), e))?;
            joined = true;
        }
        Ok(joined)
    }

    /// The group's counters now.
    pub fn stats(&self) -> Stats {
        let cpu = self.read_keyed("cpu.stat");
        let v2 = cpu.iter().any(|(k, _)| k == "usage_usec");
        let key = |map: &[(String, u64)], k: &str| map.iter().find(|(n, _)| n == k).map(|e| e.1);
        let oom = self
            .read_keyed("memory.events")
            .into_iter()
            .chain(self.read_keyed("memory.oom_control"))
            .collect::<Vec<_>>();
        let pids_events = self.read_keyed("pids.events");
        Stats {
            cpu_ns: if v2 {
                key(&cpu, "usage_usec").map(|us| us * 1000)
            } else {
                self.read_number("cpuacct.usage")
            },
            periods: key(&cpu, "nr_periods"),
            throttled_periods: key(&cpu, "nr_throttled"),
            throttled_ns: key(&cpu, "throttled_usec")
                .map(|us| us * 1000)
                .or_else(|| key(&cpu, "throttled_time")),
            memory_bytes: self
                .read_number("memory.current")
                .or_else(|| self.read_number("memory.usage_in_bytes")),
            memory_peak_bytes: self
                .read_number("memory.peak")
                .or_else(|| self.read_number("memory.max_usage_in_bytes")),
            memory_limit: self
                .read_number("memory.max")
                .or_else(|| self.read_number("memory.limit_in_bytes"))
                .filter(|&l| l < 1 << 60),
            oom_kills: key(&oom, "oom_kill"),
            pids: self.read_number("pids.current"),
            pids_refused: key(&pids_events, "max"),
        }
    }

    /// Host pids of the processes in the group.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .dirs
            .iter()
            .flat_map(|d| {
                std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills what is left inside and removes every folder; safe to call again.
    pub fn remove(&mut self) -> Result<()> {
        let deadline = Instant::now() + REMOVE_PATIENCE;
        loop {
            self.dirs.retain(|d| d.exists());
            if self.dirs.is_empty() {
                return Ok(());
            }
            let kill_file = self.find("cgroup.kill");
            match kill_file {
                Some(file) => {
                    let _ = std::fs::write(file, "1");
                }
                None => {
                    for pid in self.pids() {
                        // SAFETY: kill sends a signal; the pid was read from our own group.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    }
                }
            }
            for dir in &self.dirs {
                let _ = std::fs::remove_dir(dir);
            }
            if Instant::now() > deadline {
                let left = self.dirs.iter().map(|d| d.display().to_string());
                return Err(Error::new(
                    format!(
                        "could not remove the cgroup {}: processes are still inside",
                        left.collect::<Vec<_>>().join(", ")
                    ),
                    "a process stuck in the kernel (state D) keeps it; it is removed by the next run once empty",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn find(&self, file: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.find(file).ok_or_else(|| {
            Error::new(
                format!("this cgroup has no {file} file"),
                "the controller is not enabled for this group; run as root or in a delegated scope",
            )
        })?;
        std::fs::write(&path, value)
            .map_err(|e| Error::io(format!("writing {value} to {}", path.display()), e))
    }

    fn read_number(&self, file: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.find(file)?).ok()?;
        text.trim().parse().ok()
    }

    /// "key value" lines (cpu.stat, memory.events, memory.oom_control, pids.events).
    fn read_keyed(&self, file: &str) -> Vec<(String, u64)> {
        let Some(path) = self.find(file) else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// On v2, a child group gets a controller only when its parent lists it in
/// cgroup.subtree_control. Failures show later, as a missing limit file with its fix.
fn enable_controllers(base: &Path, wanted: &[&str]) {
    for name in wanted.iter().filter(|&&n| n != "cpuacct") {
        let _ = std::fs::write(base.join("cgroup.subtree_control"), format!("+{name}"));
    }
}

/// Removes `virtlab-<pid>-…` groups under `base` whose owner process is gone.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if super::owner_is_gone(&name, "virtlab-") {
            let _ = Cgroup::open(vec![entry.path()]).remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_read_v1_and_v2_spellings_from_files() {
        let dir = std::env::temp_dir().join(format!("virtlab-cg-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("cpu.stat"),
            "usage_usec 2000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 300\n",
        )
        .unwrap();
        std::fs::write(dir.join("memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        std::fs::write(dir.join("memory.current"), "4096\n").unwrap();
        std::fs::write(dir.join("pids.events"), "max 7\n").unwrap();
        let group = Cgroup {
            dirs: vec![dir.clone()],
        };
        let s = group.stats();
        assert_eq!(s.cpu_ns, Some(2_000_000));
        assert_eq!((s.periods, s.throttled_periods), (Some(10), Some(4)));
        assert_eq!(s.throttled_ns, Some(300_000));
        assert_eq!((s.memory_bytes, s.oom_kills), (Some(4096), Some(1)));
        assert_eq!(s.pids_refused, Some(7));
        std::mem::forget(group);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
