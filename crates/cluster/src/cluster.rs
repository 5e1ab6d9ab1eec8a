//! A cluster of namespace nodes on this machine: [`Cluster::up`] makes it, dropping it (or
//! [`Cluster::down`]) removes everything it made, and so do its holders by themselves should
//! this process die first (see [`crate::holder`]).

use crate::agent;
use crate::cgroup::{self, Cgroup};
use crate::holder::{Holder, HolderPlan, LifeLine};
use crate::net;
use crate::rundir;
use crate::spec::{ClusterSpec, InstanceType, check_privileges};
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;
use virtlab_display::Table;

/// One node, as the table shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Its name and hostname, `node-N`.
    pub name: String,
    /// Its address on the cluster's subnet.
    pub address: String,
    /// Its instance type.
    pub instance_type: InstanceType,
    /// Its CPU limit (CPUs).
    pub cpus: f64,
    /// Its memory limit (bytes).
    pub memory_bytes: u64,
    /// The host pid of the process holding its namespaces (`nsenter -t` this).
    pub holder_pid: i32,
    /// Its cgroup folders.
    pub cgroup: Vec<PathBuf>,
}

/// What a cluster is, written to its run folder as JSON (what `status` reads back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The name it is held under (`virtlab cluster up --name`), if any.
    pub name: Option<String>,
    /// The process whose life it lasts.
    pub owner: u32,
    /// Its subnet, e.g. 10.213.1.0/24.
    pub subnet: String,
    /// The host's address on it.
    pub host_address: String,
    /// Its run folder.
    pub dir: PathBuf,
    /// The host pid of the process holding the switch's network namespace (the bridge).
    pub switch_pid: i32,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// How long `up` took, in milliseconds.
    pub up_ms: f64,
}

/// A live cluster; dropping it removes it.
#[derive(Debug)]
pub struct Cluster {
    state: ClusterState,
    octet: u8,
    life: LifeLine,
    holders: Vec<Holder>,
    cgroups: Vec<Cgroup>,
    removed: bool,
}

/// The environment variable naming a step of `up` to fail at, so tests (and curious readers)
/// can see an error half-way cleaned up: `after-switch`, `after-nodes` or `after-network`.
pub const BREAK_AT: &str = "VIRTLAB_CLUSTER_BREAK_AT";

fn break_at(step: &str) -> Result<()> {
    if std::env::var(BREAK_AT).is_ok_and(|v| v == step) {
        return Err(Error::new(
            format!("up was asked to fail {step} ({BREAK_AT})"),
            format!("unset {BREAK_AT}"),
        ));
    }
    Ok(())
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The folders every node replaces with empty ones of its own (see `holder::HolderPlan`).
const NODE_OWN_FOLDERS: [&str; 2] = ["/tmp", "/dev/shm"];

/// Refuses a program a node cannot see: one under a folder every node mounts afresh.
pub fn visible_on_nodes(program: &Path) -> Result<()> {
    match NODE_OWN_FOLDERS
        .iter()
        .find(|folder| program.starts_with(folder))
    {
        Some(folder) => Err(Error::unavailable(
            format!(
                "{} is under {folder}, which every node replaces with an empty one of its own \
                 (a machine's own scratch space), so no node can run it",
                program.display()
            ),
            format!(
                "build the lab outside {folder} (clone it into your home folder, or set CARGO_TARGET_DIR elsewhere)"
            ),
        )),
        None => Ok(()),
    }
}

/// What making nodes needs of this machine (root, `ip`, `nsenter`), or the first thing
/// missing with its fix.
pub fn prerequisites() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    check_privileges(euid, user_namespaces_allowed())?;
    net::ip_program()?;
    if !on_path("nsenter") {
        return Err(Error::unavailable(
            "nsenter (util-linux) is not installed",
            "apt-get install util-linux",
        ));
    }
    Ok(())
}

impl Cluster {
    /// Makes a cluster that lives as long as this value (and this process).
    pub fn up(spec: ClusterSpec) -> Result<Cluster> {
        Cluster::up_named(spec, None)
    }

