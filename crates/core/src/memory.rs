//! How much memory a process tree holds, read from Linux's /proc: resident pages (RSS),
//! proportional pages (PSS: a page shared by k processes counts 1/k to each, so a tree's PSS adds
//! up to what it really holds), heap bytes in use (glibc's allocator statistics), and what the
//! kernel holds for a process: its page tables (`VmPTE`) and one kernel stack per thread (the
//! machine's `KernelStack` divided by its threads). That kernel share is where a thread's
//! 16 KiB kernel stack and a process's page tables show up; it is read per process, so other
//! programs starting and stopping on the machine do not blur it.
//!
//! The memory charged to this process's control group (cgroup v2 `memory.current`/`memory.peak`,
//! v1 `memory.usage_in_bytes`/`memory.max_usage_in_bytes`) is read here too: the figure a
//! container's limit acts on.
//!
//! Elsewhere every reading is `None` (or NaN), and callers say "not observable".

/// This process's resident memory (Linux /proc), `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The size of a memory page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    page.max(1) as u64
}

/// Heap bytes in use in this process: what tasks (which live on the heap) add, unaffected by
/// the allocator keeping freed memory. glibc's mallinfo2; resident memory elsewhere.
pub fn heap_in_use() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as f64
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        resident_bytes().map_or(f64::NAN, |b| b as f64)
    }
}

/// The proportional set size of process `pid` (`Pss` in /proc/PID/smaps_rollup).
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kib_field(&text, "Pss:")
}

/// The page tables of process `pid` (`VmPTE` in /proc/PID/status): kernel memory that maps its
/// address space.
pub fn page_table_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&text, "VmPTE:")
}

/// The kernel stack each thread has (16 KiB on x86-64 and arm64): the machine's `KernelStack`
/// in /proc/meminfo divided by the threads alive on it, rounded to whole pages. The size is fixed
/// for a running kernel, so it is worked out once per process (it walks every process in /proc),
/// not at every snapshot.
pub fn kernel_stack_per_thread() -> Option<u64> {
    static SIZE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *SIZE.get_or_init(measure_kernel_stack)
}

fn measure_kernel_stack() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = kib_field(&text, "KernelStack:")?;
    let threads: u64 = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_dir(e.path().join("task")).ok())
        .map(|tasks| tasks.count() as u64)
        .sum();
    let page = page_size();
    (threads > 0).then(|| (total / threads + page / 2) / page * page)
}

/// What the kernel charges to this process's memory cgroup: every page its processes use
/// (counted once, charged to the group that first touched it), the page cache of files they
/// read, and kernel memory such as page tables and stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMemory {
    /// The group's folder, e.g. `/sys/fs/cgroup/memory/…`.
    pub group: std::path::PathBuf,
    /// Charged now, in bytes.
    pub current: u64,
    /// The most ever charged, in bytes, where the kernel keeps it.
    pub peak: Option<u64>,
}

/// This process's memory cgroup and its charge (v2, else v1), `None` where neither is
/// readable.
pub fn cgroup_memory() -> Option<CgroupMemory> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path_of = |wanted: &dyn Fn(&str) -> bool| {
        own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            wanted(list).then(|| path.trim_start_matches('/').to_string())
        })
    };
    let read = |dir: &std::path::Path, file: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let root = std::path::Path::new("/sys/fs/cgroup");
    let v2 =
        path_of(&|list| list.is_empty()).map(|p| (root.join(p), "memory.current", "memory.peak"));
    let v1 = path_of(&|list| list.split(',').any(|c| c == "memory")).map(|p| {
        (
            root.join("memory").join(p),
            "memory.usage_in_bytes",
            "memory.max_usage_in_bytes",
        )
    });
    [v2, v1]
        .into_iter()
        .flatten()
        .find_map(|(group, current, peak)| {
            Some(CgroupMemory {
                current: read(&group, current)?,
                peak: read(&group, peak),
                group,
            })
        })
}

/// The value of a `Name:   123 kB` line, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_in_bytes_and_bad_text_is_none() {
        let text = "Rss:  100 kB\nPss:   42 kB\n";
        assert_eq!(kib_field(text, "Pss:"), Some(42 * 1024));
        assert_eq!(kib_field(text, "Swap:"), None);
        assert_eq!(kib_field("Pss: lots", "Pss:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_and_the_kernel_share_are_readable() {
        assert!(resident_bytes().unwrap() > 0);
        assert!(pss_bytes(std::process::id()).unwrap() > 0);
        assert!(page_table_bytes(std::process::id()).unwrap() > 0);
        let stack = kernel_stack_per_thread().unwrap();
        assert!(
            stack >= page_size() && stack.is_multiple_of(page_size()),
            "{stack}"
        );
        assert!(heap_in_use() > 0.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_readable_cgroup_charges_at_least_this_process_resident_pages() {
        // Containers and CI runners without a memory controller have nothing to read.
        if let Some(group) = cgroup_memory() {
            assert!(group.current >= resident_bytes().unwrap() / 2, "{group:?}");
            assert!(
                group.peak.is_none_or(|peak| peak >= group.current),
                "{group:?}"
            );
        }
    }
}
