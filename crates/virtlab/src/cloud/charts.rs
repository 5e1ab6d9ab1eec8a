//! Chapter 9's charts: the trace, the instances alive under it per policy, latency
//! percentiles per policy, and break-even (a month's cost against the share of time busy).

use super::breakeven::BreakEven;
use super::runs::Served;
use super::tables::describe_policy;
use crate::Result;
use crate::display::Figure;
use crate::plot::{BarChart, LineChart};

/// Width of the trace chart's bins, seconds.
const BIN_S: f64 = 0.5;
/// Width of the alive chart's bins, seconds.
const ALIVE_BIN_S: f64 = 0.25;
/// Busy shares the break-even lines are drawn at: 0.5 % to 100 %, evenly on a log axis.
const BUSY_STEPS: usize = 24;

impl Served {
    /// Requests per second as they arrived (bins of half a second), with each stretch's rate
    /// dashed.
    pub fn trace_chart(&self) -> Result<Figure> {
        let duration = self.trace.spec.duration_s;
        let bins = (duration / BIN_S).ceil() as usize;
        let mut counts = vec![0usize; bins.max(1)];
        for a in &self.trace.arrivals {
            let bin = ((a.at_s / BIN_S) as usize).min(counts.len() - 1);
            counts[bin] += 1;
        }
        let arrived = counts
            .iter()
            .enumerate()
            .map(|(i, n)| ((i as f64 + 0.5) * BIN_S, *n as f64 / BIN_S));
        let planned = self
            .trace
            .stretches
            .iter()
            .flat_map(|s| [(s.start_s, s.rate_per_s), (s.end_s, s.rate_per_s)]);
        Ok(LineChart::new("The trace: requests arriving")
            .x_label("seconds from the start")
            .y_label("requests per second")
            .series("arrived (per half second)", arrived)
            .dashed_series("the stretch's rate", planned)
            .render()?)
    }

    /// Instances alive over the trace, one line per policy: the most alive in each quarter
    /// second (one instance per request starts and stops hundreds of times a second, too
    /// often for a step line to read). A warm fleet is up from 0.
    pub fn alive_chart(&self) -> Result<Figure> {
        let mut chart = LineChart::new("Instances alive under the trace, per policy")
            .x_label("seconds from the start")
            .y_label("most instances alive in each quarter second");
        for run in &self.runs {
            let bins = (run.span_s / ALIVE_BIN_S).ceil().max(1.0) as usize;
            let mut most = vec![0usize; bins];
            let mut alive = 0usize;
            let mut samples = run.alive.iter().peekable();
            for (bin, most) in most.iter_mut().enumerate() {
                let end = (bin + 1) as f64 * ALIVE_BIN_S;
                // Alive at the bin's start (carried in), and every count reached inside it.
                *most = alive;
                while let Some(sample) = samples.next_if(|s| s.at_s < end) {
                    alive = sample.alive;
                    *most = (*most).max(alive);
                }
            }
            let points = most
                .iter()
                .enumerate()
                .map(|(bin, n)| ((bin as f64 + 0.5) * ALIVE_BIN_S, *n as f64));
            chart = chart.series(describe_policy(run), points);
        }
        Ok(chart.render()?)
    }

    /// Latency p50, p95 and p99 per policy, stacked: a long last segment is the tail, where
    /// cold starts and queueing show.
    pub fn latency_chart(&self) -> Result<Figure> {
        let mut chart = BarChart::new(
            "Latency per policy (through the socket, end to end)",
            &["p50", "p50 → p95", "p95 → p99"],
        )
        .x_label("milliseconds");
        for run in &self.runs {
            let s = &run.summary;
            let (Some(p50), Some(p95), Some(p99)) = (s.p50_s, s.p95_s, s.p99_s) else {
                continue;
            };
            chart = chart.bar(
                describe_policy(run),
                &[p50 * 1e3, (p95 - p50) * 1e3, (p99 - p95) * 1e3],
            );
        }
        Ok(chart.render()?)
    }
}

/// A month's cost against the share of time busy, one line per product, both axes log (the
/// crossings sit at a few percent busy; a function at full load costs hundreds of times an
/// idle one).
pub fn break_even_chart(be: &BreakEven) -> Result<Figure> {
    let low: f64 = 0.005;
    let shares: Vec<f64> = (0..=BUSY_STEPS)
        .map(|i| low * (1.0 / low).powf(i as f64 / BUSY_STEPS as f64))
        .collect();
    let mut chart = LineChart::new(format!(
        "Break-even: a month's cost for {:.2} ms of one vCPU a request",
        be.work.vcpu_s_per_request * 1e3
    ))
    .x_label(format!(
        "share of time busy (100 % = {:.3e} requests a month on {})",
        be.requests_at_full, be.reference
    ))
    .y_label("US dollars a month")
    .log_x()
    .log_y();
    for line in &be.lines {
        let points = shares.iter().map(|u| (u * 100.0, line.at(*u)));
        chart = if line.fixed_usd > 0.0 && line.per_busy_usd == 0.0 {
            chart.dashed_series(line.label.clone(), points)
        } else {
            chart.series(line.label.clone(), points)
        };
    }
    Ok(chart.render()?)
}