    /// As [`Cluster::up`], recorded under `name` (for `status` and `down` by name).
    pub fn up_named(spec: ClusterSpec, name: Option<&str>) -> Result<Cluster> {
        let started = Instant::now();
        spec.check()?;
        prerequisites()?;
        let lock = rundir::lock()?;
        rundir::sweep();
        let taken: Vec<u8> = rundir::folders()
            .iter()
            .filter_map(|d| d.file_name()?.to_str()?.split('-').nth(1)?.parse().ok())
            .collect();
        let octet = net::free_subnet(&taken)?;
        let dir = rundir::root().join(format!("{}-{octet}", std::process::id()));
        std::fs::create_dir(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let mut cluster = Cluster {
            state: ClusterState {
                name: name.map(String::from),
                owner: std::process::id(),
                subnet: net::subnet_text(octet),
                host_address: net::address(octet, net::HOST_OCTET).to_string(),
                dir,
                switch_pid: 0,
                nodes: Vec::new(),
                up_ms: 0.0,
            },
            octet,
            life: LifeLine::new()?,
            holders: Vec::new(),
            cgroups: Vec::new(),
            removed: false,
        };
        drop(lock);
        cluster.build(spec)?;
        cluster.state.up_ms = started.elapsed().as_secs_f64() * 1e3;
        cluster.save()?;
        Ok(cluster)
    }

    /// The steps after the run folder exists; on an error, `Drop` removes what was made.
    fn build(&mut self, spec: ClusterSpec) -> Result<()> {
        let switch = self.hold(&HolderPlan {
            name: "switch".into(),
            namespaces: libc::CLONE_NEWNET,
            hostname: None,
            own_proc_and_tmp: false,
            remove_dirs: Vec::new(),
        })?;
        self.state.switch_pid = switch;
        break_at("after-switch")?;
        let kind = spec.instance_type;
        for n in 1..=spec.nodes {
            let name = format!("node-{n}");
            let group = cgroup::create(
                &format!("c{}-{name}", self.octet),
                kind.cpus(),
                kind.memory_bytes(),
            )?;
            let dirs = group.dirs().to_vec();
            for d in &dirs {
                rundir::append(&self.state.dir, rundir::CGROUPS, &d.display().to_string())?;
            }
            self.cgroups.push(group);
            let holder_pid = self.hold(&HolderPlan {
                name: name.clone(),
                namespaces: libc::CLONE_NEWNET
                    | libc::CLONE_NEWUTS
                    | libc::CLONE_NEWNS
                    | libc::CLONE_NEWPID,
                hostname: Some(name.clone()),
                own_proc_and_tmp: true,
                remove_dirs: dirs.iter().map(|d| d.display().to_string()).collect(),
            })?;
            self.state.nodes.push(Node {
                name,
                address: net::address(self.octet, n as u8).to_string(),
                instance_type: kind,
                cpus: kind.cpus(),
                memory_bytes: kind.memory_bytes(),
                holder_pid,
                cgroup: dirs,
            });
        }
        break_at("after-nodes")?;
        let pids: Vec<i32> = self.state.nodes.iter().map(|n| n.holder_pid).collect();
        net::wire(self.octet, switch, &pids)?;
        break_at("after-network")?;
        let map: Vec<String> = self
            .state
            .nodes
            .iter()
            .map(|n| agent::map_line(&n.address, &n.name, n.holder_pid, &n.cgroup))
            .collect();
        agent::write(&self.state.dir, &map)?;
        Ok(())
    }

    /// Starts a holder on the life line and records its two processes; returns the inner pid.
    fn hold(&mut self, plan: &HolderPlan) -> Result<i32> {
        let holder = Holder::start(&self.life, plan)?;
        let inner = holder.inner;
        let outer = holder.outer;
        self.holders.push(holder);
        rundir::record_process(&self.state.dir, outer)?;
        rundir::record_process(&self.state.dir, inner)?;
        Ok(inner)
    }

    fn save(&self) -> Result<()> {
        let path = self.state.dir.join(rundir::STATE);
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| {
            Error::new(
                format!("cannot write the cluster state: {e}"),
                "report this as a bug",
            )
        })?;
        std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// What the cluster is (nodes, subnet, run folder).
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.state.nodes
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    /// The launcher agent (called like ssh: `agent node-1 hostname`).
    pub fn agent(&self) -> PathBuf {
        self.state.dir.join(agent::AGENT)
    }

    /// Runs `command` (a shell command line) on node `node` (1-based) through the agent.
    pub fn run_on(&self, node: usize, command: &str) -> Result<Output> {
        let target = self.node(node)?;
        Command::new(self.agent())
            .arg(&target.name)
            .arg(command)
            .output()
            .map_err(|e| Error::os("starting the cluster agent", e))
    }

    /// Node `n` (1-based), or an error naming the nodes there are.
    pub fn node(&self, n: usize) -> Result<&Node> {
        self.state.nodes.get(n.wrapping_sub(1)).ok_or_else(|| {
            Error::of(
                ErrorKind::Invalid,
                format!("this cluster has no node {n}"),
                format!("choose a node from 1 to {}", self.state.nodes.len()),
            )
        })
    }

    /// The node table as text: name, address, type, limits, the node's pid 1 (host pid).
    pub fn table(&self) -> String {
        node_table(&self.state)
    }

    /// Its whole CPUs, the slots mpirun places ranks on.
    pub fn slots(&self) -> usize {
        self.state
            .nodes
            .iter()
            .map(|n| n.instance_type.slots())
            .sum()
    }

    /// The nodes' cgroup folders, where the CPU time of every process in a node is counted.
    pub fn cgroup_dirs(&self) -> Vec<std::path::PathBuf> {
        self.cgroups
            .iter()
            .flat_map(|g| g.dirs().to_vec())
            .collect()
    }

    /// Shows the node table as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        nodes(&self.state).evcxr_display();
    }

