//! The crate's error: what went wrong (`problem`), what to do about it (`fix`), and of which
//! kind, so a caller can tell bad input from a missing facility. Same shape as the lab's core
//! error (kind, problem, fix), which it will be folded onto.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What sort of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// An input out of range or malformed: change the input.
    Invalid,
    /// A facility this machine lacks (root, a program, a namespace kind, a cgroup controller).
    Unavailable,
    /// The operating system refused a resource (a process, a pipe, a namespace).
    Refused,
    /// Reading or writing a file failed.
    Io,
    /// Something we ran failed (`ip`, `mpirun`, a daemon).
    Failed,
}

/// A failure with its problem and fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    kind: ErrorKind,
    problem: String,
    fix: String,
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of a given kind.
    pub fn of(kind: ErrorKind, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error {
            kind,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// An input out of range or malformed.
    pub fn invalid(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Invalid, problem, fix)
    }

    /// A facility this machine lacks, and how to get it.
    pub fn unavailable(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Unavailable, problem, fix)
    }

    /// Something we ran failed.
    pub fn failed(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Failed, problem, fix)
    }

    /// Reading or writing `what` failed.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Error::of(
            ErrorKind::Io,
            format!("{what}: {err}"),
            "check that the folder exists and that you may write there (root for /run), then run it again",
        )
    }

    /// The OS refused `what` (a fork, a namespace, a pipe).
    pub fn os(what: impl fmt::Display, err: std::io::Error) -> Self {
        let fix = match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                "run as root (network namespaces joined by veths and cgroup limits need it)"
            }
            Some(libc::EAGAIN) | Some(libc::ENOMEM) => {
                "free memory and processes, or ask for fewer nodes"
            }
            _ => "run it again; if it keeps failing, report it with the message above",
        };
        Error::of(ErrorKind::Refused, format!("{what}: {err}"), fix)
    }

    /// What sort of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// What to do about it.
    pub fn fix(&self) -> &str {
        &self.fix
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtlab error: {}. Fix: {}", self.problem, self.fix)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_problem_and_fix() {
        let e = Error::invalid("nodes cannot be 0", "ask for 1 to 253 nodes");
        assert_eq!(
            e.to_string(),
            "virtlab error: nodes cannot be 0. Fix: ask for 1 to 253 nodes"
        );
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let refused = Error::os("unshare", std::io::Error::from_raw_os_error(libc::EPERM));
        assert!(refused.fix().contains("root"), "{refused}");
    }
}
