//! Chapter 2's executor starts here: OS threads inside one process. For now, what a thread
//! costs, measured the same way as a process in chapter 1 so the two can be compared.

use crate::cost::{CostPoint, median};
use crate::error::check_range;
use crate::{Error, Result};
use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;

/// The most threads one measurement starts.
pub const MAX_THREADS: usize = 10_000;

/// For each count, `repeats` rounds of starting that many threads together: the median time
/// from the spawn call to the thread running, and the resident memory each one adds.
pub fn spawn_cost(counts: &[usize], repeats: usize) -> Result<Vec<CostPoint>> {
    check_range("repeats", repeats, 1, 100)?;
    let mut points = Vec::new();
    for &n in counts {
        check_range("the number of threads", n, 1, MAX_THREADS)?;
        let mut latencies = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..repeats {
            let (round_latencies, rss_each) = spawn_round(n)?;
            latencies.extend(round_latencies);
            rss.extend(rss_each);
        }
        points.push(CostPoint {
            count: n,
            first_line_ms: median(&mut latencies),
            rss_bytes: median(&mut rss),
        });
    }
    Ok(points)
}

/// Starts `n` threads that wait together; returns each one's spawn-to-running time in ms and,
/// where the OS reports it, the resident memory each added.
fn spawn_round(n: usize) -> Result<(Vec<f64>, Option<f64>)> {
    let before = resident_bytes();
    // Threads block on the read side until we drop the write guard: all stay alive together.
    let gate = Arc::new(RwLock::new(()));
    let hold = gate.write().unwrap_or_else(|e| e.into_inner());
    let (running_tx, running_rx) = mpsc::channel::<f64>();
    let mut handles = Vec::with_capacity(n);
    let mut refused = None;
    for i in 0..n {
        let (gate, running_tx) = (gate.clone(), running_tx.clone());
        let asked = Instant::now();
        let spawned = std::thread::Builder::new()
            .name(format!("cost-{i}"))
            .spawn(move || {
                let _ = running_tx.send(asked.elapsed().as_secs_f64() * 1e3);
                drop(gate.read());
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                refused = Some(Error::new(
                    format!("the OS refused thread {} of {n} ({e})", i + 1),
                    "measure fewer threads at once",
                ));
                break;
            }
        }
    }
    let latencies: Vec<f64> = running_rx.iter().take(handles.len()).collect();
    let during = resident_bytes();
    drop(hold);
    for h in handles {
        let _ = h.join();
    }
    if let Some(error) = refused {
        return Err(error);
    }
    let rss_each = before
        .zip(during)
        .map(|(b, d)| (d as f64 - b as f64) / n as f64);
    Ok((latencies, rss_each))
}

/// This process's resident memory (Linux /proc), None elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_cost_measures_every_count() {
        let points = spawn_cost(&[1, 8], 2).unwrap();
        assert_eq!(
            points.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 8]
        );
        assert!(
            points
                .iter()
                .all(|p| p.first_line_ms.is_finite() && p.first_line_ms >= 0.0)
        );
        if cfg!(target_os = "linux") {
            assert!(points.iter().all(|p| p.rss_bytes.is_finite()));
        }
    }

    #[test]
    fn bad_counts_are_refused() {
        assert!(
            spawn_cost(&[0], 1)
                .unwrap_err()
                .problem()
                .contains("number of threads cannot be 0")
        );
        assert!(spawn_cost(&[MAX_THREADS + 1], 1).is_err());
        assert!(
            spawn_cost(&[1], 0)
                .unwrap_err()
                .problem()
                .contains("repeats cannot be 0")
        );
    }
}