    /// Removes the cluster now; returns how long that took in milliseconds.
    pub fn down(mut self) -> Result<f64> {
        let started = Instant::now();
        self.remove()?;
        Ok(started.elapsed().as_secs_f64() * 1e3)
    }

    fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        self.life.cut();
        for holder in &mut self.holders {
            holder.wait();
        }
        let mut first_error = None;
        for group in &mut self.cgroups {
            if let Err(e) = group.remove() {
                first_error.get_or_insert(e);
            }
        }
        // A veth left in the host (should the switch's namespace outlive its holder).
        let host = net::host_link(self.octet);
        if Path::new("/sys/class/net").join(&host).exists() {
            let _ = net::ip_batch(None, &[format!("link del {host}")]);
        }
        rundir::remove(&self.state.dir);
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// The nodes of a cluster's state: name, address, type, limits, the pid holding its
/// namespaces; the caption names the subnet and the run folder.
pub fn nodes(state: &ClusterState) -> Table {
    let mut table = Table::new(
        format!(
            "cluster {}on {} (host {}), run folder {}",
            state
                .name
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default(),
            state.subnet,
            state.host_address,
            state.dir.display()
        ),
        [
            "node",
            "address",
            "type",
            "CPUs",
            "memory",
            "pid 1 (host pid)",
        ],
    );
    for n in &state.nodes {
        table.row([
            n.name.clone(),
            n.address.clone(),
            n.instance_type.name().to_string(),
            n.cpus.to_string(),
            format!("{} MiB", n.memory_bytes >> 20),
            n.holder_pid.to_string(),
        ]);
    }
    table
}

/// The node table of a cluster's state, as text.
pub fn node_table(state: &ClusterState) -> String {
    nodes(state).to_string()
}

/// Whether this kernel lets this process make a user namespace (tried in a forked child).
pub fn user_namespaces_allowed() -> bool {
    // SAFETY: the child calls only unshare and _exit, both async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; the child exits at once.
        unsafe { libc::_exit(i32::from(libc::unshare(libc::CLONE_NEWUSER) != 0)) };
    }
    if pid < 0 {
        return false;
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_under_a_nodes_own_folders_is_refused_with_the_fix() {
        let err = visible_on_nodes(Path::new("/tmp/lab/target/release/virtlab-ranks")).unwrap_err();
        assert!(err.problem().contains("under /tmp"), "{err}");
        assert!(err.fix().contains("outside /tmp"), "{err}");
        assert!(visible_on_nodes(Path::new("/dev/shm/virtlab")).is_err());
        assert!(visible_on_nodes(Path::new("/home/me/lab/target/release/virtlab")).is_ok());
        assert!(
            visible_on_nodes(Path::new("/tmpfiles/virtlab")).is_ok(),
            "a component, not a prefix"
        );
    }
}
