//! The one line protocol between virtlab and the programs it starts — worker processes, the
//! container shim and its pid 1, the measuring programs. Each line they write is either a line
//! for people or [`MARKER`] followed by one JSON [`Message`]: a timeline event, an error (with
//! its kind and fix, so the parent passes it on unchanged), or a message of the kind of worker
//! itself (a container's set-up steps, its end, its probe). Lines are written and read here
//! only. A line that carries the marker but does not parse is an error that names the line:
//! nothing is dropped silently.

use crate::timeline::Event;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What starts every message line.
pub const MARKER: &str = "@virtlab ";

/// One message from a program virtlab started; `K` is its kind's own messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Message<K = NoKindMessages> {
    /// A timeline event of the unit (start, each iteration, end).
    Event(Event),
    /// The program failed with this error.
    Error(Error),
    /// A message of the kind of worker itself.
    Kind(K),
}

/// The kind messages of a kind that has none (a plain worker process): a line that claims to
/// be one does not parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NoKindMessages {}

/// One line read from a program: for people, or a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<K = NoKindMessages> {
    /// A line for people, e.g. the essay's `0: worker-1 pid 4242`.
    People(String),
    /// A message.
    Message(Message<K>),
}

impl<K: Serialize> Message<K> {
    /// This message as the line a program writes.
    pub fn to_line(&self) -> String {
        // A message is plain data (strings, numbers, lists): it always serializes.
        format!(
            "{MARKER}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// Writes this message's line on stdout, in one write so lines of threads do not mix.
    pub fn print(&self) {
        use std::io::Write;
        // A parent that stopped reading notices the worker's end in its own way; nothing to do.
        let _ = writeln!(std::io::stdout().lock(), "{}", self.to_line());
    }
}

/// Reads one line a program wrote: a line for people, or its message. A line with the marker
/// that does not parse is an error naming it.
pub fn read<K: DeserializeOwned>(line: &str) -> Result<Line<K>> {
    let Some(json) = line.strip_prefix(MARKER) else {
        return Ok(Line::People(line.to_string()));
    };
    serde_json::from_str(json).map(Line::Message).map_err(|e| {
        Error::bug(format!(
            "a program virtlab started wrote a message virtlab cannot read ({e}): {line}"
        ))
    })
}

/// The line a program writes (on stderr) when it fails with `error`, for its parent to pass on.
pub fn error_line(error: &Error) -> String {
    Message::<NoKindMessages>::Error(error.clone()).to_line()
}

/// The error a program reported among `lines` (its stderr), if it reported one.
pub fn reported_error<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Error> {
    lines
        .into_iter()
        .find_map(|line| match read::<NoKindMessages>(line) {
            Ok(Line::Message(Message::Error(error))) => Some(error),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::EventKind;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Steps {
        Marks(Vec<(String, u64)>),
    }

    #[test]
    fn every_message_reads_back_as_written() {
        let event = Event {
            lane: "worker-1".into(),
            kind: EventKind::Iteration(0),
            t_ns: 5,
            pid: 7,
            tid: 8,
        };
        let error = Error::unavailable("no /dev/kvm", "load the kvm module");
        let marks = Steps::Marks(vec![("cgroup made".into(), 3)]);
        for message in [
            Message::Event(event),
            Message::Error(error),
            Message::Kind(marks),
        ] {
            let line = message.to_line();
            assert!(line.starts_with(MARKER), "{line}");
            assert_eq!(read::<Steps>(&line).unwrap(), Line::Message(message));
        }
    }

    #[test]
    fn a_line_for_people_stays_one_and_a_broken_message_names_its_line() {
        assert_eq!(
            read::<NoKindMessages>("0: worker-1 pid 4242").unwrap(),
            Line::People("0: worker-1 pid 4242".into())
        );
        let broken = format!("{MARKER}{{\"type\":\"event\",\"data\":");
        let err = read::<NoKindMessages>(&broken).unwrap_err();
        assert!(err.problem().contains(&broken), "{err}");
        let stray = Message::Kind(Steps::Marks(vec![])).to_line();
        assert!(
            read::<NoKindMessages>(&stray).is_err(),
            "a kind message to a plain process"
        );
    }

    #[test]
    fn the_reported_error_is_found_among_other_lines() {
        let error = Error::unavailable("no /dev/kvm", "load the kvm module");
        let line = error_line(&error);
        assert_eq!(reported_error(["progress", line.as_str()]), Some(error));
        assert_eq!(reported_error(["virtlab error: text. Fix: x"]), None);
    }
}
