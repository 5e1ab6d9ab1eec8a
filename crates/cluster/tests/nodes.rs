//! Real clusters: nodes up, reachable and limited, then nothing left behind after each way a
//! cluster can end (drop, down, an error half-way through up, SIGKILL of its owner).

mod common;

use common::need_root;
use virtlab_cluster::leftovers::{leftovers, namespaces};
use virtlab_cluster::{Cluster, ClusterSpec, InstanceType};

#[test]
fn three_nodes_have_their_names_addresses_and_limits() {
    if !need_root() {
        return;
    }
    let cluster = Cluster::up(ClusterSpec::default()).unwrap();
    let state = cluster.state().clone();
    let held = namespaces(&state);
    assert_eq!(cluster.nodes().len(), 3);
    println!("{}", cluster.table());
    println!("up: {:.1} ms", cluster.state().up_ms);
    for n in 1..=3 {
        let out = cluster
            .run_on(n, "hostname; echo $$; ip -4 -o addr show eth0")
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lines.next(), Some(format!("node-{n}").as_str()));
        // A process listing names the node's processes, not the process that made them.
        let pid_1 = cluster.nodes()[n - 1].holder_pid;
        let name = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(name(pid_1).trim(), format!("node-{n} pid 1"));
        let holder = virtlab_core::procfs::parent_of(pid_1 as u32).unwrap() as i32;
        assert_eq!(name(holder).trim(), format!("node-{n} holder"));
        // The shell is a process of the node's own pid namespace, whose pid 1 is the holder.
        let pid: u32 = lines.next().unwrap().parse().unwrap();
        assert!(pid > 1 && pid < 100, "pid {pid} inside the node");
        assert!(
            lines
                .next()
                .unwrap()
                .contains(&cluster.nodes()[n - 1].address),
            "{text}"
        );
    }
    // Each node has a /dev/shm of its own, as a machine does (Open MPI names its shared-memory
    // files by host name and job id, which repeat across clusters).
    let out = cluster
        .run_on(1, "touch /dev/shm/virtlab-probe && ls /dev/shm")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "virtlab-probe");
    assert!(!std::path::Path::new("/dev/shm/virtlab-probe").exists());
    let out = cluster.run_on(2, "ls /dev/shm").unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    // Node 1 and the host reach node 3 across the switch: node 3 answers two TCP connections
    // with its hostname (perl is part of every Debian system; the nodes have no ping).
    let node3 = cluster.nodes()[2].address.clone();
    let answer = format!(
        "perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalAddr=>\"{node3}:7000\",Listen=>2,ReuseAddr=>1) or die $!; for (1..2) {{ $c=$s->accept; print $c `hostname`; close $c }}'"
    );
    let mut server = std::process::Command::new(cluster.agent())
        .args(["node-3", &answer])
        .spawn()
        .unwrap();
    let ask = format!(
        "for i in $(seq 50); do perl -MIO::Socket::INET -e '$c=IO::Socket::INET->new(PeerAddr=>\"{node3}:7000\") or exit 1; print <$c>' && exit 0; sleep 0.1; done; exit 1"
    );
    let out = cluster.run_on(1, &ask).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node-3");
    let mut stream = std::net::TcpStream::connect((node3.as_str(), 7000)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
    assert_eq!(text.trim(), "node-3");
    assert!(server.wait().unwrap().success());
    let ms = cluster.down().unwrap();
    println!("down: {ms:.1} ms");
    assert_eq!(leftovers(&state, &held, true), Vec::<String>::new());
}

#[test]
fn a_node_runs_under_its_instance_types_limits() {
    if !need_root() {
        return;
    }
    let spec = ClusterSpec {
        nodes: 1,
        instance_type: InstanceType::Small,
    };
    let cluster = Cluster::up(spec).unwrap();
    let node = &cluster.nodes()[0];
    let limits: Vec<String> = [
        "cpu.max",
        "cpu.cfs_quota_us",
        "memory.max",
        "memory.limit_in_bytes",
    ]
    .iter()
    .flat_map(|f| node.cgroup.iter().map(move |d| d.join(f)))
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim().to_string())
    .collect();
    assert!(
        limits.iter().any(|l| l == "50000" || l == "50000 100000"),
        "{limits:?}"
    );
    assert!(
        limits.iter().any(|l| l == &(256u64 << 20).to_string()),
        "{limits:?}"
    );
    // A process started on the node is in its group.
    let out = cluster.run_on(1, "cat /proc/self/cgroup").unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let leaf = node.cgroup[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(text.contains(&leaf), "{text}");
}
