//! What can go wrong in the display layer: a chart that cannot be drawn, or a file that cannot
//! be written. The layer sits below the lab's core, so it has this small error of its own; the
//! core turns it into the lab's `Error` with the same words (and, for a file, the core's fix for
//! that I/O failure).

use std::fmt;

/// A chart that cannot be drawn (what is wrong and how to fix it), or a failed write.
#[derive(Debug)]
pub enum Error {
    /// A chart given data it cannot draw, or a drawing backend that failed.
    Chart {
        /// What went wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
    /// Writing a file failed: `action` names the file.
    Io {
        /// What was being done, naming the file.
        action: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The display layer's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A chart that cannot be drawn: what is wrong and how to fix it.
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Chart {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// What went wrong: the chart's problem, or what was being done when a write failed.
    pub fn problem(&self) -> &str {
        match self {
            Error::Chart { problem, .. } => problem,
            Error::Io { action, .. } => action,
        }
    }

    /// Writing a file failed while doing `action`.
    pub fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Chart { problem, fix } => write!(f, "virtlab error: {problem}. Fix: {fix}"),
            Error::Io { action, source } => write!(f, "virtlab error: {action}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Chart { .. } => None,
            Error::Io { source, .. } => Some(source),
        }
    }
}
