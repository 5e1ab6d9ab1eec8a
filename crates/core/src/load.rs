//! How busy the machine was while something was measured: the CPU time other programs took and
//! the time the hypervisor gave our vCPUs to someone else (steal).
//!
//! A measurement that only times itself cannot tell "this machine is slow" from "a browser or a
//! build shared the cores with us". A [`Sampler`] started before a measurement and stopped after
//! it reads the machine-wide counters of `/proc/stat` and this process's own CPU time (its
//! threads and the children it has waited for, `/proc/self/stat`) at both ends; the difference
//! is what the rest of the machine did meanwhile. Results carry the [`Load`] beside their
//! numbers, and a result they could not have produced on a quiet machine (no scaling on free
//! cores, a product above the peak) names it as the likely cause.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Other programs' average CPU use from which a result is worth a warning: a quarter of a CPU
/// is far above what an idle Linux machine's own housekeeping takes (a few hundredths).
pub const BUSY_CPUS: f64 = 0.25;
/// Steal, as a share of the machine's CPU time, from which the hypervisor is named as a cause.
pub const BUSY_STEAL_SHARE: f64 = 0.05;

/// What the rest of the machine did during one measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// How long the measurement lasted, in seconds.
    pub seconds: f64,
    /// CPUs the machine has (the `cpuN` lines of `/proc/stat`), ours or not.
    pub machine_cpus: usize,
    /// CPUs that programs other than this one (and its waited-for children) kept busy, on
    /// average: 1.0 is one CPU fully used by someone else for the whole measurement.
    pub others_cpus: f64,
    /// CPUs the hypervisor gave to other guests while our vCPUs wanted to run, on average.
    pub steal_cpus: f64,
}

impl Load {
    /// Whether other programs or the hypervisor took enough to change a measurement that
    /// wanted every CPU.
    pub fn is_busy(&self) -> bool {
        self.others_cpus >= BUSY_CPUS || self.steal_share() >= BUSY_STEAL_SHARE
    }

    /// Steal as a share of the machine's CPU time during the measurement.
    pub fn steal_share(&self) -> f64 {
        self.steal_cpus / self.machine_cpus.max(1) as f64
    }

    /// CPUs left for us: the machine's CPUs minus what others and the hypervisor took.
    pub fn free_cpus(&self) -> f64 {
        (self.machine_cpus as f64 - self.others_cpus - self.steal_cpus).max(0.0)
    }

    /// One line for a table's or chart's note: "other programs used 0.93 of 2 CPUs, steal 0.1%".
    pub fn summary(&self) -> String {
        format!(
            "other programs used {:.2} of {} CPUs on average, steal {:.1}%",
            self.others_cpus,
            self.machine_cpus,
            100.0 * self.steal_share()
        )
    }

    /// The likely cause of a result a quiet machine would not give, and what to do, when this
    /// measurement was busy; `None` on a quiet one.
    pub fn busy_cause(&self) -> Option<String> {
        if !self.is_busy() {
            return None;
        }
        let who = if self.others_cpus >= BUSY_CPUS {
            format!(
                "other programs kept {:.1} of the {} CPUs busy while it ran",
                self.others_cpus, self.machine_cpus
            )
        } else {
            format!(
                "the hypervisor gave {:.0}% of our vCPUs' time to other guests (steal)",
                100.0 * self.steal_share()
            )
        };
        Some(format!(
            "{who}: close what else is running (a browser tab, a build) and re-run this cell"
        ))
    }

    /// The busiest of several loads (the one most likely to have spoiled a result).
    pub fn busiest<'a>(loads: impl IntoIterator<Item = &'a Load>) -> Option<&'a Load> {
        loads.into_iter().max_by(|a, b| {
            (a.others_cpus + a.steal_cpus).total_cmp(&(b.others_cpus + b.steal_cpus))
        })
    }
}

