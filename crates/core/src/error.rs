//! The one error type of the crate: every public function returns [`Result`], and every error
//! says what went wrong and what to do about it, in words a learner can act on.
//!
//! An error has a [`ErrorKind`] (bad input, a missing facility, the OS refusing a resource, an
//! I/O failure, …) so the fix fits the failure, and keeps the error that caused it (an I/O
//! error, a KVM ioctl's, a parser's) as its source. Errors cross process boundaries (a worker or
//! measuring program to its parent) as a message of the [`protocol`](crate::protocol) with their
//! kind, problem and fix, never by parsing printed text.
//!
//! Notebook cells use `?`, and evcxr prints an error's `Display` on stderr; the `virtlab error:`
//! prefix is what the strict notebook checker looks for, so it must stay.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// What sort of failure an [`Error`] is: decides the fix and lets callers tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// An input out of range or malformed: change the input.
    Invalid,
    /// A facility this machine lacks (a GPU, KVM, a cgroup controller, a program).
    Unavailable,
    /// The operating system refused a resource (a thread, a process, memory, a pipe).
    Refused,
    /// Reading or writing a file failed.
    Io,
    /// Something we ran failed (a worker, a measuring program, a build).
    Failed,
    /// A broken invariant inside virtlab.
    Bug,
}

/// What went wrong (`problem`) and how to fix it (`fix`), of a [`ErrorKind`], with the I/O error
/// that caused it where there was one.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    problem: String,
    fix: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// The form an error takes in JSON between processes.
#[derive(Serialize, Deserialize)]
struct ErrorData {
    kind: ErrorKind,
    problem: String,
    fix: String,
}

impl Error {
    /// A failure of something we ran, with its problem and fix.
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Failed, problem, fix)
    }

    /// An error of a given kind.
    pub fn of(kind: ErrorKind, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error {
            kind,
            problem: problem.into(),
            fix: fix.into(),
            source: None,
        }
    }

    /// An input that is out of range or malformed.
    pub fn invalid(what: &str, got: impl fmt::Display, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Invalid, format!("{what} cannot be {got}"), fix)
    }

    /// A facility this machine lacks, and how to get it.
    pub fn unavailable(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::of(ErrorKind::Unavailable, problem, fix)
    }

    /// A broken invariant: nothing the user did.
    pub fn bug(problem: impl Into<String>) -> Self {
        Error::of(ErrorKind::Bug, problem, "report this as a bug in virtlab")
    }

    /// Reading or writing a file failed: `action` names the file.
    pub fn io(action: impl Into<String>, err: std::io::Error) -> Self {
        let fix = match err.kind() {
            std::io::ErrorKind::NotFound => "check that the folder exists, then run it again",
            std::io::ErrorKind::PermissionDenied => {
                "check that you may write there (or choose another folder), then run it again"
            }
            std::io::ErrorKind::StorageFull => "free some disk space, then run it again",
            _ => "check that the path exists and is writable, then run it again",
        };
        Error::of(ErrorKind::Io, format!("{}: {err}", action.into()), fix).caused_by(err)
    }

    /// The operating system refused a resource (a pipe, a thread, a process): `action` says
    /// which. The fix follows the reason the OS gave ([`errno_fix`]).
    pub fn os(action: impl Into<String>, err: std::io::Error) -> Self {
        let errno = err.raw_os_error().unwrap_or(0);
        Error::errno(
            action,
            errno,
            "run it as a user allowed to do this (or as root), or skip this part",
            "run it again; if it keeps failing, report it with the message above",
        )
        .caused_by(err)
    }

    /// A call the OS answered with `errno`, doing `action`: the kind and fix from the one
    /// table ([`errno_fix`]), with `access` as the fix when permission was denied and
    /// `otherwise` for an errno the table does not name. The VMM's ioctls and the container
    /// shim's clone use it as well as [`Error::os`].
    pub fn errno(action: impl Into<String>, errno: i32, access: &str, otherwise: &str) -> Self {
        let (kind, fix) = errno_fix(errno, access, otherwise);
        let reason = std::io::Error::from_raw_os_error(errno);
        Error::of(kind, format!("{}: {reason}", action.into()), fix)
    }

    /// This error with `err` kept as its source (an I/O error, a KVM ioctl's, a parser's).
    pub fn caused_by(mut self, err: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(err));
        self
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

    /// The problem and its fix in one sentence, "problem. Fix: fix", for a table cell or a
    /// skipped section's line (the message without [`Error`]'s `virtlab error:` prefix).
    pub fn sentence(&self) -> String {
        format!("{}. Fix: {}", self.problem, self.fix)
    }
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.problem, &self.fix) == (other.kind, &other.problem, &other.fix)
    }
}

