//! Chapter 9's runs as tables: each policy's latency, cold starts and resources; each bill
//! with its product's billing rule, price source and the date the price was read.

use super::prices::DiscountKind;
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
    /// One row per policy and product: the run's cost, a month at the trace's rate, the
    /// commitment floor (the best published commitment discount: a floor, labelled), the
    /// billing rule, the source and its date. Spot is a note in the caption: its "up to"
    /// figure is a ceiling on the saving, not a price to plan by.
    pub fn table(&self) -> Table {
        let mut caption = "Each run billed by every product that sells its policy (prices change: each row gives the date its price was read, or says none was recorded)".to_string();
        if let Some(note) = self.spot_note() {
            caption = format!("{caption}. {note}");
        }
        let mut table = Table::new(
            caption,
            [
                "policy",
                "product",
                "run",
                "a month at this rate",
                "at best, with a commitment",
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
                .filter(|d| d.kind == DiscountKind::Commitment)
                .min_by(|x, y| x.as_low_as_usd.total_cmp(&y.as_low_as_usd))
                .map_or("-".into(), |d| {
                    format!("{} ({})", usd(d.as_low_as_usd), d.label)
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

    /// Spot, where a billed product offers it: its label, and the products it applies to.
    pub fn spot_note(&self) -> Option<String> {
        let mut products: Vec<&str> = Vec::new();
        let mut label = None;
        for b in &self.bills {
            if let Some(d) = b
                .bill
                .discounts
                .iter()
                .find(|d| d.kind == DiscountKind::Spot)
            {
                label.get_or_insert(d.label.as_str());
                if !products.contains(&b.bill.product_id.as_str()) {
                    products.push(&b.bill.product_id);
                }
            }
        }
        label.map(|label| {
            format!(
                "Left out of 'at best': {label} (offered on {})",
                products.join(", ")
            )
        })
    }

    /// Shows [`Billed::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::super::bill::{BillOptions, InstanceUsage, UsageRecord, bill};
    use super::super::prices::{PriceBook, Size};
    use super::super::runs::PolicyBill;
    use super::*;

    #[test]
    fn at_best_is_the_commitment_floor_and_spot_a_note() {
        let book = PriceBook::load_shipped().unwrap();
        let size = Size {
            vcpu: 2.0,
            memory_gib: 4.0,
        };
        let usage = UsageRecord {
            span_s: 100.0,
            request_seconds: vec![],
            cold_start_seconds: vec![],
            instances: vec![InstanceUsage {
                alive_s: 100.0,
                whole_span: true,
                size,
                cpu_s: 0.0,
                memory_gib_s: 0.0,
            }],
        };
        let b = bill(&book, "aws-ec2-c7i.large", &usage, &BillOptions::default()).unwrap();
        let deepest_commitment = book
            .discounts
            .iter()
            .filter(|d| d.kind == DiscountKind::Commitment)
            .map(|d| d.up_to_fraction)
            .fold(0.0, f64::max);
        let floor = usd(b.month_usd * (1.0 - deepest_commitment));
        let billed = Billed {
            about: String::new(),
            bills: vec![PolicyBill {
                policy: "fixed".into(),
                p99_s: None,
                bill: b,
            }],
        };
        let table = billed.table();
        let best = &table.rows()[0][4];
        assert!(best.starts_with(&format!("{floor} (")), "{best}");
        assert!(!best.contains("Spot"), "{best}");
        let note = billed.spot_note().unwrap();
        assert!(
            note.contains("ceiling on the saving, not a price"),
            "{note}"
        );
        assert!(note.contains("c7i.large"), "{note}");
    }
}
