//! The one error type of the crate: every public function returns [`Result`], and every error
//! says what went wrong and what to do about it, in words a learner can act on.
//!
//! Notebook cells use `?`, and evcxr prints an error's `Display` on stderr; the `virtlab error:`
//! prefix is what the strict notebook checker looks for, so it must stay.

use std::fmt;

/// What went wrong (`problem`) and how to fix it (`fix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    problem: String,
    fix: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// An input that is out of range or malformed.
    pub fn invalid(what: &str, got: impl fmt::Display, fix: impl Into<String>) -> Self {
        Error::new(format!("{what} cannot be {got}"), fix)
    }

    /// An operating-system or I/O failure, with the action that failed.
    pub fn io(action: impl Into<String>, err: std::io::Error) -> Self {
        Error::new(
            format!("{}: {err}", action.into()),
            "check that the path exists and is writable, then run it again",
        )
    }

    pub fn problem(&self) -> &str {
        &self.problem
    }

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

/// Checks that `value` lies in `min..=max`, naming the parameter in the error.
pub fn check_range<T>(what: &str, value: T, min: T, max: T) -> Result<T>
where
    T: PartialOrd + fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(Error::invalid(
            what,
            value,
            format!("choose {what} between {min} and {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_problem_and_fix() {
        let e = Error::new("no GPU found", "run the CPU cells only");
        assert_eq!(
            e.to_string(),
            "virtlab error: no GPU found. Fix: run the CPU cells only"
        );
    }

    #[test]
    fn check_range_accepts_bounds_and_rejects_outside() {
        assert_eq!(check_range("threads", 1, 1, 4), Ok(1));
        assert_eq!(check_range("threads", 4, 1, 4), Ok(4));
        let e = check_range("threads", 0, 1, 4).unwrap_err();
        assert_eq!(e.problem(), "threads cannot be 0");
        assert!(e.fix().contains("between 1 and 4"));
    }
}
