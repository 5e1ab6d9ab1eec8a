//! The machine's processes as /proc lists them — pids, parents, names and pid namespaces: what
//! finding a daemon's children, a rank's host pid or a leftover process needs. A process that
//! ends while it is read is simply not listed.

/// Every process's pid now.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The parent of `pid` (the field after the state in /proc/PID/stat; the name before it may
/// hold spaces and parentheses, so it is found from the last ')').
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The name of `pid`'s program as `ps` shows it (/proc/PID/comm).
pub fn name_of(pid: u32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end().to_string())
}

/// `pid`'s pid namespace, as its link reads (`pid:[4026531836]`).
pub fn pid_namespace_of(pid: u32) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    Some(link.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_listed_with_its_parent_name_and_namespace() {
        let me = std::process::id();
        assert!(pids().contains(&me));
        assert_eq!(parent_of(me), Some(std::os::unix::process::parent_id()));
        assert!(name_of(me).is_some_and(|n| !n.is_empty()));
        assert!(pid_namespace_of(me).is_some_and(|ns| ns.starts_with("pid:[")));
        assert_eq!(parent_of(u32::MAX), None);
    }
}
