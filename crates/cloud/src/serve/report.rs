//! Latency percentiles and the per-policy summary a table or chart prints.

use super::{InstanceRecord, RequestRecord};
use serde::{Deserialize, Serialize};

/// The `p`-th percentile (0..=100) of `values` by nearest rank; `None` when there are none.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// One policy's run in figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub served: usize,
    pub dropped: usize,
    /// Requests that waited in the front's queue for an instance.
    pub queued: usize,
    /// Requests served by an instance started for them (their latency holds a cold start).
    pub cold: usize,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub p99_s: Option<f64>,
    pub cold_p50_s: Option<f64>,
    pub warm_p50_s: Option<f64>,
    /// Latency not spent queued or in the instance: sockets, threads, the front itself.
    pub front_overhead_p50_s: Option<f64>,
    /// Time from starting an instance to its first `ready`.
    pub cold_start_p50_s: Option<f64>,
    pub instances_started: usize,
    pub max_alive: usize,
    pub cpu_s: f64,
    pub memory_gib_s: f64,
}

impl Summary {
    pub(super) fn of(
        requests: &[RequestRecord],
        instances: &[InstanceRecord],
        max_alive: usize,
    ) -> Summary {
        let served: Vec<&RequestRecord> = requests.iter().filter(|r| !r.dropped).collect();
        let latencies = |pick: &dyn Fn(&RequestRecord) -> bool| -> Vec<f64> {
            served
                .iter()
                .filter(|r| pick(r))
                .map(|r| r.latency_s)
                .collect()
        };
        let all = latencies(&|_| true);
        let front: Vec<f64> = served.iter().map(|r| r.front_s).collect();
        let starts: Vec<f64> = instances.iter().map(|i| i.cold_start_s).collect();
        Summary {
            served: served.len(),
            dropped: requests.len() - served.len(),
            queued: requests.iter().filter(|r| r.waited).count(),
            cold: served.iter().filter(|r| r.cold).count(),
            p50_s: percentile(&all, 50.0),
            p95_s: percentile(&all, 95.0),
            p99_s: percentile(&all, 99.0),
            cold_p50_s: percentile(&latencies(&|r| r.cold), 50.0),
            warm_p50_s: percentile(&latencies(&|r| !r.cold), 50.0),
            front_overhead_p50_s: percentile(&front, 50.0),
            cold_start_p50_s: percentile(&starts, 50.0),
            instances_started: instances.len(),
            max_alive,
            cpu_s: instances.iter().map(|i| i.cpu_s).sum(),
            memory_gib_s: instances.iter().map(|i| i.memory_gib_s).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
