//! The real container runtimes beside ours: crun and runc start the same `virtlab worker` from
//! an OCI bundle (a `config.json` and a `rootfs` made of read-only bind mounts of the host's
//! system folders, as our containers have), timed from the `run` command to the worker's first
//! line; crun also with its cgroup manager disabled, beside our container without a cgroup.
//! A runtime that is missing or fails gives a row saying why. crun 1.8 refuses a hybrid
//! cgroup layout whose cgroup2 lists a controller; as root it is then run with that mount
//! hidden, one exec more, and its row says so.
//!
//! The rows are sampled one start per round, in the same rounds as our own containers (see
//! `cost::measure`). Each run gets its own state folder (`--root`) and a relative cgroup path
//! named like ours (`virtlab-<pid>-…`), so nothing outlives it and a stale group is swept by
//! the next run.

use super::cost::StartCost;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::observer;
use virtlab_core::stats::median;

/// One row of the comparison: a runtime, and the global flags it is run with.
struct Row {
    label: &'static str,
    /// The label as a name for its bundle's folder and its containers' ids (rows are measured
    /// side by side, so each needs its own).
    name: &'static str,
    runtime: &'static str,
    flags: &'static [&'static str],
}

/// crun twice: as it comes (a cgroup per container, like ours with limits), and with its cgroup
/// manager disabled (`--cgroup-manager=disabled`, crun ≥ 1.0): no cgroup at all, like our
/// container without one — the like-for-like pair. runc has no such switch.
const ROWS: [Row; 3] = [
    Row {
        label: "crun",
        name: "crun",
        runtime: "crun",
        flags: &[],
    },
    Row {
        label: "crun, no cgroup",
        name: "crun-no-cgroup",
        runtime: "crun",
        flags: &["--cgroup-manager=disabled"],
    },
    Row {
        label: "runc",
        name: "runc",
        runtime: "runc",
        flags: &[],
    },
];
/// A bundle's folder in the temporary folder: `virtlab-oci-<our pid>-<row name>`.
const BUNDLE_PREFIX: &str = "virtlab-oci-";
/// How long a runtime may take to show the first line before it counts as failed.
const PATIENCE: Duration = Duration::from_secs(20);

/// Each runtime row ready to be sampled (crun also without a cgroup): its bundle written and
/// a first, untimed run made, which also finds how it must be run here. A row that cannot run
/// keeps why.
pub fn prepare() -> Result<Vec<Runtime>> {
    let program = virtlab_core::release::program()?;
    sweep_stale_bundles();
    Ok(ROWS.iter().map(|row| Runtime::new(row, &program)).collect())
}

/// One runtime row being measured: [`Runtime::sample`] once per round, beside our own
/// containers' rounds (so a machine that slows down for a minute slows both sides alike), then
/// [`Runtime::cost`].
pub struct Runtime {
    row: &'static Row,
    ready: Result<Ready>,
    samples: Vec<f64>,
    memory: Vec<f64>,
}

/// A runtime that ran once: its program, its bundle, and the wrapper it needs here, if any.
struct Ready {
    binary: PathBuf,
    bundle: Bundle,
    /// `virtlab hide-cgroup2` when the runtime refuses this machine's hybrid cgroup layout.
    wrapper: Option<PathBuf>,
    /// How it had to be run, for the row's note.
    how: &'static str,
}

impl Ready {
    fn new(row: &Row, program: &Path) -> Result<Ready> {
        let runtime = row.runtime;
        let binary = find(runtime).ok_or_else(|| {
            Error::new(
                format!("{runtime} is not installed"),
                format!(
                    "install it: apt-get install {runtime} (scripts/setup does it where it can)"
                ),
            )
        })?;
        let bundle = Bundle::write(row, program)?;
        // crun 1.8 refuses a hybrid cgroup layout whose cgroup2 lists a controller (this
        // project's machines list hugetlb there). As root, it is run again where that mount is
        // hidden.
        let (wrapper, how) = match bundle.run(&binary, None, &run_id(row.name, 0)) {
            Err(NotStarted::HybridCgroups(_)) if is_root() => (
                Some(program.to_path_buf()),
                "; run with cgroup2 hidden (it refuses this hybrid v1/v2 layout), one exec more",
            ),
            Err(e) => return Err(e.into()),
            Ok(_) => (None, ""),
        };
        Ok(Ready {
            binary,
            bundle,
            wrapper,
            how,
        })
    }
}