/// The row a "what this run measured" table ends with: whether the machine was quiet while
/// `load` was read, and if not, its cause and `consequence` (what reads wrong because of it).
pub fn quiet_row(load: Option<&Load>, consequence: &str) -> [String; 2] {
    let answer = match load {
        None => "not observable here (/proc/stat cannot be read)".to_string(),
        Some(load) => match load.busy_cause() {
            Some(cause) => format!("no: {cause}; {consequence}"),
            None => format!("yes: {}", load.summary()),
        },
    };
    ["Was the machine quiet?".to_string(), answer]
}

/// Counters read at the start of a measurement; [`Sampler::stop`] turns them into a [`Load`].
/// The counters tick 100 times a second, so a load over less than about half a second is coarse.
#[derive(Debug, Clone)]
pub struct Sampler {
    started: Instant,
    machine: Option<MachineTicks>,
    own_ticks: Option<OwnTicks>,
    /// Cgroups whose processes are ours too, with their CPU time (ns) at the start.
    groups: Vec<(PathBuf, Option<u64>)>,
}

impl Sampler {
    /// Reads the counters now.
    pub fn start() -> Sampler {
        Sampler::start_counting(&[])
    }

    /// Reads the counters now, counting the processes in the cgroups `groups` as ours too:
    /// work we started that is not reaped through our own process (a cluster node's ranks end
    /// as children of the node's first process, not of ours).
    pub fn start_counting(groups: &[PathBuf]) -> Sampler {
        Sampler {
            started: Instant::now(),
            machine: machine_ticks(),
            own_ticks: own_ticks(),
            groups: groups
                .iter()
                .map(|g| (g.clone(), group_cpu_ns(g)))
                .collect(),
        }
    }

    /// What the rest of the machine did since [`Sampler::start`]; `None` where the counters
    /// cannot be read (not Linux, no `/proc`).
    pub fn stop(&self) -> Option<Load> {
        let seconds = self.started.elapsed().as_secs_f64();
        let hz = clock_ticks_per_second();
        let (before, after) = (self.own_ticks?, own_ticks()?);
        let mut own = after.total.saturating_sub(before.total);
        if !self.groups.is_empty() {
            let groups_ns: u64 = self
                .groups
                .iter()
                .filter_map(|(g, at_start)| Some(group_cpu_ns(g)?.saturating_sub((*at_start)?)))
                .sum();
            // Each is a floor of what was ours: the groups' processes may also have been reaped
            // into our own children's time, so the two are not added.
            let with_groups =
                after.own.saturating_sub(before.own) + (groups_ns as f64 * hz / 1e9).round() as u64;
            own = own.max(with_groups);
        }
        Some(load_between(
            self.machine.as_ref()?,
            &machine_ticks()?,
            own,
            seconds,
            hz,
        ))
    }
}

/// The load over `seconds` between two readings of the machine's ticks, `own` of them ours.
fn load_between(
    before: &MachineTicks,
    after: &MachineTicks,
    own: u64,
    seconds: f64,
    hz: f64,
) -> Load {
    let per_second = |ticks: u64| ticks as f64 / hz / seconds.max(1e-9);
    let busy = after.busy.saturating_sub(before.busy);
    Load {
        seconds,
        machine_cpus: after.cpus,
        // The two files are read at slightly different moments, so on a quiet machine our own
        // ticks can exceed the machine's by one: clamp at zero.
        others_cpus: per_second(busy.saturating_sub(own)),
        steal_cpus: per_second(after.steal.saturating_sub(before.steal)),
    }
}

/// Runs `measure` between a [`Sampler`]'s start and stop.
pub fn during<T>(measure: impl FnOnce() -> T) -> (T, Option<Load>) {
    let sampler = Sampler::start();
    let value = measure();
    (value, sampler.stop())
}

/// The machine-wide `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq (guest time is already inside user and nice).
    pub busy: u64,
    /// Ticks stolen by the hypervisor (other guests ran on our CPUs).
    pub steal: u64,
    /// Every column up to steal: all the time the CPUs had, whatever it went to.
    pub total: u64,
    /// The `cpuN` lines: CPUs the machine has.
    pub cpus: usize,
}

