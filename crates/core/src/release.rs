//! The release `virtlab` program, run as a child: chapter 1's worker processes, and the heavy
//! measurements (chapter 4's matrix products, the cost ladder's probes) that a notebook's own
//! build — unoptimised, with debug assertions — would run too slowly.
//!
//! The child asks to die with the thread that started it, and reports an error as one JSON line
//! on stderr (`VIRTLAB_ERRORS=json`), which [`failure`] turns back into the same [`Error`].

use crate::executor::Crash;
use crate::{Error, Result, protocol};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Set in a child's environment: print errors as JSON for the parent, not as text for people.
pub const ERRORS_ENV: &str = "VIRTLAB_ERRORS";

/// The `virtlab` program, found without the user setting anything: `$VIRTLAB_WORKER` if set;
/// this program if it is `virtlab`; else the workspace's release build, built (or brought up
/// to date) with cargo on first use.
pub fn program() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("VIRTLAB_WORKER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::unavailable(
                format!(
                    "VIRTLAB_WORKER names {}, which is not a file",
                    path.display()
                ),
                "unset VIRTLAB_WORKER, or point it at a built `virtlab` binary",
            ))
        };
    }
    if let Ok(me) = std::env::current_exe()
        && me.file_stem().is_some_and(|s| s == "virtlab")
    {
        return Ok(me);
    }
    static BUILT: std::sync::OnceLock<std::result::Result<PathBuf, Error>> =
        std::sync::OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> std::result::Result<PathBuf, Error> {
    // The program is the facade crate's binary, beside this crate in the workspace.
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../virtlab");
    let target = crate_dir.join("../../target");
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            "virtlab",
            "--manifest-path",
        ])
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::unavailable(
                format!("could not run cargo to build the virtlab program ({e})"),
                "install Rust (cargo), or set VIRTLAB_WORKER to a built `virtlab` binary",
            )
        })?;
    if !output.status.success() {
        return Err(Error::new(
            format!(
                "building the virtlab program failed:\n{}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            format!(
                "run `cargo build --release` in {} and fix what it reports",
                crate_dir.display()
            ),
        ));
    }
    Ok(target
        .join("release")
        .join(format!("virtlab{}", std::env::consts::EXE_SUFFIX)))
}

/// A command running the `virtlab` program with `args`: stdin null (a notebook kernel's stdin
/// is its command pipe), errors as JSON.
pub fn command<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Result<Command> {
    let mut command = Command::new(program()?);
    command
        .args(args)
        .env(ERRORS_ENV, "json")
        .stdin(Stdio::null());
    Ok(command)
}

/// Runs the `virtlab` program with `args` to the end and reads the JSON it prints as a `T`;
/// an error it reported (or its exit status) comes back as an `Err`. `what` names it in errors,
/// e.g. "the ladder's probe".
pub fn json<T: serde::de::DeserializeOwned>(what: &str, args: &[&str]) -> Result<T> {
    let output = command(args)?
        .output()
        .map_err(|e| Error::os(format!("starting {what}"), e))?;
    let stderr: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    if !output.status.success() {
        return Err(failure(what, output.status, &stderr));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::bug(format!(
            "{what} printed something that is not what was asked for ({e})"
        ))
    })
}

/// On Linux, asks the kernel to SIGKILL this process when the thread that spawned it dies.
/// A child asks for itself, after exec: a `pre_exec` hook in the parent would force a full fork
/// of the (possibly large) parent instead of a cheap `posix_spawn`.
pub fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// The error a child that ended with `status` reported on one of `stderr_lines`, or one that
/// names its status when it reported none (it crashed, or was killed).
pub fn failure(what: &str, status: std::process::ExitStatus, stderr_lines: &[String]) -> Error {
    match protocol::reported_error(stderr_lines.iter().rev().map(String::as_str)) {
        Some(reported) => reported,
        None => Error::new(
            format!(
                "{what} ended with {}{}",
                Crash::of_exit(status, None).describe(),
                stderr_lines
                    .last()
                    .map_or(String::new(), |l| format!(": {l}"))
            ),
            "run the same `virtlab` command in a terminal to see its whole output",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_child_s_json_error_comes_back_whole_and_a_silent_crash_is_named() {
        use std::os::unix::process::ExitStatusExt;
        let reported = Error::unavailable("no GPU", "run the CPU cells");
        let lines = vec!["progress".to_string(), protocol::error_line(&reported)];
        let status = std::process::ExitStatus::from_raw(1 << 8);
        assert_eq!(failure("the measuring program", status, &lines), reported);
        let crashed = failure(
            "the measuring program",
            std::process::ExitStatus::from_raw(libc::SIGSEGV),
            &["last words".into()],
        );
        assert!(
            crashed
                .problem()
                .contains("killed by signal 11 (SIGSEGV): last words"),
            "{crashed}"
        );
    }
}
