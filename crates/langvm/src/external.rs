//! The runtimes that are programs of their own: CPython, the JVM (with its JIT and with
//! `-Xint`) and Node (our `.wasm` module, and the JavaScript version). Each runs a guest from
//! `guests/` that prints `version V`, for wasm `sha256 HEX`, then `hits nanoseconds` per run;
//! the time from spawning it to its first result is its start-up. The Java guest is compiled by
//! `javac` into a temporary folder that is removed afterwards. A runtime that is not installed
//! is skipped with how to get it.

use super::job::{self, guests_dir, peers_dir};
use super::{Runtime, Series};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::outcome::Outcome;

/// A folder of our own under the system's temp folder, removed when dropped.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("virtlab-langvm-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::os(format!("creating {}", dir.display()), e))?;
        Ok(TempDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: nothing else can be done about a temp folder that will not go.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The guests made ready once for a whole measurement: the `.wasm` file Node loads and the
/// compiled Java class (or why it could not be compiled), in one temporary folder.
pub(super) struct Guests {
    dir: TempDir,
    java: OnceLock<std::result::Result<(), String>>,
}

impl Guests {
    /// A fresh folder with our `.wasm` module written into it.
    pub(super) fn new() -> Result<Guests> {
        let dir = TempDir::new()?;
        let wasm = dir.path().join("hits.wasm");
        std::fs::write(&wasm, job::WASM)
            .map_err(|e| Error::os(format!("writing {}", wasm.display()), e))?;
        Ok(Guests {
            dir,
            java: OnceLock::new(),
        })
    }

    /// Compiles `Hits.java` into the folder the first time it is needed.
    fn java_class(&self) -> std::result::Result<(), String> {
        self.java
            .get_or_init(|| {
                stdout_of(
                    Command::new("javac")
                        .arg("-d")
                        .arg(self.dir.path())
                        .arg(guests_dir().join("Hits.java")),
                )
                .map(drop)
            })
            .clone()
    }

    /// The command that runs `runtime`'s guest, or why that runtime is missing.
    fn command(&self, runtime: Runtime) -> std::result::Result<Command, String> {
        let mut command;
        match runtime {
            Runtime::Python => {
                command = Command::new("python3");
                command.arg(guests_dir().join("hits.py")).arg(peers_dir());
            }
            Runtime::Java | Runtime::JavaXint => {
                self.java_class()?;
                command = Command::new("java");
                if runtime == Runtime::JavaXint {
                    command.arg("-Xint");
                }
                command.arg("-cp").arg(self.dir.path()).arg("Hits");
            }
            Runtime::NodeWasm => {
                command = Command::new("node");
                command
                    .arg(guests_dir().join("hits.mjs"))
                    .arg("wasm")
                    .arg(self.dir.path().join("hits.wasm"));
            }
            Runtime::NodeJs => {
                command = Command::new("node");
                command.arg(guests_dir().join("hits.mjs")).arg("js");
            }
            other => return Err(format!("{} is not a program of its own", other.name())),
        }
        Ok(command)
    }

    /// Runs the job `repeats` times in one process of `runtime`; skipped when it is missing.
    pub(super) fn run(
        &self,
        runtime: Runtime,
        seed: u64,
        samples: u64,
        repeats: usize,
    ) -> Result<Outcome<Series>> {
        let mut command = match self.command(runtime) {
            Ok(command) => command,
            Err(why) => return Ok(Outcome::Skipped(why)),
        };
        let program = command.get_program().to_string_lossy().into_owned();
        command
            .args([seed.to_string(), samples.to_string(), repeats.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let asked = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Ok(Outcome::Skipped(missing(&program, e))),
        };
        let mut stderr = child.stderr.take().expect("stderr is piped");
        // Read stderr on its own thread so a chatty runtime never stalls on a full pipe.
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut series = Series::new(runtime);
        let mut first_result = None;
        let mut problem = None;
        for line in stdout.lines() {
            let line = line.map_err(|e| Error::os(format!("reading {program}'s output"), e))?;
            if let Some(version) = line.strip_prefix("version ") {
                series.version = version.to_string();
            } else if let Some(hash) = line.strip_prefix("sha256 ") {
                series.module_sha256 = Some(hash.to_string());
            } else if let Some((hits, ns)) = parse_result(&line) {
                first_result.get_or_insert_with(|| asked.elapsed().as_secs_f64());
                series.hits.push(hits);
                series.seconds.push(ns as f64 / 1e9);
            } else {
                problem.get_or_insert(line);
            }
        }
        let status = child
            .wait()
            .map_err(|e| Error::os(format!("waiting for {program}"), e))?;
        let errors = errors.join().unwrap_or_default();
        if !status.success() || series.hits.len() != repeats || problem.is_some() {
            return Err(Error::new(
                format!(
                    "{} running the job failed ({}): {}",
                    runtime.label(),
                    virtlab_core::executor::Crash::of_exit(status, None).describe(),
                    problem.unwrap_or_else(|| errors.trim().to_string())
                ),
                format!(
                    "run `virtlab runtimes --runtimes {} --samples 1000` to see it alone",
                    runtime.name()
                ),
            ));
        }
        series.first_result_s = first_result.unwrap_or_default();
        Ok(Outcome::Measured(series))
    }
}

/// `hits nanoseconds`, as every guest prints a result.
fn parse_result(line: &str) -> Option<(u64, u64)> {
    let (hits, ns) = line.split_once(' ')?;
    Some((hits.parse().ok()?, ns.parse().ok()?))
}

/// Why `program` could not be started, and how to get it.
fn missing(program: &str, e: std::io::Error) -> String {
    let how = match program {
        "python3" => "install Python 3 (apt install python3)",
        "java" | "javac" | "javap" => {
            "install a JDK, 17 or later (apt install openjdk-17-jdk-headless)"
        }
        "node" => "install Node.js, 18 or later (apt install nodejs)",
        _ => "install it",
    };
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("{program} is not installed: {how}")
    } else {
        format!("{program} could not be started ({e}): {how}")
    }
}

/// `javap -c` of the Java guest's `hits`, compiled in a temporary folder; or why not.
pub(super) fn java_bytecode() -> std::result::Result<String, String> {
    let guests = Guests::new().map_err(|e| e.to_string())?;
    guests.java_class()?;
    stdout_of(
        Command::new("javap")
            .args(["-c", "-cp"])
            .arg(guests.dir.path())
            .arg("Hits"),
    )
}

/// What `command` printed on stdout, or why it could not run or failed (with how to get the
/// program when it is missing).
pub(super) fn stdout_of(command: &mut Command) -> std::result::Result<String, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing(&program, e))?;
    if !output.status.success() {
        return Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_parse_and_missing_programs_say_how_to_get_them() {
        assert_eq!(parse_result("785 1234"), Some((785, 1234)));
        assert_eq!(parse_result("version 3"), None);
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            missing("node", gone),
            "node is not installed: install Node.js, 18 or later (apt install nodejs)"
        );
    }

    #[test]
    fn the_temp_folder_is_removed() {
        let guests = Guests::new().unwrap();
        let dir = guests.dir.path().to_path_buf();
        assert!(dir.join("hits.wasm").is_file());
        drop(guests);
        assert!(!dir.exists());
    }
}