pub(crate) fn machine_ticks() -> Option<MachineTicks> {
    parse_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Parses `/proc/stat`'s text; `None` when it has no `cpu` line with a steal column.
pub fn parse_stat(text: &str) -> Option<MachineTicks> {
    let fields: Vec<u64> = text
        .lines()
        .find(|l| l.starts_with("cpu "))?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let &[user, nice, system, idle, iowait, irq, softirq, steal, ..] = fields.as_slice() else {
        return None;
    };
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    let busy = user + nice + system + irq + softirq;
    Some(MachineTicks {
        busy,
        steal,
        total: busy + idle + iowait + steal,
        cpus,
    })
}

/// This process's CPU time in clock ticks: its own threads (utime + stime) and the children it
/// has waited for (cutime + cstime), from `/proc/self/stat`.
/// This process's CPU time in clock ticks: its own, and with its waited-for children's.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OwnTicks {
    own: u64,
    total: u64,
}

fn own_ticks() -> Option<OwnTicks> {
    parse_own(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn parse_own(text: &str) -> Option<OwnTicks> {
    // Fields 14-17 of the whole line (utime stime cutime cstime) are 12-15 after the name.
    Some(OwnTicks {
        own: ticks_after_name(text, 11..13)?,
        total: ticks_after_name(text, 11..15)?,
    })
}

/// CPU-seconds every thread of process `pid` has used, the ended ones included (utime + stime
/// of `/proc/<pid>/stat`, in clock ticks); `None` where it cannot be read.
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ticks_after_name(&text, 11..13)? as f64 / clock_ticks_per_second())
}

/// The sum of the fields `range` of a `/proc/<pid>/stat` line, counted after the command name.
fn ticks_after_name(text: &str, range: std::ops::Range<usize>) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields
        .get(range)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}

