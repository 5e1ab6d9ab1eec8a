//! The crate's error type: every failure says what went wrong and how to fix it.
//!
//! Same shape as the lab's core error (a kind, a problem, a fix) so it can be folded onto it
//! later; `Display` reads "virtlab: <problem>. Fix: <fix>".

use serde::{Deserialize, Serialize};
use std::fmt;

/// What sort of failure an [`Error`] is: decides the fix and lets callers tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// An input out of range or malformed: change the input.
    Invalid,
    /// A facility this machine lacks (a program, a /proc file).
    Unavailable,
    /// The operating system refused a resource (a process, a socket, a pipe).
    Refused,
    /// Reading a file failed.
    Io,
    /// Something we ran failed (an instance).
    Failed,
}

/// What went wrong (`problem`) and how to fix it (`fix`), of a [`ErrorKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    pub kind: ErrorKind,
    pub problem: String,
    pub fix: String,
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

    /// An input that is out of range or malformed.
    pub fn invalid(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Invalid, problem, fix)
    }

    /// A facility this machine lacks, and how to get it.
    pub fn unavailable(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Unavailable, problem, fix)
    }

    /// Something we ran (an instance) failed.
    pub fn failed(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Failed, problem, fix)
    }

    /// The operating system refused a resource: `action` says which.
    pub fn os(action: impl fmt::Display, err: std::io::Error) -> Self {
        let fix = match err.kind() {
            std::io::ErrorKind::NotFound => "check that the program exists, then run it again",
            std::io::ErrorKind::PermissionDenied => "run it as a user allowed to do this",
            _ => "free processes and open files (`ulimit -n`, `ulimit -u`), then run it again",
        };
        Error::of(ErrorKind::Refused, format!("{action}: {err}"), fix)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtlab: {}. Fix: {}", self.problem, self.fix)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_problem_and_the_fix() {
        let e = Error::invalid("the rate cannot be 0", "give a rate above 0");
        assert_eq!(
            e.to_string(),
            "virtlab: the rate cannot be 0. Fix: give a rate above 0"
        );
        assert_eq!(e.kind, ErrorKind::Invalid);
    }
}
