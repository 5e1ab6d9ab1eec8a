//! Policies served side by side on one trace with one kind of instance ([`serve_policies`]),
//! and each run billed by every product that sells its policy ([`bill_served`]): the
//! measurements chapter 9's tables, charts and coin play are computed from.

use super::InstanceKind;
use super::bill::{Bill, BillOptions, bill};
use super::breakeven::{Outcome, Work};
use super::prices::{KNOWN_PROVIDERS, PriceBook, Size};
use super::serve::{Policy, ServeRun, ServeSpec, serve};
use super::trace::{Trace, TraceSpec};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What to serve: one trace, the policies to compare on it, and the instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The trace every policy is measured on.
    pub trace: TraceSpec,
    /// The policies, served one after another.
    pub policies: Vec<Policy>,
    /// What an instance is.
    pub kind: InstanceKind,
    /// The instance type every instance is sold as (and, as a container, limited to).
    pub size: Size,
    /// Monte Carlo samples per request: the size of one request's work.
    pub samples_per_request: u64,
}

/// Every policy's run on the same trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Served {
    /// What was asked for.
    pub plan: Plan,
    /// The trace as generated from the plan's spec.
    pub trace: Trace,
    /// One run per policy, in the plan's order.
    pub runs: Vec<ServeRun>,
}

/// Serves `plan.trace` once per policy, in order, each on fresh instances of `plan.kind`.
pub fn serve_policies(plan: &Plan) -> Result<Served> {
    if plan.policies.is_empty() {
        return Err(Error::invalid(
            "the list of policies",
            "empty",
            "give one or more of fixed, autoscale and per-request",
        ));
    }
    let trace = Trace::generate(plan.trace)?;
    if trace.arrivals.is_empty() {
        return Err(Error::invalid(
            "the trace",
            "without a single request",
            "give a higher rate or a longer duration",
        ));
    }
    let launcher = plan.kind.launcher(plan.size)?;
    let runs = plan
        .policies
        .iter()
        .map(|policy| {
            let spec = ServeSpec {
                samples_per_request: plan.samples_per_request,
                ..ServeSpec::new(*policy)
            };
            serve(&trace, &spec, launcher.clone())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Served {
        plan: plan.clone(),
        trace,
        runs,
    })
}

impl Served {
    /// The median cold start (start → ready) over every instance this run started, whichever
    /// policy started it; None when none started.
    pub fn cold_start_p50_s(&self) -> Option<f64> {
        let mut starts: Vec<f64> = self
            .runs
            .iter()
            .flat_map(|r| r.instances.iter().map(|i| i.cold_start_s))
            .collect();
        (!starts.is_empty()).then(|| crate::stats::median(&mut starts))
    }

    /// What one request costs, measured: CPU-seconds per served request over every run (from
    /// each instance's own counters: its cgroup for a container, /proc for a process), and the
    /// instance type's memory.
    pub fn work(&self) -> Result<Work> {
        let cpu_s: f64 = self.runs.iter().map(|r| r.summary.cpu_s).sum();
        let served: usize = self.runs.iter().map(|r| r.summary.served).sum();
        if served == 0 || cpu_s <= 0.0 {
            return Err(Error::new(
                "no request was served, so there is no measured work per request",
                "serve a trace with requests in it (a higher rate or a longer duration)",
            ));
        }
        Ok(Work {
            vcpu_s_per_request: cpu_s / served as f64,
            memory_gib: self.plan.size.memory_gib,
        })
    }
}

/// One policy's run billed as one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyBill {
    /// The policy's name (fixed, autoscale, per-request).
    pub policy: String,
    /// The run's p99 latency, seconds (what coin play weighs against the price); `None` when
    /// nothing was served.
    pub p99_s: Option<f64>,
    /// The product's bill for the run and for a month at its rate.
    pub bill: Bill,
}

/// Every run billed by every product that sells its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Billed {
    /// What the price file says of itself.
    pub about: String,
    /// One per run and product that sells its policy.
    pub bills: Vec<PolicyBill>,
}

impl Billed {
    /// Each bill as an outcome coin play chooses among.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.bills
            .iter()
            .map(|b| Outcome {
                policy: b.policy.clone(),
                product_id: b.bill.product_id.clone(),
                p99_s: b.p99_s.unwrap_or(f64::INFINITY),
                month_usd: b.bill.month_usd,
            })
            .collect()
    }
}

/// Bills every run of `served` with each product of `book` that sells its policy (only those of
/// `provider`, when given), for the run and for a month at the trace's rate. A request-billed
/// container is billed at the plan's instance size, the size every instance was sold as.
pub fn bill_served(book: &PriceBook, served: &Served, provider: Option<&str>) -> Result<Billed> {
    if let Some(p) = provider
        && !KNOWN_PROVIDERS.contains(&p)
    {
        return Err(Error::invalid(
            "the provider",
            format!("{p:?}"),
            format!("use one of {}", KNOWN_PROVIDERS.join(", ")),
        ));
    }
    let opts = BillOptions {
        request_container: served.plan.size,
        ..BillOptions::default()
    };
    let mut bills = Vec::new();
    for run in &served.runs {
        let usage = run.usage();
        let products = book
            .products
            .iter()
            .filter(|p| run.spec.policy.fits(p.model))
            .filter(|p| provider.is_none_or(|want| p.provider == want));
        for product in products {
            bills.push(PolicyBill {
                policy: run.spec.policy.name().into(),
                p99_s: run.summary.p99_s,
                bill: bill(book, &product.id, &usage, &opts)?,
            });
        }
    }
    Ok(Billed {
        about: book.about.clone(),
        bills,
    })
}
