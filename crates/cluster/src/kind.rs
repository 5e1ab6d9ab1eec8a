//! MPI ranks as a kind of worker on the lab's one executor ([`Ranks`]). Each unit is one rank
//! of one `mpirun` across a cluster (or the hosts of a hostfile), so the units start together: the executor tells the kind
//! how many there will be ([`Kind::starting`]) and mpirun is launched at the last unit's
//! `start`. The ranks run the same [`Work`] as every kind (its iterations and pause, through
//! `virtlab-ranks hello`); their lines become the essay's lines and timeline events (on the
//! host's monotonic clock), and each rank's [`RankDetail`] says where it ran. A rank failing on
//! purpose ([`Options::fault`](virtlab_core::executor::Options::fault)) is SIGKILLed from the
//! host at that iteration; MPI then ends the whole job, and every other rank says it was stopped
//! because of it.

use crate::cluster::Cluster;
use crate::hostfile::Hosts;
use crate::mpi::{self, MpiRun, Mpirun, Program, RankLine, Running};
use crate::spec::{ClusterSpec, InstanceType};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use virtlab_core::executor::{
    Crash, Detail, Failure, Kind, Reporter, Status, Stop, Unit, UnitLimit,
};
use virtlab_core::timeline::{Event, EventKind, now_ns};

/// The most ranks one run starts: past a cluster's slots they are oversubscribed and yield.
pub const MAX_RANKS: usize = 64;

/// The cluster the ladder's rank rung runs on: two nodes of the large type, so 64 ranks of
/// Open MPI fit their memory limits.
pub const LADDER_CLUSTER: ClusterSpec = ClusterSpec {
    nodes: 2,
    instance_type: InstanceType::Large,
};

/// What one rank reports beyond how it ended: where it ran and what its start cost.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RankDetail {
    /// Its MPI rank (the unit's index), once it printed a line.
    pub rank: Option<u32>,
    /// The node it ran on.
    pub node: Option<String>,
    /// Its pid inside the node's pid namespace.
    pub pid_in_node: Option<u32>,
    /// Its pid on the host, found from the host's /proc at its first line.
    pub host_pid: Option<u32>,
    /// What MPI_Init took in it, in milliseconds.
    pub init_ms: Option<f64>,
    /// Lines it printed.
    pub lines: u32,
}

impl Detail for RankDetail {
    fn columns() -> &'static [&'static str] {
        &[
            "MPI rank",
            "node",
            "pid in node",
            "host pid",
            "MPI_Init",
            "lines",
        ]
    }

    fn cells(&self) -> Vec<String> {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".into());
        vec![
            or_dash(self.rank.map(|r| r.to_string())),
            or_dash(self.node.clone()),
            or_dash(self.pid_in_node.map(|p| p.to_string())),
            or_dash(self.host_pid.map(|p| p.to_string())),
            or_dash(self.init_ms.map(|ms| format!("{ms:.0} ms"))),
            self.lines.to_string(),
        ]
    }
}

/// Where a [`Ranks`] runs: the caller's cluster, one of its own (the ladder's probe), or the
/// hosts of a hostfile.
#[derive(Debug)]
enum Place<'c> {
    Borrowed(&'c Cluster),
    Owned(Cluster),
    Listed(Hosts),
}

impl Place<'_> {
    fn cluster(&self) -> Option<&Cluster> {
        match self {
            Place::Borrowed(c) => Some(c),
            Place::Owned(c) => Some(c),
            Place::Listed(_) => None,
        }
    }

    /// The hosts' names: a cluster's node names, or the hostfile's hosts.
    fn hosts(&self) -> Vec<String> {
        match self {
            Place::Listed(h) => h.hosts.iter().map(|h| h.name.clone()).collect(),
            _ => self.cluster().map_or_else(Vec::new, |c| {
                c.nodes().iter().map(|n| n.name.clone()).collect()
            }),
        }
    }

    /// The slots ranks fill before they share CPUs (None: a hostfile leaves some to Open MPI).
    fn slots(&self) -> Option<usize> {
        match self {
            Place::Listed(h) => h.slots(),
            _ => self.cluster().map(Cluster::slots),
        }
    }

    /// An mpirun of `ranks` ranks here.
    fn mpirun(&self, ranks: usize) -> Mpirun<'_> {
        match self {
            Place::Borrowed(c) => Mpirun::new(c, ranks),
            Place::Owned(c) => Mpirun::new(c, ranks),
            Place::Listed(h) => Mpirun::across(h, ranks),
        }
    }
}

