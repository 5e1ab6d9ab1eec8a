//! The ways this lab reads memory, side by side for one run, once: RSS (the process explorer),
//! PSS and the kernel's share (the cost ladder), heap in use (chapter 3's tasks) and the
//! control group's charge (chapter 7's containers). Each counts something else; the table says
//! what, and why each differs from PSS, so a figure in a later chapter can be read against it.

use crate::memory;
use crate::observer::{ProcessInfo, Snapshot};
use crate::units;
use virtlab_display::Table;

/// Sums of one group of processes in a snapshot.
struct Sums {
    rss: u64,
    pss: Option<u64>,
    kernel: Option<u64>,
}

fn sums(processes: &[&ProcessInfo], kernel_stack: Option<u64>) -> Sums {
    let all = |read: fn(&ProcessInfo) -> Option<u64>| -> Option<u64> {
        processes.iter().map(|p| read(p)).sum()
    };
    let stacks = kernel_stack.map(|each| {
        each * processes
            .iter()
            .map(|p| p.threads.len().max(1) as u64)
            .sum::<u64>()
    });
    Sums {
        rss: processes.iter().map(|p| p.rss_bytes).sum(),
        pss: all(|p| p.pss_bytes),
        kernel: all(|p| p.page_table_bytes).zip(stacks).map(|(t, s)| t + s),
    }
}

fn size(bytes: Option<u64>) -> String {
    bytes.map_or("not readable here".into(), units::bytes)
}

/// One run's memory read every way this lab reads it: the snapshot's root (the process that
/// ran it) and the rest of its tree (its workers), then heap and cgroup figures read now.
pub fn memory_readings(tree: &Snapshot) -> Table {
    let root: Vec<&ProcessInfo> = tree.processes.iter().filter(|p| p.depth == 0).collect();
    let below: Vec<&ProcessInfo> = tree.processes.iter().filter(|p| p.depth > 0).collect();
    let (top, rest) = (
        sums(&root, tree.kernel_stack_each),
        sums(&below, tree.kernel_stack_each),
    );
    let mut t = Table::new(
        format!(
            "One run's memory, read every way this lab reads it ({} processes below pid {}; the first three rows from the run's snapshot, the last two read now)",
            below.len(),
            tree.root
        ),
        [
            "reading",
            "the process that ran it",
            "the processes below it",
            "what it counts",
            "why it differs from PSS",
        ],
    );
    let shared = rest.pss.map(|pss| rest.rss.saturating_sub(pss));
    t.row([
        "PSS (sum)".to_string(),
        size(top.pss),
        size(rest.pss),
        "resident pages, each shared page split between the processes that map it".into(),
        "the cost ladder's user-space figure: its sum over a tree is what the tree holds in RAM"
            .into(),
    ]);
    t.row([
        "RSS (sum)".to_string(),
        units::bytes(top.rss),
        units::bytes(rest.rss),
        "resident pages, each shared page counted in full by every process that maps it".into(),
        format!(
            "counts the pages processes share (the program's code, the C library) once per process: the processes below over-count by {} here; the process explorer shows it",
            size(shared)
        ),
    ]);
    t.row([
        "kernel: page tables + kernel stacks".to_string(),
        size(top.kernel),
        size(rest.kernel),
        format!(
            "VmPTE, and one kernel stack ({}) per thread",
            size(tree.kernel_stack_each)
        ),
        "not in a process's pages, so neither RSS nor PSS holds it; the cost ladder's kernel figure"
            .into(),
    ]);
    t.row([
        "heap in use (glibc, read now)".to_string(),
        heap_text(),
        "not readable from outside a process".into(),
        "bytes malloc has handed out and not freed, in this process".into(),
        "only live allocations: no code, no stacks, no memory kept after a free; chapter 3 counts tasks this way".into(),
    ]);
    let group = memory::cgroup_memory();
    t.row([
        "cgroup charge (read now)".to_string(),
        group.as_ref().map_or("not readable here".into(), |g| {
            format!(
                "{} now, {} at most (the whole group)",
                units::bytes(g.current),
                size(g.peak)
            )
        }),
        "included on the left".into(),
        "every page charged to this process's memory cgroup: its processes' pages (each once, to the group that first touched it), the files they read (page cache) and kernel memory".into(),
        "wider: everything else in the group and its file cache count too, and the peak is the most ever; chapter 7 reads a container's own group this way".into(),
    ]);
    t
}

fn heap_text() -> String {
    let heap = memory::heap_in_use();
    if heap.is_finite() {
        units::bytes(heap as u64)
    } else {
        "not readable here".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, depth: usize, rss: u64, pss: u64, threads: usize) -> ProcessInfo {
        ProcessInfo {
            pid,
            parent: None,
            depth,
            name: "virtlab".into(),
            state: "Sleeping".into(),
            threads: (0..threads)
                .map(|i| crate::observer::ThreadInfo {
                    tid: pid as u64 + i as u64,
                    name: String::new(),
                })
                .collect(),
            rss_bytes: rss,
            pss_bytes: Some(pss),
            page_table_bytes: Some(8192),
            cpu_time_ms: 0,
        }
    }

    #[test]
    fn each_reading_is_summed_over_its_processes_and_explained() {
        let tree = Snapshot {
            root: 10,
            processes: vec![
                process(10, 0, 50 << 20, 40 << 20, 4),
                process(11, 1, 3 << 20, 1 << 20, 1),
                process(12, 1, 3 << 20, 1 << 20, 1),
            ],
            kernel_stack_each: Some(16384),
        };
        let table = memory_readings(&tree);
        let rows = table.rows();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0][..3], ["PSS (sum)", "40.0 MiB", "2.0 MiB"]);
        assert_eq!(rows[1][..3], ["RSS (sum)", "50.0 MiB", "6.0 MiB"]);
        assert!(
            rows[1][4].contains("over-count by 4.0 MiB"),
            "{:?}",
            rows[1]
        );
        // 4 stacks + one page-table reading at the top; 2 of each below.
        assert_eq!(rows[2][1..3], ["72.0 KiB", "48.0 KiB"]);
        assert!(table.to_string().contains("chapter 7"));
    }
}
