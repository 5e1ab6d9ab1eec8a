//! The "process explorer": a snapshot of a process and everything below it — pid, parent,
//! name, state, threads (ids and names), resident memory and CPU time — shown as a tree.
//!
//! sysinfo lists the processes; thread names come from /proc (Linux), where sysinfo has none.

use crate::memory;
use crate::units;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use virtlab_display::{Html, Table};

/// One OS thread of a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// The kernel's thread id (the TID); a process's main thread has the process's pid.
    pub tid: u64,
    /// The thread's name (Linux `comm`, at most 15 bytes), e.g. `thread-2` or `tokio-runtime-w`;
    /// empty where it cannot be read.
    pub name: String,
}

/// One process in a [`Snapshot`]: who it is, where it sits in the tree, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its process id.
    pub pid: u32,
    /// The pid of the process that started it, if the OS says.
    pub parent: Option<u32>,
    /// Distance from the snapshot's root (0 for the root).
    pub depth: usize,
    /// The program's name, e.g. `virtlab` or `sleep`.
    pub name: String,
    /// Its scheduler state as the OS reports it, e.g. `Runnable` or `Sleeping`.
    pub state: String,
    /// The process's threads; empty where the platform does not list them.
    pub threads: Vec<ThreadInfo>,
    /// Resident set size, in bytes: the process's pages now in RAM, shared ones counted in full.
    pub rss_bytes: u64,
    /// Proportional set size, in bytes: resident pages, each shared page split between its
    /// sharers; `None` where it cannot be read.
    pub pss_bytes: Option<u64>,
    /// The kernel's page tables for this process, in bytes; `None` where they cannot be read.
    pub page_table_bytes: Option<u64>,
    /// CPU time it has used so far, all its threads together, in ms.
    pub cpu_time_ms: u64,
}

/// Processes of one subtree in tree order (each parent before its children).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The pid the tree hangs from.
    pub root: u32,
    /// The root first, then each process before its children (depth-first).
    pub processes: Vec<ProcessInfo>,
    /// The kernel stack each thread has on this machine, in bytes (16 KiB on x86-64 Linux).
    pub kernel_stack_each: Option<u64>,
}

/// Snapshots `root` and all its descendants.
pub fn snapshot(root: u32) -> Result<Snapshot> {
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .with_memory()
            .with_cpu()
            .with_tasks(),
    );
    let procs = sys.processes();
    if !procs.contains_key(&Pid::from_u32(root)) {
        return Err(Error::new(
            format!("there is no process with pid {root}"),
            "pass the pid of a running process, e.g. std::process::id()",
        ));
    }
    let mut out = Vec::new();
    let mut stack = vec![(Pid::from_u32(root), 0)];
    while let Some((pid, depth)) = stack.pop() {
        let Some(p) = procs.get(&pid) else { continue };
        // sysinfo lists a process's threads without its main thread, whose id is the pid.
        let threads = p.tasks().map_or_else(Vec::new, |tids| {
            let mut ids: Vec<u32> = tids
                .iter()
                .map(|t| t.as_u32())
                .chain([pid.as_u32()])
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|tid| ThreadInfo {
                    tid: tid as u64,
                    name: thread_name(pid.as_u32(), tid),
                })
                .collect()
        });
        out.push(ProcessInfo {
            pid: pid.as_u32(),
            parent: p.parent().map(|pp| pp.as_u32()),
            depth,
            name: p.name().to_string_lossy().into_owned(),
            state: p.status().to_string(),
            threads,
            rss_bytes: p.memory(),
            pss_bytes: memory::pss_bytes(pid.as_u32()),
            page_table_bytes: memory::page_table_bytes(pid.as_u32()),
            cpu_time_ms: p.accumulated_cpu_time(),
        });
        // Children are real processes whose parent is this one (thread entries are skipped).
        let mut children: Vec<Pid> = procs
            .values()
            .filter(|c| c.parent() == Some(pid) && c.thread_kind().is_none() && c.pid() != pid)
            .map(|c| c.pid())
            .collect();
        children.sort_unstable_by(|a, b| b.cmp(a));
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    Ok(Snapshot {
        root,
        processes: out,
        kernel_stack_each: memory::kernel_stack_per_thread(),
    })
}

/// The snapshot a run took, or an error saying why there is none.
pub fn taken(snapshot: &Option<Snapshot>) -> Result<Snapshot> {
    snapshot.clone().ok_or_else(|| {
        Error::new(
            "this run took no snapshot of the process",
            "run it with snapshots on (Options { snapshot: true, .. }, the default); if it was on, the process table could not be read here",
        )
    })
}