/// The CPU time of the processes in cgroup `dir` (v2 `cpu.stat`, or v1 `cpuacct.usage`), ns.
fn group_cpu_ns(dir: &Path) -> Option<u64> {
    if let Ok(stat) = std::fs::read_to_string(dir.join("cpu.stat")) {
        let usec = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(usec) = usec {
            return Some(usec * 1000);
        }
    }
    std::fs::read_to_string(dir.join("cpuacct.usage"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The kernel's tick rate for `/proc` CPU times (`sysconf(_SC_CLK_TCK)`, usually 100).
pub fn clock_ticks_per_second() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 {
            return hz as f64;
        }
    }
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(others_cpus: f64, steal_cpus: f64) -> Load {
        Load {
            seconds: 1.0,
            machine_cpus: 2,
            others_cpus,
            steal_cpus,
        }
    }

    #[test]
    fn proc_stat_is_parsed() {
        let text = "cpu  10 1 5 100 2 3 4 7 0 0\ncpu0 5 0 2 50 1 1 2 3 0 0\ncpu1 5 1 3 50 1 2 2 4 0 0\nintr 1\n";
        assert_eq!(
            parse_stat(text),
            Some(MachineTicks {
                busy: 10 + 1 + 5 + 3 + 4,
                steal: 7,
                total: 10 + 1 + 5 + 100 + 2 + 3 + 4 + 7,
                cpus: 2
            })
        );
        assert_eq!(parse_stat("cpu 1 2 3\n"), None);
        assert_eq!(parse_stat("intr 1\n"), None);
    }

    #[test]
    fn own_time_is_read_after_a_name_with_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 20 11 20 0 1 0 5 0 0";
        assert_eq!(
            parse_own(line),
            Some(OwnTicks {
                own: 7 + 3,
                total: 7 + 3 + 20 + 11
            })
        );
        assert_eq!(parse_own("42 (x) S 1"), None);
        // Our own CPU time is read, and grows as we spin (a tick is 10 ms).
        let before = process_cpu_s(std::process::id()).unwrap();
        let start = Instant::now();
        let mut spun = 0u64;
        while process_cpu_s(std::process::id()).unwrap() <= before && start.elapsed().as_secs() < 10
        {
            spun = (0..100_000u64).fold(spun, |a, i| a.wrapping_add(i * i));
        }
        assert!(
            process_cpu_s(std::process::id()).unwrap() > before,
            "{spun}"
        );
        assert_eq!(process_cpu_s(u32::MAX), None);
    }

    #[test]
    fn a_groups_cpu_time_is_read_in_either_cgroup_version() {
        let dir = std::env::temp_dir().join(format!("virtlab-load-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(group_cpu_ns(&dir), None);
        std::fs::write(dir.join("cpuacct.usage"), "1500\n").unwrap();
        assert_eq!(group_cpu_ns(&dir), Some(1500), "v1");
        std::fs::write(dir.join("cpu.stat"), "usage_usec 2000\nuser_usec 1500\n").unwrap();
        assert_eq!(group_cpu_ns(&dir), Some(2_000_000), "v2 first");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn busy_needs_a_quarter_cpu_or_steal() {
        assert!(!load(0.05, 0.0).is_busy());
        assert!(load(0.9, 0.0).is_busy());
        assert!(load(0.0, 0.2).is_busy());
        assert_eq!(load(0.05, 0.0).busy_cause(), None);
        let cause = load(0.93, 0.0).busy_cause().unwrap();
        assert!(
            cause.contains("0.9 of the 2 CPUs") && cause.contains("re-run"),
            "{cause}"
        );
        assert!(load(0.0, 0.2).busy_cause().unwrap().contains("steal"));
        assert!((load(0.5, 0.5).free_cpus() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_quiet_row_says_yes_no_or_not_observable() {
        assert!(
            quiet_row(Some(&load(0.02, 0.0)), "x")[1].starts_with("yes: other programs used 0.02")
        );
        let busy = quiet_row(Some(&load(1.2, 0.0)), "the times read high");
        assert!(
            busy[1].starts_with("no: other programs kept 1.2")
                && busy[1].ends_with("the times read high")
        );
        assert!(quiet_row(None, "x")[1].contains("not observable"));
    }

    #[test]
    fn the_busiest_load_is_found() {
        let loads = [load(0.1, 0.0), load(0.8, 0.1), load(0.3, 0.0)];
        assert_eq!(Load::busiest(&loads), Some(&loads[1]));
        assert_eq!(Load::busiest(&[]), None);
    }

    #[test]
    fn others_are_the_machine_s_busy_ticks_less_ours() {
        let ticks = |busy, steal| MachineTicks {
            busy,
            steal,
            total: 0,
            cpus: 2,
        };
        // 2 s at 100 ticks/s: the machine was busy 300 ticks, 150 of them ours, 20 stolen.
        let load = load_between(&ticks(1000, 5), &ticks(1300, 25), 150, 2.0, 100.0);
        assert!((load.others_cpus - 0.75).abs() < 1e-9, "{load:?}");
        assert!((load.steal_cpus - 0.1).abs() < 1e-9, "{load:?}");
        assert_eq!(load.machine_cpus, 2);
        // Ours read a tick later than the machine's: never below zero.
        assert_eq!(
            load_between(&ticks(0, 0), &ticks(10, 0), 11, 1.0, 100.0).others_cpus,
            0.0
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn our_own_cpu_time_is_read_live() {
        // A loop on this thread must show up in our own ticks (else it would count as others').
        let (before, started) = (own_ticks().unwrap().own, Instant::now());
        while own_ticks().unwrap().own < before + 20 {
            assert!(
                started.elapsed().as_secs() < 60,
                "20 ticks of CPU never counted as ours"
            );
            std::hint::black_box(crate::hits::monte_carlo_hits(1, 10_000));
        }
        let (_, load) = during(|| std::thread::sleep(std::time::Duration::from_millis(20)));
        let load = load.unwrap();
        assert!(load.machine_cpus >= 1 && load.seconds >= 0.02, "{load:?}");
    }
}