impl Runtime {
    /// The row made ready (see [`prepare`]), or the reason it cannot run, kept for its note.
    fn new(row: &'static Row, program: &Path) -> Runtime {
        Runtime {
            row,
            ready: Ready::new(row, program),
            samples: Vec::new(),
            memory: Vec::new(),
        }
    }

    /// One timed start; a failure ends this row's sampling and becomes its note.
    pub fn sample(&mut self) {
        let Ok(ready) = &self.ready else {
            return;
        };
        let id = run_id(self.row.name, self.samples.len() + 1);
        match ready
            .bundle
            .run(&ready.binary, ready.wrapper.as_deref(), &id)
        {
            Ok((first_ms, memory)) => {
                self.samples.push(first_ms);
                self.memory.extend(memory);
            }
            Err(e) => self.ready = Err(e.into()),
        }
    }

    /// The row: its median start and memory, or why it has none.
    pub fn cost(self) -> StartCost {
        let row = self.row;
        match self.ready {
            Ok(ready) if !self.samples.is_empty() => {
                let (mut ms, mut memory) = (self.samples, self.memory);
                StartCost {
                    kind: row.label.into(),
                    samples_ms: ms.clone(),
                    first_line_ms: Some(median(&mut ms)),
                    memory_bytes: (!memory.is_empty()).then(|| median(&mut memory)),
                    note: format!(
                        "{}{}{}",
                        version(row.runtime),
                        flags_note(row.flags),
                        ready.how
                    ),
                }
            }
            result => StartCost {
                kind: row.label.into(),
                samples_ms: Vec::new(),
                first_line_ms: None,
                memory_bytes: None,
                note: result
                    .err()
                    .map_or("no start was timed".into(), |e| e.to_string()),
            },
        }
    }
}

/// Removes the bundles of runs whose process is gone (killed before its bundles were dropped).
fn sweep_stale_bundles() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if super::owner_is_gone(&entry.file_name().to_string_lossy(), BUNDLE_PREFIX) {
            drop(Bundle {
                dir: entry.path(),
                flags: &[],
            });
        }
    }
}

/// "; run with --cgroup-manager=disabled" for a row with flags.
fn flags_note(flags: &[&str]) -> String {
    if flags.is_empty() {
        String::new()
    } else {
        format!("; run with {}", flags.join(" "))
    }
}

/// A container id of ours, unique to this run: `virtlab-<pid>-<row name>-<i>`.
fn run_id(name: &str, i: usize) -> String {
    format!("virtlab-{}-{name}-{i}", std::process::id())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `command` in a mount namespace of its own where a hybrid layout's cgroup2 mount
/// (`/sys/fs/cgroup/unified`) is covered by an empty tmpfs, so a runtime sees the v1
/// hierarchies only. For `virtlab hide-cgroup2 -- …`: root only, and single-threaded (right
/// after exec), as unshare needs.
pub fn hide_cgroup2_and_exec(command: &[String]) -> Result<std::convert::Infallible> {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = command.split_first() else {
        return Err(Error::new(
            "no command to run",
            "put the command after `--`",
        ));
    };
    // SAFETY: unshare changes only this process, which is about to exec.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(Error::os(
            "making a mount namespace to hide cgroup2 in",
            std::io::Error::last_os_error(),
        ));
    }
    let root = Path::new("/");
    super::init::mount(None, root, None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let unified = Path::new("/sys/fs/cgroup/unified");
    super::init::mount(Some("none"), unified, Some("tmpfs"), 0, None)?;
    let error = Command::new(program).args(args).exec();
    Err(Error::os(format!("starting {program}"), error))
}