impl Eq for Error {}

/// An error crosses a process boundary (and is kept in a run's report) as its kind, problem
/// and fix; its source stays behind.
impl Serialize for Error {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        ErrorData {
            kind: self.kind,
            problem: self.problem.clone(),
            fix: self.fix.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let data = ErrorData::deserialize(deserializer)?;
        Ok(Error::of(data.kind, data.problem, data.fix))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtlab error: {}", self.sentence())
    }
}

/// A chart that cannot be drawn keeps its words; a figure that cannot be written gets the fix
/// for that I/O failure.
impl From<virtlab_display::Error> for Error {
    fn from(e: virtlab_display::Error) -> Self {
        match e {
            virtlab_display::Error::Chart { problem, fix } => Error::new(problem, fix),
            virtlab_display::Error::Io { action, source } => Error::io(action, source),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What to do about an errno the OS answered with — one table for every layer (a thread or a
/// process refused, a KVM ioctl, the container shim's clone): the kind of failure and its fix.
/// `access` is the fix when permission was denied (it depends on what was asked: root, the kvm
/// group), `otherwise` the fix for an errno the table does not name.
pub fn errno_fix<'a>(errno: i32, access: &'a str, otherwise: &'a str) -> (ErrorKind, &'a str) {
    match errno {
        libc::EAGAIN | libc::ENOMEM => (
            ErrorKind::Refused,
            "ask for fewer units at once, or free memory and processes (the OS ran out of them)",
        ),
        libc::EMFILE | libc::ENFILE => (
            ErrorKind::Refused,
            "raise the open-file limit (`ulimit -n`), or run fewer units at once",
        ),
        libc::ENOSPC => (
            ErrorKind::Refused,
            "a kernel limit is reached (namespaces, watches, PIDs): end what holds them, or raise the limit under /proc/sys",
        ),
        libc::EACCES | libc::EPERM => (ErrorKind::Unavailable, access),
        libc::ENOENT => (
            ErrorKind::Unavailable,
            "check that the program or device exists (run scripts/setup), then run it again",
        ),
        _ => (ErrorKind::Refused, otherwise),
    }
}

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
    use std::error::Error as _;

    #[test]
    fn display_names_problem_and_fix() {
        let e = Error::new("no GPU found", "run the CPU cells only");
        assert_eq!(
            e.to_string(),
            "virtlab error: no GPU found. Fix: run the CPU cells only"
        );
        assert_eq!(e.sentence(), "no GPU found. Fix: run the CPU cells only");
    }

    #[test]
    fn check_range_accepts_bounds_and_rejects_outside() {
        assert_eq!(check_range("threads", 1, 1, 4), Ok(1));
        assert_eq!(check_range("threads", 4, 1, 4), Ok(4));
        let e = check_range("threads", 0, 1, 4).unwrap_err();
        assert_eq!(e.problem(), "threads cannot be 0");
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.fix().contains("between 1 and 4"));
    }

    #[test]
    fn os_errors_keep_their_source_and_get_a_fix_for_their_cause() {
        let e = Error::os(
            "starting thread 9",
            std::io::Error::from_raw_os_error(libc::EAGAIN),
        );
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.fix().contains("fewer units"), "{e}");
        assert!(e.source().is_some());
        let files = Error::os(
            "creating a pipe",
            std::io::Error::from_raw_os_error(libc::EMFILE),
        );
        assert!(files.fix().contains("ulimit -n"), "{files}");
        let missing = Error::io(
            "writing /nowhere/x",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(missing.kind(), ErrorKind::Io);
        assert!(missing.fix().contains("folder exists"), "{missing}");
    }

    #[test]
    fn one_errno_table_gives_each_caller_its_own_access_fix() {
        let kvm = Error::errno(
            "KVM_CREATE_VM failed",
            libc::EACCES,
            "join the kvm group",
            "see dmesg",
        );
        assert_eq!(kvm.kind(), ErrorKind::Unavailable);
        assert_eq!(kvm.fix(), "join the kvm group");
        assert!(kvm.problem().starts_with("KVM_CREATE_VM failed: "), "{kvm}");
        let odd = Error::errno("cloning", libc::EINVAL, "be root", "see the support table");
        assert_eq!(odd.fix(), "see the support table");
        let out = Error::errno("cloning", libc::ENOMEM, "be root", "see the support table");
        assert!(out.fix().contains("fewer units"), "{out}");
    }

    #[test]
    fn errors_cross_a_process_boundary_as_json() {
        let e = Error::unavailable("no /dev/kvm", "load the kvm module");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Error>(&json).unwrap(), e);
    }
}
