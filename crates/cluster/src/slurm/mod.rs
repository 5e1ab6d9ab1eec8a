//! Slurm on a cluster's namespace nodes: [`Slurm::start`] generates a munge key for the
//! cluster and starts, all with their files in the cluster's run folder (`slurm/`):
//! - a *head* (a holder with its own pid, mount and UTS namespaces, hostname `head`, on the
//!   host's network, so the nodes reach it at the host's address on the subnet), in which
//!   munged and slurmctld run: when the head's pid 1 dies, so do they;
//! - one slurmd per node, entered through the cluster's agent (the node's cgroup, then its
//!   network, UTS, mount and pid namespaces: its own /proc and /tmp, so PMIx's folders do not
//!   collide, and its processes die with the node).
//!
//! Dropping the [`Slurm`] kills every daemon and job step; should this process die first, the
//! head's holder (on a life line of its own) and the nodes' holders take them down, and the
//! next `up`'s sweep kills whatever the run folder still records.

pub mod config;
pub mod daemon;
pub mod records;

use crate::cluster::Cluster;
use crate::holder::{Holder, HolderPlan, LifeLine};
use crate::mpi::{MpiRun, Program, RankLine, ranks_program};
use crate::rundir;
use crate::{Error, ErrorKind, Result};
use daemon::{Daemon, tail};
pub use records::{Accounting, JobRecord, NodeInfo};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use virtlab_core::stats::median;

/// How long each daemon has to become ready.
const READY_PATIENCE: Duration = Duration::from_secs(30);
/// How long a client command (sinfo, scontrol, sbatch) may take.
const CLIENT_PATIENCE: Duration = Duration::from_secs(30);

/// The environment variable naming a step of [`Slurm::start`] to fail at, so tests can see an
/// error half-way cleaned up: `after-munge`, `after-controller` or `after-nodes`.
pub const BREAK_AT: &str = "VIRTLAB_SLURM_BREAK_AT";

/// The programs Slurm on the cluster needs, with the package that brings each.
const PROGRAMS: [(&str, &str); 8] = [
    ("slurmctld", "slurmctld"),
    ("slurmd", "slurmd"),
    ("srun", "slurm-client"),
    ("sinfo", "slurm-client"),
    ("sbatch", "slurm-client"),
    ("scontrol", "slurm-client"),
    ("munged", "munge"),
    ("nsenter", "util-linux"),
];

/// Where a program is: on PATH, or in an sbin folder (daemons live there and a non-login
/// PATH may lack it).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Refuses to start without root or a needed program, naming what is missing and its fix.
/// `found` says whether a program exists (injected so every branch is tested).
pub fn check_prerequisites(euid: u32, found: impl Fn(&str) -> bool) -> Result<()> {
    if euid != 0 {
        return Err(Error::unavailable(
            "Slurm on the cluster needs root (its daemons run as root in the nodes' namespaces)",
            "run it as root (sudo), or in a container or VM where you are root",
        ));
    }
    let missing: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(program, _)| !found(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages = missing.clone();
    packages.dedup();
    let what = if missing.contains(&"munge") && missing.len() == 1 {
        "munge (Slurm's authentication daemon, munged) is not installed".to_string()
    } else {
        format!("Slurm is not installed (missing: {})", packages.join(", "))
    };
    Err(Error::unavailable(
        what,
        format!(
            "apt-get install {} (scripts/setup installs them)",
            packages.join(" ")
        ),
    ))
}

fn break_at(step: &str) -> Result<()> {
    if std::env::var(BREAK_AT).is_ok_and(|v| v == step) {
        return Err(Error::new(
            format!("Slurm's start was asked to fail {step} ({BREAK_AT})"),
            format!("unset {BREAK_AT}"),
        ));
    }
    Ok(())
}

/// How long each part of the start took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Startup {
    /// Key written, head made, munged answering on its socket.
    pub munge_ms: f64,
    /// slurmctld started until it answers (`sinfo`).
    pub controller_ms: f64,
    /// Every slurmd started until every node is idle in `sinfo`.
    pub nodes_ms: f64,
    /// All of it.
    pub total_ms: f64,
}

