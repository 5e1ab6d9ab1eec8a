//! Chapter 9's runs as tables: each policy's latency, cold starts and resources; each bill
//! with its product's billing rule, price source and the date the price was read.

use super::runs::{Billed, Served};
use crate::display::Table;

/// Milliseconds with two decimals, or "-" when there is no figure.
pub fn ms(seconds: Option<f64>) -> String {
    seconds.map_or("-".into(), |s| format!("{:.2}", s * 1e3))
}

/// US dollars: cents for sums of a dollar or more, six decimals below (a run's bill is tiny).
pub fn usd(amount: f64) -> String {
    if amount >= 1.0 {
        format!("${amount:.2}")
    } else {
        format!("${amount:.6}")
    }
}

impl Served {
    /// One row per policy: requests served, dropped and queued, cold requests, latency
    /// percentiles, instance starts, and what the instances used.
    pub fn table(&self) -> Table {
        let caption = format!(
            "{} requests ({:.1}/s on average over {} s), {} instances sold as {} vCPU, {} GiB",
            self.trace.arrivals.len(),
            self.trace.mean_rate(),
            self.trace.spec.duration_s,
            self.plan.kind.name(),
            self.plan.size.vcpu,
            self.plan.size.memory_gib
        );
        let mut table = Table::new(
            caption,
            [
                "policy",
                "served",
                "dropped",
                "queued",
                "cold",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "cold p50 ms",
                "warm p50 ms",
                "cold start p50 ms",
                "instances started",
                "most alive",
                "CPU s",
                "memory GiB·s",
            ],
        );
        for run in &self.runs {
            let s = &run.summary;
            table.row([
                describe_policy(run),
                s.served.to_string(),
                s.dropped.to_string(),
                s.queued.to_string(),
                s.cold.to_string(),
                ms(s.p50_s),
                ms(s.p95_s),
                ms(s.p99_s),
                ms(s.cold_p50_s),
                ms(s.warm_p50_s),
                ms(s.cold_start_p50_s),
                s.instances_started.to_string(),
                s.max_alive.to_string(),
                format!("{:.3}", s.cpu_s),
                format!("{:.4}", s.memory_gib_s),
            ]);
        }
        table
    }

    /// Shows [`Served::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// "autoscale (≤ 4, keep-alive 1 s)": the policy with its numbers.
pub fn describe_policy(run: &super::serve::ServeRun) -> String {
    use super::serve::Policy;
    match run.spec.policy {
        Policy::Fixed { instances } => format!("fixed ({instances} warm)"),
        Policy::Autoscale {
            max_instances,
            keep_alive_s,
        } => format!("autoscale (≤ {max_instances}, keep-alive {keep_alive_s} s)"),
        Policy::PerRequest { max_instances } => format!("per-request (≤ {max_instances})"),
    }
}

impl Billed {
    /// One row per policy and product: the run's cost, a month at the trace's rate, the best
    /// published discount (a floor, labelled), the billing rule, the source and its date.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            "Each run billed by every product that sells its policy (prices change: each row gives the date its price was read, or says none was recorded)",
            [
                "policy",
                "product",
                "run",
                "a month at this rate",
                "at best, with a discount",
                "billed",
                "price read",
                "source",
            ],
        );
        for b in &self.bills {
            let best = b
                .bill
                .discounts
                .iter()
                .min_by(|x, y| x.as_low_as_usd.total_cmp(&y.as_low_as_usd))
                .map_or("-".into(), |d| {
                    format!("{} ({}: {})", usd(d.as_low_as_usd), d.name, d.label)
                });
            table.row([
                b.policy.clone(),
                format!("{} ({})", b.bill.product, b.bill.region),
                usd(b.bill.run_usd),
                usd(b.bill.month_usd),
                best,
                b.bill.rule.clone(),
                b.bill.date_read.clone(),
                b.bill.source.clone(),
            ]);
        }
        table
    }

    /// Shows [`Billed::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}