/// A unit waiting for the others, so that all start under one mpirun.
struct Held {
    unit: Unit,
    reporter: Reporter,
    stop: Stop,
}

/// What the job's reader thread gives back once mpirun has ended.
struct Followed {
    details: Vec<RankDetail>,
    essay_lines: Vec<String>,
    account: Option<MpiRun>,
}

/// mpirun running, and the thread reading its ranks' lines.
struct Job {
    mpirun_pid: i32,
    reader: JoinHandle<Followed>,
}

/// MPI ranks across a cluster, as a kind of worker ([`Kind`]).
pub struct Ranks<'c> {
    place: Place<'c>,
    program: PathBuf,
    lines_to_stderr: bool,
    expected: usize,
    held: Vec<Held>,
    job: Option<Job>,
    followed: Option<Followed>,
}

impl<'c> Ranks<'c> {
    /// Ranks on `cluster`; refuses (with the fix) where mpirun or an MPI build of
    /// `virtlab-ranks` is missing.
    pub fn on(cluster: &'c Cluster) -> Result<Ranks<'c>> {
        Ranks::placed(Place::Borrowed(cluster))
    }

    fn placed(place: Place<'c>) -> Result<Ranks<'c>> {
        Ok(Ranks {
            program: mpi::ready()?,
            place,
            lines_to_stderr: false,
            expected: 0,
            held: Vec::new(),
            job: None,
            followed: None,
        })
    }

    /// Also prints each essay line on stderr as it comes (a command whose stdout is JSON).
    pub fn lines_to_stderr(mut self) -> Self {
        self.lines_to_stderr = true;
        self
    }

    /// The essay's lines of the last run, in the order they came.
    pub fn essay_lines(&self) -> Vec<String> {
        self.followed
            .as_ref()
            .map_or_else(Vec::new, |f| f.essay_lines.clone())
    }

    /// mpirun's own account of the last run (its command, exit, stderr, wall time).
    pub fn account(&self) -> Option<MpiRun> {
        self.followed.as_ref().and_then(|f| f.account.clone())
    }

    /// The cluster the ranks run on (None: the hosts of a hostfile).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.place.cluster()
    }

    /// The hosts the ranks run on: the cluster's node names, or the hostfile's hosts.
    pub fn hosts(&self) -> Vec<String> {
        self.place.hosts()
    }
}

impl Ranks<'static> {
    /// Ranks on the hosts `hosts` lists (reached by its agent); refuses (with the fix) where
    /// mpirun or an MPI build of `virtlab-ranks` is missing here. The program must be at the
    /// same path on every host.
    pub fn across(hosts: Hosts) -> Result<Ranks<'static>> {
        Ranks::placed(Place::Listed(hosts))
    }
}

impl Ranks<'static> {
    /// Ranks on a cluster of their own ([`LADDER_CLUSTER`]), removed when they are dropped: the
    /// cost ladder's rank rung. Says which facility is missing where a cluster or MPI cannot run.
    pub fn for_ladder() -> Result<Ranks<'static>> {
        // MPI is checked first: a missing program costs no cluster.
        mpi::ready()?;
        Ranks::placed(Place::Owned(Cluster::up(LADDER_CLUSTER)?))
    }
}

/// `unix` seconds (a rank's clock) on the host's monotonic clock, which the timeline uses.
fn monotonic_ns(unix: f64) -> u64 {
    let age_s = (virtlab_core::units::unix_now_f64() - unix).max(0.0);
    now_ns().saturating_sub((age_s * 1e9) as u64)
}

/// One rank as the reader follows it.
#[derive(Default)]
struct Following {
    detail: RankDetail,
    killed: bool,
}

