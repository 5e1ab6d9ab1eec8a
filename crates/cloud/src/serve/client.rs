//! The load side of the socket: plays the trace's arrivals at their times over one TCP
//! connection to the front, and reads the answers, timestamping both ends.

use crate::trace::Arrival;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Sends each arrival as `<id> <seed>` at `t0 + at_s`, reporting when it went; stops early
/// when `stop` is set. Closes its writing side when done so the front sees the end.
pub(super) fn play(
    mut socket: TcpStream,
    arrivals: Vec<Arrival>,
    t0: Instant,
    stop: Arc<AtomicBool>,
    sent: Sender<(usize, Instant)>,
) {
    for (id, a) in arrivals.iter().enumerate() {
        let due = t0 + Duration::from_secs_f64(a.at_s);
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            // Short sleeps so a stop is seen quickly.
            std::thread::sleep((due - now).min(Duration::from_millis(10)));
        }
        let at = Instant::now();
        if writeln!(socket, "{id} {}", a.seed).is_err() || sent.send((id, at)).is_err() {
            return;
        }
    }
    let _ = socket.shutdown(std::net::Shutdown::Write);
}

/// Reads answers `<id> <hits>` or `<id> dropped` until the front closes, reporting each with
/// the time it came.
pub(super) fn listen(socket: TcpStream, answers: Sender<(usize, Instant, Option<u64>)>) {
    for line in BufReader::new(socket).lines() {
        let at = Instant::now();
        let Ok(line) = line else { return };
        let mut words = line.split_whitespace();
        let Some(id) = words.next().and_then(|w| w.parse().ok()) else {
            return;
        };
        let hits = words.next().and_then(|w| w.parse().ok());
        if answers.send((id, at, hits)).is_err() {
            return;
        }
    }
}