fn thread_name(pid: u32, tid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Snapshot {
    /// The process with this pid, if it is in the tree.
    pub fn process(&self, pid: u32) -> Option<&ProcessInfo> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    /// The user-space memory the whole tree holds: the sum of its processes' PSS (RSS where
    /// PSS cannot be read), so pages shared between them count once.
    pub fn user_bytes(&self) -> u64 {
        self.processes
            .iter()
            .map(|p| p.pss_bytes.unwrap_or(p.rss_bytes))
            .sum()
    }

    /// What the kernel holds for the whole tree: its page tables, and a kernel stack per thread.
    pub fn kernel_bytes(&self) -> u64 {
        let stacks = self.kernel_stack_each.unwrap_or(0)
            * self
                .processes
                .iter()
                .map(|p| p.threads.len().max(1) as u64)
                .sum::<u64>();
        let tables: u64 = self
            .processes
            .iter()
            .filter_map(|p| p.page_table_bytes)
            .sum();
        stacks + tables
    }

    /// The root's direct children.
    pub fn children(&self) -> Vec<&ProcessInfo> {
        self.processes.iter().filter(|p| p.depth == 1).collect()
    }

    /// One row per process, indented under its parent: pid, state, threads (the first six by id and
    /// name), RSS and CPU time.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("Process tree under pid {}", self.root),
            ["process", "pid", "state", "threads", "RSS", "CPU time"],
        );
        for p in &self.processes {
            let indent = if p.depth == 0 {
                String::new()
            } else {
                format!("{}└─ ", "   ".repeat(p.depth - 1))
            };
            let threads = if p.threads.is_empty() {
                "?".to_string()
            } else {
                let listed: Vec<String> = p
                    .threads
                    .iter()
                    .take(6)
                    .map(|t| format!("{} {}", t.tid, t.name))
                    .collect();
                let more = if p.threads.len() > 6 {
                    format!(", +{} more", p.threads.len() - 6)
                } else {
                    String::new()
                };
                format!("{}: {}{more}", p.threads.len(), listed.join(", "))
            };
            t.row([
                format!("{indent}{}", p.name),
                p.pid.to_string(),
                p.state.clone(),
                threads,
                units::bytes(p.rss_bytes),
                format!("{} ms", p.cpu_time_ms),
            ]);
        }
        t
    }

    /// The tree as HTML, indented like Process Explorer.
    pub fn to_html(&self) -> Html {
        self.table().monospace_first_column().to_html()
    }

    /// Shows the tree as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_of_self_lists_this_process_and_its_threads() {
        // A thread names itself once it starts, so wait until it has.
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let holder = std::thread::Builder::new()
            .name("observer-test".into())
            .spawn(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(500));
            })
            .unwrap();
        started_rx.recv().unwrap();
        let snap = snapshot(std::process::id()).unwrap();
        let me = snap.process(std::process::id()).unwrap();
        assert_eq!(me.depth, 0);
        assert!(me.rss_bytes > 0);
        if cfg!(target_os = "linux") {
            assert!(me.threads.len() >= 2, "{:?}", me.threads);
            assert!(
                me.threads.iter().any(|t| t.name == "observer-test"),
                "{:?}",
                me.threads
            );
        }
        holder.join().unwrap();
    }

    #[test]
    fn children_appear_under_their_parent() {
        let mut child = std::process::Command::new("sleep")
            .arg("2")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let snap = snapshot(std::process::id()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let entry = snap
            .process(child.id())
            .expect("the child should be in the tree");
        assert_eq!(entry.parent, Some(std::process::id()));
        assert_eq!(entry.depth, 1);
        if cfg!(target_os = "linux") {
            assert_eq!(
                entry.threads.len(),
                1,
                "sleep runs on its main thread only: {:?}",
                entry.threads
            );
            assert_eq!(entry.threads[0].tid, child.id() as u64);
        }
        assert!(snap.to_html().0.contains("└─"));
    }

    #[test]
    fn a_run_without_a_snapshot_says_so() {
        let err = taken(&None).unwrap_err();
        assert!(
            err.problem().contains("took no snapshot") && err.fix().contains("snapshot: true"),
            "{err}"
        );
        let snap = snapshot(std::process::id()).unwrap();
        assert_eq!(taken(&Some(snap.clone())).unwrap(), snap);
    }

    #[test]
    fn unknown_pid_is_a_clear_error() {
        let err = snapshot(u32::MAX - 1).unwrap_err();
        assert!(err.problem().contains("no process with pid"), "{err}");
    }
}