/// A finished `srun`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrunRun {
    /// The command, as a shell would show it.
    pub command: String,
    /// What the tasks printed.
    pub stdout: String,
    /// What srun and the tasks printed on standard error.
    pub stderr: String,
    /// srun's exit code (None: killed by a signal).
    pub exit_code: Option<i32>,
    /// From asking to srun's exit, in milliseconds.
    pub wall_ms: f64,
}

/// What `srun -N1 -n1 true` costs: the scheduler's round trip, a job step, nothing to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrunOverhead {
    /// Every run, in milliseconds.
    pub runs_ms: Vec<f64>,
    /// Their median.
    pub median_ms: f64,
}

/// A batch job to submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Its name (`-J`).
    pub name: String,
    /// How many nodes it needs.
    pub nodes: usize,
    /// Whether it needs its nodes whole.
    pub exclusive: bool,
    /// The shell command it runs (`--wrap`).
    pub command: String,
}

/// The queue shown: two jobs that each need every node; the second waits for the first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDemo {
    /// The first job's record once finished.
    pub first: JobRecord,
    /// The second job's record while the first ran (PENDING, and why).
    pub second_waiting: JobRecord,
    /// The second job's record once finished.
    pub second: JobRecord,
    /// How long the second waited: its StartTime − SubmitTime in slurmctld's record (whole
    /// seconds).
    pub wait_s: i64,
    /// Both jobs' accounts.
    pub accounting: Vec<Accounting>,
}

/// Slurm running on a cluster; dropping it stops every daemon.
#[derive(Debug)]
pub struct Slurm {
    dir: PathBuf,
    conf: PathBuf,
    subnet: String,
    /// Node names with their CPUs as configured.
    nodes: Vec<(String, u32)>,
    /// slurmds first, so no node reports to a controller already gone.
    daemons: Vec<Daemon>,
    head: Option<Holder>,
    life: LifeLine,
    startup: Startup,
}