/// Reads the ranks' lines until mpirun ends, turns them into each unit's events and lines,
/// kills a rank that should fail on purpose, then sends every unit's end.
fn follow(running: Running, units: Vec<Held>, iterations: u32, to_stderr: bool) -> Followed {
    let mut ranks: Vec<Following> = units.iter().map(|_| Following::default()).collect();
    let mut essay_lines = Vec::new();
    let result = running.finish_live(|line| {
        let RankLine::Hello {
            rank,
            iteration,
            node,
            pid,
            pid_namespace,
            init_ms,
            started_unix,
            unix,
            ..
        } = line
        else {
            return;
        };
        let (Some(held), Some(state)) = (units.get(*rank as usize), ranks.get_mut(*rank as usize))
        else {
            return;
        };
        let first = state.detail.lines == 0;
        if first {
            state.detail = RankDetail {
                rank: Some(*rank),
                node: Some(node.clone()),
                pid_in_node: Some(*pid),
                host_pid: mpi::host_pid(pid_namespace, *pid),
                init_ms: Some(*init_ms),
                lines: 0,
            };
        }
        let host = state.detail.host_pid;
        let event = |kind, at: f64| Event {
            lane: held.unit.work.name().to_string(),
            kind,
            t_ns: monotonic_ns(at),
            pid: host.unwrap_or(0),
            tid: host.unwrap_or(0).into(),
        };
        if first {
            held.reporter.event(event(EventKind::Start, *started_unix));
        }
        state.detail.lines += 1;
        held.reporter
            .event(event(EventKind::Iteration(*iteration), *unix));
        let text = mpi::essay_line(*iteration, *rank, node, *pid, host);
        if to_stderr {
            eprintln!("{text}");
        }
        held.reporter.line(text.clone());
        essay_lines.push(text);
        if *iteration + 1 == iterations {
            held.reporter.event(event(EventKind::End, *unix));
        }
        // Its first line is where the host learns its pid, so a fault at iteration 0 strikes
        // there too.
        if let (Some(at), Some(host)) = (held.unit.fault_at, host)
            && !state.killed
            && state.detail.lines >= at.max(1)
        {
            // SAFETY: kill sends SIGKILL to our own rank's process, found in its node's pid
            // namespace at its first line; the job still runs, so the pid is still its.
            unsafe { libc::kill(host as i32, libc::SIGKILL) };
            state.killed = true;
        }
    });
    let ends = ends(&units, &ranks, iterations, &result);
    // The failed rank's end first: the executor then stops the others for its sake.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| !ends[i].is_failure());
    for i in order {
        units[i].reporter.ended(ends[i].clone());
    }
    Followed {
        details: ranks.into_iter().map(|r| r.detail).collect(),
        essay_lines,
        account: result.ok(),
    }
}

/// How each rank ended, from what the host did (a kill on purpose), mpirun's account, and
/// the lines each printed.
fn ends(
    units: &[Held],
    ranks: &[Following],
    iterations: u32,
    result: &Result<MpiRun>,
) -> Vec<Status> {
    let by_mpirun = result.as_ref().ok().and_then(MpiRun::killed_rank);
    let crash = |i: usize| -> Option<Crash> {
        if ranks[i].killed {
            return Some(Crash::Signal {
                number: libc::SIGKILL,
                said: Some(format!(
                    "killed from the host after {} lines, a fault on purpose",
                    ranks[i].detail.lines
                )),
            });
        }
        match by_mpirun {
            Some((rank, number)) if rank as usize == i => {
                Some(Crash::Signal { number, said: None })
            }
            _ => None,
        }
    };
    let crashed = (0..units.len()).find(|&i| crash(i).is_some());
    let interrupted = units.iter().any(|u| u.stop.is_set());
    (0..units.len())
        .map(|i| {
            if let Some(c) = crash(i) {
                return Status::Crashed(c);
            }
            if ranks[i].detail.lines >= iterations {
                return Status::Completed;
            }
            if let Some(dead) = crashed {
                // What MPI does to a job that lost a rank: it ends every other rank.
                return Status::StoppedBecause {
                    unit: units[dead].unit.work.name().to_string(),
                    failure: Failure::Crashed,
                };
            }
            if interrupted {
                // The executor stopped the job for some unit (a deadline, a cancel): ending
                // one rank is ending them all.
                return Status::Stopped;
            }
            Status::Crashed(match result {
                Err(e) => Crash::Unreported(e.to_string()),
                Ok(run) => match run.exit_code {
                    Some(code) => Crash::Exit {
                        code,
                        said: run
                            .stderr
                            .lines()
                            .rfind(|l| !l.trim().is_empty())
                            .map(str::to_string),
                    },
                    None => Crash::Unreported("mpirun was killed by a signal".into()),
                },
            })
        })
        .collect()
}