/// `<runtime> --version`'s first line, for the table's note.
fn version(runtime: &str) -> String {
    find(runtime)
        .and_then(|b| {
            Command::new(b)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
                .ok()
        })
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

/// The runtime's program on PATH, or in the sbin folders a non-login PATH may lack (runc).
fn find(runtime: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(runtime))
        .find(|p| p.is_file())
}

/// An OCI bundle in a temporary folder, removed when dropped, and the runtime's global flags.
struct Bundle {
    dir: PathBuf,
    flags: &'static [&'static str],
}

impl Bundle {
    /// The bundle of `row`: its worker is named after the runtime, its folder and cgroup after
    /// the row.
    fn write(row: &Row, program: &Path) -> Result<Bundle> {
        let (runtime, name, flags) = (row.runtime, row.name, row.flags);
        let dir =
            std::env::temp_dir().join(format!("{BUNDLE_PREFIX}{}-{name}", std::process::id()));
        let bundle = Bundle { dir, flags };
        let rootfs = bundle.dir.join("rootfs");
        let io = |what: &str, e| Error::io(format!("writing the OCI bundle ({what})"), e);
        std::fs::create_dir_all(&rootfs).map_err(|e| io("rootfs", e))?;
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            // Without a /dev of its own, a runtime makes device nodes in rootfs on the host.
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=1m"]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "size=16m", "mode=1777"]}),
            json!({"destination": "/virtlab", "type": "bind", "source": program,
                   "options": ["bind", "ro"]}),
        ];
        std::fs::write(rootfs.join("virtlab"), "").map_err(|e| io("program", e))?;
        for dir in ["dev", "proc", "tmp"] {
            std::fs::create_dir(rootfs.join(dir)).map_err(|e| io(dir, e))?;
        }
        for name in [
            "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
        ] {
            let host = Path::new("/").join(name);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(&host).map_err(|e| io(name, e))?;
                    std::os::unix::fs::symlink(target, rootfs.join(name))
                        .map_err(|e| io(name, e))?;
                }
                Ok(m) if m.is_dir() => {
                    std::fs::create_dir(rootfs.join(name)).map_err(|e| io(name, e))?;
                    mounts.push(json!({"destination": format!("/{name}"), "type": "bind",
                                       "source": host, "options": ["rbind", "ro"]}));
                }
                _ => {}
            }
        }
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/virtlab", "worker", "--name", runtime, "--iterations", "2",
                         "--interval-ms", "300"],
                "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"],
                "cwd": "/",
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": runtime,
            "mounts": mounts,
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                               {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
                "cgroupsPath": format!("virtlab-{}-{name}", std::process::id())
            }
        });
        std::fs::write(bundle.dir.join("config.json"), config.to_string())
            .map_err(|e| io("config.json", e))?;
        Ok(bundle)
    }

    /// The runtime's command line with its own state folder, through `virtlab hide-cgroup2`
    /// when `wrapper` (the virtlab program) is given.
    fn command(&self, runtime: &Path, wrapper: Option<&Path>) -> Command {
        let mut command = match wrapper {
            Some(virtlab) => {
                let mut c = Command::new(virtlab);
                c.args(["hide-cgroup2", "--"]).arg(runtime);
                c
            }
            None => Command::new(runtime),
        };
        command
            .args(self.flags)
            .arg("--root")
            .arg(self.dir.join("state"));
        command
    }

    /// `runtime run` with a state folder of its own: ms to the worker's first line, and the
    /// memory of the runtime's process tree then.
    fn run(
        &self,
        runtime: &Path,
        wrapper: Option<&Path>,
        id: &str,
    ) -> std::result::Result<(f64, Option<f64>), NotStarted> {
        let (reader, writer) = std::io::pipe().map_err(|e| Error::io("creating a pipe", e))?;
        let writer_for_stderr = writer
            .try_clone()
            .map_err(|e| Error::io("creating a pipe", e))?;
        let started = Instant::now();
        let mut child = self
            .command(runtime, wrapper)
            .args(["run", "--bundle"])
            .arg(&self.dir)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_for_stderr)
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", runtime.display()), e))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(|l| l.ok()) {
                if tx.send((line, Instant::now())).is_err() {
                    return;
                }
            }
        });
        let mut first = None;
        let mut said = Vec::new();
        while let Ok((line, at)) = rx.recv_timeout(PATIENCE) {
            // The worker's events; the runtime's own words are lines for people.
            if line.starts_with(virtlab_core::protocol::MARKER) {
                continue;
            }
            if line.contains(" pid ") && first.is_none() {
                first = Some(at.duration_since(started).as_secs_f64() * 1e3);
                break;
            }
            said.push(line);
        }
        let memory = first.and_then(|_| {
            let tree = observer::snapshot(child.id()).ok()?;
            Some(tree.processes.iter().map(|p| p.rss_bytes as f64).sum())
        });
        // The worker ends by itself 300 ms later; a runtime that is stuck is stopped.
        if first.is_none() {
            let _ = child.kill();
        }
        let status = child.wait();
        let _ = self
            .command(runtime, wrapper)
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let Some(ms) = first else {
            let problem = format!(
                "{} did not start the worker ({}): {}",
                runtime.display(),
                status.map_or("no status".into(), |s| {
                    virtlab_core::executor::Crash::of_exit(s, None).describe()
                }),
                said.join(" / ")
            );
            // crun's own words are all it says of why: read once, here.
            return Err(if said.iter().any(|l| l.contains(CRUN_REFUSES_HYBRID)) {
                NotStarted::HybridCgroups(Error::new(
                    problem,
                    "nothing to fix in the lab: this runtime refuses a hybrid cgroup v1/v2 layout whose cgroup2 lists a controller; it runs on pure v1 or v2 machines",
                ))
            } else {
                NotStarted::Other(Error::new(
                    problem,
                    "run the runtime by hand on an OCI bundle like this one to see more",
                ))
            });
        };
        Ok((ms, memory))
    }
}

