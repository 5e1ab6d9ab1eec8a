//! The cluster's `slurm.conf`: one file that slurmctld, every slurmd and the clients (`srun`,
//! `sinfo`, `sbatch`, `scontrol`, found through `SLURM_CONF`) all read. Every path it names is
//! in the cluster's run folder, so nothing of Slurm's lands in /etc, /var or /run; `%n` gives
//! each slurmd its own spool, log and pid file.

use crate::cluster::ClusterState;
use std::path::Path;

/// The hostname of the controller's namespace (`SlurmctldHost` must match it).
pub const HEAD: &str = "head";
/// The partition every node is in.
pub const PARTITION: &str = "nodes";

/// slurmctld's port for the cluster on subnet `octet`: slurmctld listens on every host address,
/// so two clusters' controllers need two ports (each slurmd has its node's network to itself).
pub fn controller_port(octet: u8) -> u16 {
    30_000 + u16::from(octet)
}

/// The subnet octet of a cluster's state ("10.213.7.0/24" → 7).
pub fn octet(state: &ClusterState) -> u8 {
    state
        .subnet
        .split('.')
        .nth(2)
        .and_then(|o| o.parse().ok())
        .unwrap_or(0)
}

/// The configuration of `state`'s cluster, with Slurm's files under `dir` and the munge
/// socket at `munge_socket`.
pub fn slurm_conf(state: &ClusterState, dir: &Path, munge_socket: &Path) -> String {
    let d = dir.display();
    let octet = octet(state);
    let mut conf = format!(
        "# Written by virtlab for cluster {subnet}; removed with it.
ClusterName=virtlab{octet}
SlurmctldHost={HEAD}({host})
SlurmctldPort={port}
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=socket={socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/%n/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/%n/slurmd.log
# A node's processes are found in its own /proc; no cgroup plugins: the node's cgroup is ours.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Each node sees the machine's CPUs; its size is the instance type's, as configured here.
SlurmdParameters=config_overrides
DebugFlags=NO_CONF_HASH
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SchedulerType=sched/backfill
# No slurmdbd here: job records are read back from slurmctld (scontrol show job), which
# keeps a finished job for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
KillWait=1
",
        subnet = state.subnet,
        host = state.host_address,
        port = controller_port(octet),
        socket = munge_socket.display(),
    );
    for node in &state.nodes {
        conf.push_str(&format!(
            "NodeName={} NodeAddr={} CPUs={} RealMemory={} State=UNKNOWN\n",
            node.name,
            node.address,
            node.instance_type.slots(),
            node.memory_bytes >> 20
        ));
    }
    conf.push_str(&format!(
        "PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
    ));
    conf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Node;
    use crate::spec::InstanceType;

    fn state() -> ClusterState {
        let node = |n: u8, kind: InstanceType| Node {
            name: format!("node-{n}"),
            address: format!("10.213.7.{n}"),
            instance_type: kind,
            cpus: kind.cpus(),
            memory_bytes: kind.memory_bytes(),
            holder_pid: 100 + i32::from(n),
            cgroup: Vec::new(),
        };
        ClusterState {
            name: None,
            owner: 1,
            subnet: "10.213.7.0/24".into(),
            host_address: "10.213.7.254".into(),
            dir: "/run/virtlab-cluster/1-7".into(),
            switch_pid: 99,
            nodes: vec![node(1, InstanceType::Small), node(2, InstanceType::Large)],
            up_ms: 0.0,
        }
    }

    #[test]
    fn the_config_names_every_node_and_keeps_files_in_the_run_folder() {
        let dir = Path::new("/run/virtlab-cluster/1-7/slurm");
        let conf = slurm_conf(&state(), dir, &dir.join("munge.socket"));
        assert!(conf.contains("SlurmctldHost=head(10.213.7.254)"), "{conf}");
        assert!(conf.contains("SlurmctldPort=30007"), "{conf}");
        assert!(conf.contains("NodeName=node-1 NodeAddr=10.213.7.1 CPUs=1 RealMemory=256"));
        assert!(conf.contains("NodeName=node-2 NodeAddr=10.213.7.2 CPUs=2 RealMemory=1024"));
        assert!(conf.contains("AuthInfo=socket=/run/virtlab-cluster/1-7/slurm/munge.socket"));
        for line in conf.lines().filter(|l| l.contains('=') && l.contains('/')) {
            let (key, value) = line.split_once('=').unwrap();
            if key.ends_with("Dir")
                || key.ends_with("File")
                || key.ends_with("Location")
                || key == "AuthInfo"
            {
                assert!(value.contains("/run/virtlab-cluster/1-7/slurm"), "{line}");
            }
        }
        for needed in [
            "DebugFlags=NO_CONF_HASH",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
        ] {
            assert!(conf.contains(needed), "{needed}");
        }
    }
}