impl Kind for Ranks<'_> {
    type Detail = RankDetail;

    fn name(&self) -> &'static str {
        "rank"
    }

    fn limit(&self) -> UnitLimit {
        UnitLimit {
            units: "ranks",
            most: MAX_RANKS,
            why: format!(
                "virtlab's cap of {MAX_RANKS} ranks per mpirun; {}, and ranks past them share CPUs",
                self.place.slots().map_or_else(
                    || "the hosts' slots are counted by Open MPI".into(),
                    |n| format!("these hosts have {n} slots")
                )
            ),
        }
    }

    fn starting(&mut self, units: usize) {
        self.expected = units;
        self.held.clear();
        self.followed = None;
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        if !unit.work.burn().is_zero() {
            return Err(Error::invalid(
                "a rank's CPU burn",
                format!("{} ms", unit.work.burn().as_millis()),
                "leave the burn at 0: the ranks' CPU work is the hit count (scaling::sweep)",
            ));
        }
        let work = unit.work.clone();
        self.held.push(Held {
            unit,
            reporter,
            stop,
        });
        if self.held.len() < self.expected {
            return Ok(());
        }
        let ranks = self.held.len();
        let spawned = self
            .place
            .mpirun(ranks)
            .program(&self.program)
            .yield_when_idle(self.place.slots().is_some_and(|slots| ranks > slots))
            // The executor's deadline stops a run; this only bounds a job that hangs.
            .timeout(work.duration() + Duration::from_secs(120))
            .spawn(&Program::Hello {
                iterations: work.iterations(),
                interval_ms: work.interval().as_millis() as u64,
            });
        let held = std::mem::take(&mut self.held);
        let running = match spawned {
            Ok(running) => running,
            Err(e) => {
                // None of the ranks can start without mpirun: the others end refused too.
                for h in &held[..ranks - 1] {
                    h.reporter.ended(Status::Refused(e.clone()));
                }
                return Err(e);
            }
        };
        let mpirun_pid = running.pid() as i32;
        let to_stderr = self.lines_to_stderr;
        let iterations = work.iterations();
        let reader = std::thread::Builder::new()
            .name("mpirun-reader".into())
            .spawn(move || follow(running, held, iterations, to_stderr))
            .map_err(|e| Error::os("starting the thread that reads the ranks' lines", e))?;
        self.job = Some(Job { mpirun_pid, reader });
        Ok(())
    }

    fn interrupt(&mut self, _index: usize) {
        // An MPI job lives or dies as one: stopping one rank is stopping mpirun, which ends
        // every rank on every node.
        if let Some(job) = &self.job
            && !job.reader.is_finished()
        {
            // SAFETY: sends SIGTERM to the mpirun we started, still running (its reader has
            // not seen it end).
            unsafe { libc::kill(job.mpirun_pid, libc::SIGTERM) };
        }
    }

    fn finish(&mut self) -> String {
        let ranks = self.expected;
        let nodes = self.place.hosts().len();
        self.held.clear();
        let Some(job) = self.job.take() else {
            return format!("{ranks} ranks on {nodes} nodes: mpirun never started");
        };
        // On the normal path mpirun has ended by now; on an early exit (an error, a panic) it
        // is asked to end the job, then its whole process group is killed.
        let asked = Instant::now();
        let mut termed = false;
        while !job.reader.is_finished() {
            if !termed {
                // SAFETY: SIGTERM to the mpirun we started.
                unsafe { libc::kill(job.mpirun_pid, libc::SIGTERM) };
                termed = true;
            }
            if asked.elapsed() > Duration::from_secs(5) {
                // SAFETY: SIGKILL to mpirun's own process group (it leads it).
                unsafe { libc::kill(-job.mpirun_pid, libc::SIGKILL) };
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let followed = job.reader.join().unwrap_or(Followed {
            details: Vec::new(),
            essay_lines: Vec::new(),
            account: None,
        });
        self.followed = Some(followed);
        format!(
            "{ranks} ranks under one mpirun (pid {}) on {nodes} nodes",
            job.mpirun_pid
        )
    }

    fn detail(&mut self, index: usize) -> RankDetail {
        self.followed
            .as_ref()
            .and_then(|f| f.details.get(index).cloned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rank_s_columns_and_cells_agree() {
        let detail = RankDetail {
            rank: Some(2),
            node: Some("node-2".into()),
            pid_in_node: Some(7),
            host_pid: Some(4242),
            init_ms: Some(241.4),
            lines: 3,
        };
        assert_eq!(RankDetail::columns().len(), detail.cells().len());
        assert_eq!(detail.cells()[4], "241 ms");
        assert_eq!(RankDetail::default().cells()[0], "–");
    }

    #[test]
    fn a_rank_s_clock_lands_on_the_host_s_monotonic_clock() {
        let now = virtlab_core::units::unix_now_f64();
        let before = now_ns();
        let mapped = monotonic_ns(now - 0.5);
        assert!(mapped + 400_000_000 < before, "{mapped} {before}");
        assert!(mapped + 600_000_000 > before, "{mapped} {before}");
    }

    fn held(index: usize) -> Held {
        Held {
            unit: Unit {
                index,
                work: virtlab_core::work::Work::new(&format!("worker-{}", index + 1), 5, 1)
                    .unwrap(),
                fault_at: None,
                runaway_at: None,
            },
            reporter: Reporter::stdout(),
            stop: Stop::new(),
        }
    }

    fn following(lines: u32, killed: bool) -> Following {
        Following {
            detail: RankDetail {
                lines,
                ..RankDetail::default()
            },
            killed,
        }
    }

    fn account(exit_code: Option<i32>, stderr: &str) -> Result<MpiRun> {
        Ok(MpiRun {
            command: "mpirun".into(),
            lines: vec![],
            exit_code,
            stderr: stderr.into(),
            first_line_ms: None,
            wall_ms: 1.0,
        })
    }

    #[test]
    fn every_rank_gets_its_end_from_the_kill_mpirun_s_account_and_its_lines() {
        let units: Vec<Held> = (0..3).map(held).collect();
        let stopped = Status::StoppedBecause {
            unit: "worker-2".into(),
            failure: Failure::Crashed,
        };
        // Killed on purpose by the host: the others are what MPI did to them.
        let ours = ends(
            &units,
            &[following(5, false), following(2, true), following(3, false)],
            5,
            &account(Some(137), ""),
        );
        assert!(
            matches!(&ours[1], Status::Crashed(Crash::Signal { number: 9, said: Some(s) }) if s.contains("after 2 lines"))
        );
        assert_eq!(ours[0], Status::Completed);
        assert_eq!(ours[2], stopped);
        // Killed by someone else: mpirun's account names it.
        let theirs = ends(
            &units,
            &[
                following(1, false),
                following(1, false),
                following(1, false),
            ],
            5,
            &account(
                Some(137),
                "process rank 1 with PID 7 on node x exited on signal 15 (Terminated).",
            ),
        );
        assert_eq!(
            theirs[1],
            Status::Crashed(Crash::Signal {
                number: 15,
                said: None
            })
        );
        assert_eq!(theirs[0], stopped);
        // A job that failed with nobody killed: mpirun's exit and its last words.
        let failed = ends(
            &units,
            &[
                following(0, false),
                following(0, false),
                following(0, false),
            ],
            5,
            &account(Some(1), "noise\nno agent\n"),
        );
        assert_eq!(
            failed[0],
            Status::Crashed(Crash::Exit {
                code: 1,
                said: Some("no agent".into())
            })
        );
    }
}