/// What crun 1.8 says when it refuses a hybrid cgroup layout.
const CRUN_REFUSES_HYBRID: &str = "hybrid mode";

/// Why a runtime did not start the worker: a hybrid cgroup layout it refuses (which running
/// it with cgroup2 hidden gets round, as root), or anything else.
enum NotStarted {
    HybridCgroups(Error),
    Other(Error),
}

impl From<Error> for NotStarted {
    fn from(e: Error) -> Self {
        NotStarted::Other(e)
    }
}

impl From<NotStarted> for Error {
    fn from(n: NotStarted) -> Self {
        match n {
            NotStarted::HybridCgroups(e) | NotStarted::Other(e) => e,
        }
    }
}

impl Drop for Bundle {
    /// Removes what `write` made, entry by entry: never a recursive delete through rootfs,
    /// where a runtime that failed half-way could have left a bind of a host folder.
    fn drop(&mut self) {
        let rootfs = self.dir.join("rootfs");
        if let Ok(entries) = std::fs::read_dir(&rootfs) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir(&path));
            }
        }
        let _ = std::fs::remove_dir(&rootfs);
        let _ = std::fs::remove_file(self.dir.join("config.json"));
        let _ = std::fs::remove_dir_all(self.dir.join("state"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_runtime_is_a_row_that_says_how_to_install_it() {
        static MISSING: Row = Row {
            label: "missing",
            name: "missing",
            runtime: "virtlab-no-such-runtime",
            flags: &[],
        };
        let mut runtime = Runtime::new(&MISSING, Path::new("/bin/true"));
        runtime.sample();
        let cost = runtime.cost();
        assert_eq!(cost.kind, "missing");
        assert!(cost.first_line_ms.is_none() && cost.samples_ms.is_empty());
        assert!(
            cost.note
                .contains("apt-get install virtlab-no-such-runtime"),
            "{}",
            cost.note
        );
    }
}