impl Slurm {
    /// Starts munged, slurmctld and one slurmd per node; returns once every node is idle.
    pub fn start(cluster: &Cluster) -> Result<Slurm> {
        let started = Instant::now();
        // SAFETY: geteuid has no preconditions.
        check_prerequisites(unsafe { libc::geteuid() }, |p| find_program(p).is_some())?;
        let dir = cluster.dir().join("slurm");
        if dir.exists() {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!(
                    "Slurm already runs on the cluster of {}",
                    cluster.dir().display()
                ),
                "use the Slurm already started, or drop it before starting another",
            ));
        }
        let mut slurm = Slurm {
            conf: dir.join("slurm.conf"),
            dir,
            subnet: cluster.state().subnet.clone(),
            nodes: cluster
                .nodes()
                .iter()
                .map(|n| (n.name.clone(), n.instance_type.slots() as u32))
                .collect(),
            daemons: Vec::new(),
            head: None,
            life: LifeLine::new()?,
            startup: Startup::default(),
        };
        // From here on an error drops `slurm`, which stops what was started and removes `dir`.
        slurm.make_folders(cluster)?;
        let head = slurm.start_head(cluster.dir())?;
        let socket = slurm.start_munge(head, cluster.dir())?;
        slurm.startup.munge_ms = ms(started);
        break_at("after-munge")?;
        let conf = config::slurm_conf(cluster.state(), &slurm.dir, &socket);
        std::fs::write(&slurm.conf, conf)
            .map_err(|e| Error::io(format!("writing {}", slurm.conf.display()), e))?;
        let step = Instant::now();
        slurm.start_controller(head, cluster.dir())?;
        slurm.startup.controller_ms = ms(step);
        break_at("after-controller")?;
        let step = Instant::now();
        slurm.start_nodes(cluster)?;
        slurm.startup.nodes_ms = ms(step);
        break_at("after-nodes")?;
        slurm.startup.total_ms = ms(started);
        Ok(slurm)
    }

    fn make_folders(&self, cluster: &Cluster) -> Result<()> {
        let mut folders = vec![self.dir.clone(), self.dir.join("state"), self.work()];
        folders.extend(cluster.nodes().iter().map(|n| self.dir.join(&n.name)));
        for f in folders {
            std::fs::create_dir_all(&f)
                .map_err(|e| Error::io(format!("creating {}", f.display()), e))?;
        }
        // munged refuses a socket folder others may write to.
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(format!("setting the mode of {}", self.dir.display()), e))
    }

    /// Makes the head's namespaces; returns the host pid holding them.
    fn start_head(&mut self, run_dir: &Path) -> Result<i32> {
        let head = Holder::start(
            &self.life,
            &HolderPlan {
                name: config::HEAD.to_string(),
                namespaces: libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS,
                hostname: Some(config::HEAD.to_string()),
                own_proc_and_tmp: true,
                remove_dirs: Vec::new(),
            },
        )?;
        let inner = head.inner;
        let outer = head.outer;
        self.head = Some(head);
        rundir::record_process(run_dir, outer)?;
        rundir::record_process(run_dir, inner)?;
        Ok(inner)
    }

    /// Writes the cluster's munge key, starts munged in the head; returns its socket.
    fn start_munge(&mut self, head: i32, run_dir: &Path) -> Result<PathBuf> {
        let key = self.dir.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| Error::io("reading /dev/urandom for the munge key", e))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&key)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
            .map_err(|e| Error::io(format!("writing {}", key.display()), e))?;
        let socket = self.dir.join("munge.socket");
        let d = &self.dir;
        let mut command = enter_head(head);
        command
            .arg(find_program("munged").unwrap_or_else(|| "munged".into()))
            .args(["--foreground", "--force"])
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", d.join("munged.pid").display()))
            .arg(format!("--seed-file={}", d.join("munged.seed").display()))
            // Unused in the foreground, but never /var/log should another version write it.
            .arg(format!("--log-file={}", d.join("munged.log").display()));
        let munged = Daemon::spawn("munged", command, run_dir, &d.join("munged.out"))?;
        self.daemons.push(munged);
        // munged in the foreground logs to its standard error, munged.out.
        self.wait_ready("munged", &d.join("munged.out"), || socket.exists())?;
        Ok(socket)
    }

    fn start_controller(&mut self, head: i32, run_dir: &Path) -> Result<()> {
        let mut command = enter_head(head);
        command
            .arg(find_program("slurmctld").unwrap_or_else(|| "slurmctld".into()))
            .args(["-D", "-c", "-f"])
            .arg(&self.conf)
            .env("SLURM_CONF", &self.conf);
        let out = self.dir.join("slurmctld.out");
        let daemon = Daemon::spawn("slurmctld", command, run_dir, &out)?;
        self.daemons.push(daemon);
        let log = self.dir.join("slurmctld.log");
        self.wait_ready("slurmctld", &log, || {
            self.client("scontrol")
                .arg("ping")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"))
        })
    }

    fn start_nodes(&mut self, cluster: &Cluster) -> Result<()> {
        let slurmd = find_program("slurmd").unwrap_or_else(|| "slurmd".into());
        for node in cluster.nodes() {
            let mut command = Command::new(cluster.agent());
            command.arg(&node.name).arg(format!(
                "exec {} -D -N {} -f {}",
                slurmd.display(),
                node.name,
                self.conf.display()
            ));
            let out = self.dir.join(&node.name).join("slurmd.out");
            let name = format!("slurmd on {}", node.name);
            let mut daemon = Daemon::spawn(&name, command, cluster.dir(), &out)?;
            let ns = std::fs::read_link(format!("/proc/{}/ns/pid", node.holder_pid))
                .map_err(|e| Error::io(format!("reading {}'s pid namespace", node.name), e))?;
            daemon.owns_steps_in(ns.display().to_string());
            // Before the check below, so a slurmd that dies at once is still stopped and reaped.
            self.daemons.insert(0, daemon);
        }
        let log = self.dir.join("slurmctld.log");
        self.wait_ready("every slurmd", &log, || {
            self.sinfo().is_ok_and(|rows| {
                rows.len() == self.nodes.len() && rows.iter().all(|r| r.state == "idle")
            })
        })
    }

    /// Polls `ready` until it holds, failing early if a daemon died, or after [`READY_PATIENCE`].
    fn wait_ready(&self, what: &str, log: &Path, ready: impl Fn() -> bool) -> Result<()> {
        let deadline = Instant::now() + READY_PATIENCE;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(dead) = self.daemons.iter().find(|d| !d.alive()) {
                return Err(Error::new(
                    format!("{} ended while starting: {}", dead.name, tail(&dead.log)),
                    format!("see its log in {}", self.dir.display()),
                ));
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    format!(
                        "{what} was not ready after {READY_PATIENCE:?}: {}",
                        tail(log)
                    ),
                    format!("see the logs in {}", self.dir.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How long the start took, part by part.
    pub fn startup(&self) -> &Startup {
        &self.startup
    }

    /// Slurm's folder in the cluster's run folder (config, key, state, logs, sockets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration file (`SLURM_CONF` for clients).
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The daemons, with their host pids.
    pub fn daemons(&self) -> impl Iterator<Item = (&str, i32)> {
        self.daemons.iter().map(|d| (d.name.as_str(), d.pid))
    }

    /// The working folder of jobs (every node sees it: it is in the host's file tree).
    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// A Slurm client command for this cluster.
    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).current_dir(self.work());
        c
    }

    /// Runs a client to the end within `patience`; an error if it fails.
    fn ask(&self, mut command: Command, patience: Duration) -> Result<Output> {
        let shown = format!("{command:?}");
        let out = run_within(&mut command, patience)?;
        if !out.status.success() {
            return Err(Error::new(
                format!(
                    "{shown} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                format!("see the logs in {}", self.dir.display()),
            ));
        }
        Ok(out)
    }

    /// The node table from `sinfo`.
    pub fn sinfo(&self) -> Result<Vec<NodeInfo>> {
        let mut c = self.client("sinfo");
        c.args(["-N", "-h", "-o", records::SINFO_FORMAT]);
        let out = self.ask(c, CLIENT_PATIENCE)?;
        records::parse_sinfo(&String::from_utf8_lossy(&out.stdout))
    }

    /// The nodes' CPUs, the first `nodes` of them, as configured.
    fn cpus_of(&self, nodes: usize) -> Result<u32> {
        if nodes == 0 || nodes > self.nodes.len() {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("this cluster has {} nodes, not {nodes}", self.nodes.len()),
                format!("ask for 1 to {} nodes", self.nodes.len()),
            ));
        }
        Ok(self.nodes[..nodes].iter().map(|(_, c)| c).sum())
    }

    /// The srun command for `ranks` tasks on `nodes` nodes; more tasks than CPUs overcommit.
    fn srun_command(&self, nodes: usize, ranks: usize, mpi: Option<&str>) -> Result<Command> {
        let cpus = self.cpus_of(nodes)?;
        if ranks < nodes {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("{ranks} tasks cannot cover {nodes} nodes"),
                format!("ask for at least {nodes} tasks, one per node"),
            ));
        }
        let mut c = self.client("srun");
        c.args(["-N", &nodes.to_string(), "-n", &ranks.to_string()])
            .arg(format!("--chdir={}", self.work().display()))
            .arg("--kill-on-bad-exit=1")
            // Open MPI's traffic stays on the cluster's subnet.
            .env("OMPI_MCA_btl_tcp_if_include", &self.subnet)
            .env("OMPI_MCA_oob_tcp_if_include", &self.subnet);
        if ranks as u32 > cpus {
            // More ranks than CPUs: Open MPI must yield while it waits (NOTES: the yield trap).
            c.arg("--overcommit")
                .env("OMPI_MCA_mpi_yield_when_idle", "1");
        }
        if let Some(plugin) = mpi {
            c.arg(format!("--mpi={plugin}"));
        }
        Ok(c)
    }

    /// Runs `command` (a program and its arguments) as `ranks` tasks over the first `nodes`
    /// nodes, within `timeout`.
    pub fn srun(&self, nodes: usize, ranks: usize, command: &[&str]) -> Result<SrunRun> {
        if command.is_empty() {
            return Err(Error::of(
                ErrorKind::Invalid,
                "srun needs a command",
                "give a program and its arguments, e.g. [\"hostname\"]",
            ));
        }
        let mut c = self.srun_command(nodes, ranks, None)?;
        c.args(command);
        self.run_srun(c, Duration::from_secs(120))
    }

    fn run_srun(&self, mut c: Command, timeout: Duration) -> Result<SrunRun> {
        let shown = format!("{c:?}").replace('"', "");
        let asked = Instant::now();
        let out = run_within(&mut c, timeout)?;
        Ok(SrunRun {
            command: shown,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            exit_code: out.status.code(),
            wall_ms: ms(asked),
        })
    }

    /// Times `srun -N1 -n1 true` `rounds` times (one untimed first).
    pub fn srun_overhead(&self, rounds: usize) -> Result<SrunOverhead> {
        if rounds == 0 {
            return Err(Error::of(
                ErrorKind::Invalid,
                "0 rounds measure nothing",
                "ask for 1 round or more",
            ));
        }
        let mut runs_ms = Vec::with_capacity(rounds);
        for i in 0..=rounds {
            let run = self.srun(1, 1, &["true"])?;
            if run.exit_code != Some(0) {
                return Err(Error::new(
                    format!("srun -n1 true failed: {}", run.stderr.trim()),
                    format!("see the logs in {}", self.dir.display()),
                ));
            }
            if i > 0 {
                runs_ms.push(run.wall_ms);
            }
        }
        Ok(SrunOverhead {
            // The runs are kept in the order they ran; the median sorts a copy.
            median_ms: median(&mut runs_ms.clone()),
            runs_ms,
        })
    }

    /// The MPI plugins this srun offers (`srun --mpi=list`).
    pub fn mpi_plugins(&self) -> Result<Vec<String>> {
        let mut c = self.client("srun");
        c.arg("--mpi=list");
        let out = self.ask(c, CLIENT_PATIENCE)?;
        // srun prints the list on standard error in some versions, standard output in others.
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        Ok(records::parse_mpi_list(&text))
    }

    /// The plugin ranks are started with: PMIx where srun has it, else PMI-2.
    pub fn mpi_plugin(&self) -> Result<String> {
        let plugins = self.mpi_plugins()?;
        ["pmix", "pmi2"]
            .into_iter()
            .find(|p| plugins.iter().any(|q| q == p))
            .map(String::from)
            .ok_or_else(|| {
                Error::unavailable(
                    format!(
                        "this srun offers no MPI plugin Open MPI can use (it has: {})",
                        plugins.join(", ")
                    ),
                    "install Slurm's PMIx plugin (Debian: slurm-wlm-basic-plugins with libpmix2)",
                )
            })
    }

    /// Runs `virtlab-ranks` as `ranks` ranks over `nodes` nodes under `srun --mpi=<plugin>`:
    /// Slurm starts every rank itself, no mpirun.
    pub fn srun_ranks(&self, nodes: usize, ranks: usize, program: &Program) -> Result<MpiRun> {
        let plugin = self.mpi_plugin()?;
        let mut c = self.srun_command(nodes, ranks, Some(&plugin))?;
        c.arg(ranks_program()?).args(program.args());
        let run = self.run_srun(c, Duration::from_secs(240))?;
        let lines: Vec<RankLine> = run
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Ok(MpiRun {
            command: run.command,
            lines,
            exit_code: run.exit_code,
            stderr: run.stderr,
            first_line_ms: None,
            wall_ms: run.wall_ms,
        })
    }

    /// Submits a batch job; returns its id.
    pub fn submit(&self, batch: &Batch) -> Result<u64> {
        self.cpus_of(batch.nodes)?;
        let mut c = self.client("sbatch");
        c.args([
            "--parsable",
            "-J",
            &batch.name,
            "-N",
            &batch.nodes.to_string(),
        ])
        .arg(format!("--chdir={}", self.work().display()))
        .arg("--output=%x-%j.out");
        if batch.exclusive {
            c.arg("--exclusive");
        }
        c.args(["--wrap", &batch.command]);
        let out = self.ask(c, CLIENT_PATIENCE)?;
        records::parse_job_id(&String::from_utf8_lossy(&out.stdout))
    }

    /// Job `id` as slurmctld records it now.
    pub fn job(&self, id: u64) -> Result<JobRecord> {
        let mut c = self.client("scontrol");
        c.args(["show", "job", "-o", &id.to_string()]);
        let out = self.ask(c, CLIENT_PATIENCE)?;
        records::parse_job(&String::from_utf8_lossy(&out.stdout))
    }

    /// Waits until job `id` has finished; its record then.
    pub fn wait(&self, id: u64, timeout: Duration) -> Result<JobRecord> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id)?;
            if job.finished() {
                return Ok(job);
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    format!("job {id} is still {} after {timeout:?}", job.state),
                    format!("cancel it (scancel {id}) or wait longer"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until job `id` has left PENDING; its record then.
    fn wait_started(&self, id: u64, timeout: Duration) -> Result<JobRecord> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id)?;
            if job.state != "PENDING" || Instant::now() > deadline {
                return Ok(job);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Two jobs that each need every node whole, submitted one after the other; the first runs
    /// `hold_s` seconds, so the second waits about that long. Read back from slurmctld's records.
    pub fn queue_demo(&self, hold_s: u32) -> Result<QueueDemo> {
        let nodes = self.nodes.len();
        let batch = |name: &str| Batch {
            name: name.to_string(),
            nodes,
            exclusive: true,
            command: format!("sleep {hold_s}; hostname"),
        };
        let first_id = self.submit(&batch("first"))?;
        let patience = Duration::from_secs(u64::from(hold_s) * 2 + 60);
        let first_running = self.wait_started(first_id, patience)?;
        if first_running.state != "RUNNING" {
            return Err(Error::new(
                format!(
                    "the first job did not run: {} ({})",
                    first_running.state, first_running.reason
                ),
                format!("see the logs in {}", self.dir.display()),
            ));
        }
        let second_id = self.submit(&batch("second"))?;
        let second_waiting = self.job(second_id)?;
        let first = self.wait(first_id, patience)?;
        let second = self.wait(second_id, patience)?;
        let accounting: Vec<Accounting> = [&first, &second]
            .iter()
            .filter_map(|j| j.accounting())
            .collect();
        let wait_s = second.wait_s().ok_or_else(|| {
            Error::new(
                format!("the second job has no start time ({})", second.state),
                format!("see the logs in {}", self.dir.display()),
            )
        })?;
        Ok(QueueDemo {
            first,
            second_waiting,
            second,
            wait_s,
            accounting,
        })
    }

    /// Stops every daemon and removes Slurm's folder now.
    pub fn stop(mut self) {
        self.remove();
    }

    fn remove(&mut self) {
        for daemon in &mut self.daemons {
            daemon.stop();
        }
        self.daemons.clear();
        self.life.cut();
        if let Some(mut head) = self.head.take() {
            head.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        self.remove();
    }
}

/// nsenter into the head's namespaces (its hostname, its /proc and /tmp, its pid namespace).
fn enter_head(head: i32) -> Command {
    let mut c = Command::new("nsenter");
    c.args(["-t", &head.to_string(), "--uts", "--mount", "--pid", "--"]);
    c
}

/// Runs `command` (its own process group) to the end, killing the group after `patience`.
fn run_within(command: &mut Command, patience: Duration) -> Result<Output> {
    let shown = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::os(format!("starting {shown}"), e))?;
    let group = child.id() as i32;
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(patience).is_err() {
            // SAFETY: kills the process group of the command we started.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            return true;
        }
        false
    });
    let out = child.wait_with_output();
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let out = out.map_err(|e| Error::os(format!("waiting for {shown}"), e))?;
    if timed_out {
        return Err(Error::new(
            format!("{shown} took longer than {patience:?} and was killed"),
            "check the cluster's Slurm logs (slurm/ in its run folder)",
        ));
    }
    Ok(out)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_root_slurm_or_munge_is_named_with_its_fix() {
        assert!(check_prerequisites(0, |_| true).is_ok());
        let e = check_prerequisites(1000, |_| true).unwrap_err();
        assert!(
            e.problem().contains("root") && e.fix().contains("root"),
            "{e}"
        );
        let e = check_prerequisites(0, |p| p != "munged").unwrap_err();
        assert!(e.problem().contains("munge"), "{e}");
        assert_eq!(
            e.fix(),
            "apt-get install munge (scripts/setup installs them)"
        );
        let e = check_prerequisites(0, |p| !p.starts_with('s')).unwrap_err();
        assert!(e.problem().contains("Slurm is not installed"), "{e}");
        assert!(
            e.fix().contains("slurmctld slurmd slurm-client"),
            "one package named once: {e}"
        );
    }
}
