//! The limits the operating system may put on this process beyond the hardware: CPU affinity,
//! a cgroup CPU quota and memory limit, and the marker files a container runtime leaves. Read
//! by chapter 0's inventory and by chapter 9's "which layer am I in?". Linux observations; they
//! read "not observable" elsewhere.

use serde::{Deserialize, Serialize};

pub use os::*;

/// A limit the operating system may put on this process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Limit<T> {
    /// No limit is set.
    Unlimited,
    /// A limit is set, to this value.
    Set(T),
    /// This platform does not say (the reason is given).
    Unknown(String),
}

impl<T> Limit<T> {
    /// The limit in words: `show` for a set one, "none", or why it cannot be seen.
    pub fn describe(&self, show: impl Fn(&T) -> String) -> String {
        match self {
            Limit::Unlimited => "none".into(),
            Limit::Set(v) => show(v),
            Limit::Unknown(why) => format!("not observable: {why}"),
        }
    }
}

#[cfg(target_os = "linux")]
mod os {
    use super::Limit;

    /// CPUs the scheduler may run this process on (its affinity mask).
    pub fn affinity_cpus() -> Limit<usize> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this process (pid 0).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                Limit::Set(libc::CPU_COUNT(&set) as usize)
            } else {
                Limit::Unknown(std::io::Error::last_os_error().to_string())
            }
        }
    }

    /// Reads this process's cgroup's v2 `cpu.max`, falling back to v1's `cpu.cfs_quota_us` /
    /// `cpu.cfs_period_us`.
    pub fn cgroup_cpu_quota() -> Limit<f64> {
        if let Some(text) = group_file(None, "cpu.max") {
            return parse_cpu_max(&text);
        }
        match (
            group_file(Some("cpu"), "cpu.cfs_quota_us"),
            group_file(Some("cpu"), "cpu.cfs_period_us"),
        ) {
            (Some(quota), Some(period)) => parse_cpu_max(&format!(
                "{} {}",
                quota.trim().replace("-1", "max"),
                period.trim()
            )),
            _ => Limit::Unknown("no cgroup CPU controller is visible".into()),
        }
    }

    /// A file of this process's own group (`/proc/self/cgroup`) under the v1 hierarchy of
    /// `controller`, or the v2 one for `None`; the hierarchy's root where the group's folder
    /// is not visible (a cgroup namespace shows its root as "/", a container may not mount it).
    fn group_file(controller: Option<&str>, file: &str) -> Option<String> {
        let groups = read("/proc/self/cgroup").unwrap_or_default();
        let base = match controller {
            Some(c) => format!("/sys/fs/cgroup/{c}"),
            None => "/sys/fs/cgroup".to_string(),
        };
        let path = groups.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let ours = match controller {
                Some(c) => controllers.split(',').any(|n| n == c),
                None => controllers.is_empty(),
            };
            ours.then(|| path.to_string())
        });
        path.and_then(|p| read(&format!("{base}{}/{file}", p.trim_end_matches('/'))))
            .or_else(|| read(&format!("{base}/{file}")))
    }

    /// CPUs from a `cpu.max` line (`quota period`, or `max period`).
    pub fn parse_cpu_max(text: &str) -> Limit<f64> {
        let mut parts = text.split_whitespace();
        match (
            parts.next(),
            parts.next().and_then(|p| p.parse::<f64>().ok()),
        ) {
            (Some("max"), _) => Limit::Unlimited,
            (Some(quota), Some(period)) if period > 0.0 => match quota.parse::<f64>() {
                Ok(q) => Limit::Set(q / period),
                Err(_) => Limit::Unknown(format!("unreadable cpu.max '{}'", text.trim())),
            },
            _ => Limit::Unknown(format!("unreadable cpu.max '{}'", text.trim())),
        }
    }

    /// The most memory this process's cgroup may use: v2 `memory.max`, or v1's
    /// `memory.limit_in_bytes`.
    pub fn cgroup_memory_limit() -> Limit<u64> {
        let text = match group_file(None, "memory.max")
            .or_else(|| group_file(Some("memory"), "memory.limit_in_bytes"))
        {
            Some(t) => t,
            None => return Limit::Unknown("no cgroup memory controller is visible".into()),
        };
        parse_memory_max(&text)
    }

    /// Bytes from a `memory.max` (or v1 limit) file; "max" and v1's huge number are no limit.
    pub fn parse_memory_max(text: &str) -> Limit<u64> {
        match text.trim() {
            "max" => Limit::Unlimited,
            // cgroup v1 writes "no limit" as a huge page-aligned number near i64::MAX.
            t => match t.parse::<u64>() {
                Ok(v) if v >= (1 << 62) => Limit::Unlimited,
                Ok(v) => Limit::Set(v),
                Err(_) => Limit::Unknown(format!("unreadable memory limit '{t}'")),
            },
        }
    }

    /// The marker file a container runtime left, as seen (a file, not proof of who started
    /// the container); `None` when there is none.
    pub fn container_marker() -> Option<String> {
        // Only the file is seen: other runtimes write Docker's marker too.
        [
            ("/.dockerenv", "Docker's marker file"),
            ("/run/.containerenv", "Podman's marker file"),
        ]
        .into_iter()
        .find(|(path, _)| std::path::Path::new(path).exists())
        .map(|(path, whose)| format!("{path} present ({whose})"))
    }

    fn read(path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use super::Limit;
    const WHY: &str = "Linux only";

    /// CPUs the scheduler may run this process on (its affinity mask).
    pub fn affinity_cpus() -> Limit<usize> {
        Limit::Unknown(WHY.into())
    }

    /// CPU time this process's cgroup grants, in CPUs.
    pub fn cgroup_cpu_quota() -> Limit<f64> {
        Limit::Unknown(WHY.into())
    }

    /// The most memory this process's cgroup may use: v2 `memory.max`, or v1's
    /// `memory.limit_in_bytes`.
    pub fn cgroup_memory_limit() -> Limit<u64> {
        Limit::Unknown(WHY.into())
    }

    /// The marker file a container runtime left, as seen (a file, not proof of who started
    /// the container); `None` when there is none.
    pub fn container_marker() -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn cgroup_files_parse() {
        assert_eq!(parse_cpu_max("max 100000\n"), Limit::Unlimited);
        assert_eq!(parse_cpu_max("150000 100000\n"), Limit::Set(1.5));
        assert!(matches!(parse_cpu_max("garbage"), Limit::Unknown(_)));
        assert_eq!(parse_memory_max("max\n"), Limit::Unlimited);
        assert_eq!(parse_memory_max("1073741824\n"), Limit::Set(1 << 30));
        assert_eq!(parse_memory_max("9223372036854771712"), Limit::Unlimited);
        assert!(matches!(parse_memory_max("x"), Limit::Unknown(_)));
    }
}
