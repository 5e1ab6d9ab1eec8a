//! The request line protocol between a front and an instance, both sides: the instance says
//! `ready` once started, then answers each request line `<samples> <seed>` with
//! `<hits> <work_ns>` (the Monte Carlo hit count and the time the work took).
//!
//! One module for both ends, so every kind of instance (a plain process, a container's pid 1)
//! speaks it the same way: [`answer_requests`] is the instance's loop, [`Channel`] the front's
//! end.

use crate::error::{Error, Result};
use crate::work::monte_carlo_hits_on;
use std::io::{BufRead, BufReader, Read, Write};

/// What an instance says once it can take requests.
pub const READY: &str = "ready";

fn parse(line: &str) -> Option<(u64, u64)> {
    let mut words = line.split_whitespace();
    let samples = words.next()?.parse().ok()?;
    let seed = words.next()?.parse().ok()?;
    words.next().is_none().then_some((samples, seed))
}

/// The instance's side: says `ready`, then answers every request from `requests` on `answers`
/// until `requests` ends (the front let go) or `answers` is closed. A malformed request line is
/// an error naming it; it ends the instance.
pub fn answer_requests(requests: impl BufRead, answers: impl Write) -> Result<()> {
    answer_requests_on(requests, answers, 1)
}

/// The same loop, each request's work spread over `threads` threads (an instance sold several
/// vCPUs); the answers are the same.
pub fn answer_requests_on(
    requests: impl BufRead,
    mut answers: impl Write,
    threads: usize,
) -> Result<()> {
    if writeln!(answers, "{READY}")
        .and_then(|_| answers.flush())
        .is_err()
    {
        return Ok(());
    }
    for line in requests.lines() {
        let Ok(line) = line else { return Ok(()) };
        let Some((samples, seed)) = parse(&line) else {
            return Err(Error::invalid(
                "an instance's request line",
                format!("{line:?}"),
                "send `<samples> <seed>`, two whole numbers",
            ));
        };
        let start = std::time::Instant::now();
        let hits = monte_carlo_hits_on(samples, seed, threads);
        let work_ns = start.elapsed().as_nanos();
        if writeln!(answers, "{hits} {work_ns}")
            .and_then(|_| answers.flush())
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// The front's end of one instance: where its requests go and its answers come from.
pub struct Channel {
    requests: Box<dyn Write + Send>,
    answers: BufReader<Box<dyn Read + Send>>,
    /// Names the instance in errors ("instance process 4242").
    who: String,
    /// What to check when it misbehaves.
    fix: String,
}

impl Channel {
    /// A channel to the instance `who`; `fix` says what to check when it breaks the protocol.
    pub fn new(
        requests: Box<dyn Write + Send>,
        answers: Box<dyn Read + Send>,
        who: impl Into<String>,
        fix: impl Into<String>,
    ) -> Channel {
        Channel {
            requests,
            answers: BufReader::new(answers),
            who: who.into(),
            fix: fix.into(),
        }
    }

    /// The error of an instance that broke the protocol: `what` it did.
    pub fn broken(&self, what: &str) -> Error {
        Error::new(format!("{} {what}", self.who), self.fix.clone())
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        match self.answers.read_line(&mut line) {
            Ok(0) => Err(self.broken("exited without answering")),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(self.broken(&format!("could not be read: {e}"))),
        }
    }

    /// Waits for `ready`: the end of the instance's cold start.
    pub fn wait_ready(&mut self) -> Result<()> {
        let said = self.read_line()?;
        if said == READY {
            Ok(())
        } else {
            Err(self.broken(&format!("said {said:?} instead of `{READY}`")))
        }
    }

    /// One request: `samples` Monte Carlo points of stream `seed`; the hit count.
    pub fn call(&mut self, samples: u64, seed: u64) -> Result<u64> {
        writeln!(self.requests, "{samples} {seed}")
            .and_then(|_| self.requests.flush())
            .map_err(|e| self.broken(&format!("could not be sent a request: {e}")))?;
        let answer = self.read_line()?;
        answer
            .split_whitespace()
            .next()
            .and_then(|hits| hits.parse().ok())
            .ok_or_else(|| self.broken(&format!("answered {answer:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::monte_carlo_hits;

    #[test]
    fn the_instance_loop_answers_each_line_and_refuses_a_malformed_one() {
        let mut out = Vec::new();
        answer_requests("1000 7\n1000 8\n".as_bytes(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], READY);
        assert_eq!(lines.len(), 3);
        let hits: u64 = lines[1].split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(hits, monte_carlo_hits(1000, 7));

        let e = answer_requests("1000 seven\n".as_bytes(), Vec::new()).unwrap_err();
        assert!(e.problem().contains("1000 seven"), "{e}");
        assert!(e.fix().contains("<samples> <seed>"), "{e}");

        let mut out = Vec::new();
        answer_requests_on("1000 7\n".as_bytes(), &mut out, 3).unwrap();
        let text = String::from_utf8(out).unwrap();
        let hits = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        assert_eq!(hits, monte_carlo_hits(1000, 7).to_string());
    }

    #[test]
    fn the_channel_reads_ready_and_answers_and_names_a_broken_instance() {
        let answers = format!("{READY}\n{} 5\n", monte_carlo_hits(10, 1));
        let mut ch = Channel::new(
            Box::new(Vec::new()),
            Box::new(std::io::Cursor::new(answers)),
            "instance 1",
            "rebuild it",
        );
        ch.wait_ready().unwrap();
        assert_eq!(ch.call(10, 1).unwrap(), monte_carlo_hits(10, 1));
        let e = ch.call(10, 1).unwrap_err();
        assert!(
            e.problem().contains("instance 1 exited without answering"),
            "{e}"
        );
        let mut wrong = Channel::new(
            Box::new(Vec::new()),
            Box::new(std::io::Cursor::new("hello\n")),
            "instance 2",
            "rebuild it",
        );
        assert!(wrong.wait_ready().unwrap_err().problem().contains("hello"));
    }
}
