//! What chapter 9's notebook calls beyond the tables and charts: serving in the release
//! program, falling back to process instances where containers cannot run (saying why and how
//! to get them), and the sentences a run's figures make — every one computed from the run.

use super::InstanceKind;
use super::breakeven::{BreakEven, CoinPlay};
use super::prices::{PriceBook, read_on};
use super::runs::{Billed, Plan, Served};
use super::tables::{describe_policy, ms, usd};
use crate::Result;
use crate::display::Table;

/// The instance kind named by `word`, or process instances when this machine cannot start
/// containers (printed: what is missing and how to get it).
pub fn usable_kind(word: &str) -> Result<InstanceKind> {
    let kind = InstanceKind::parse(word)?;
    #[cfg(target_os = "linux")]
    if kind == InstanceKind::Container
        && let Err(e) = containers_here()
    {
        println!(
            "Containers cannot be started here: {} — serving on process instances instead.",
            e.sentence()
        );
        return Ok(InstanceKind::Process);
    }
    Ok(kind)
}

/// Whether this machine can start an instance's container (namespaces, and the CPU, memory
/// and pids controllers): the first thing missing, with how to get it.
#[cfg(target_os = "linux")]
pub fn containers_here() -> Result<()> {
    let limits = crate::container::Limits {
        cpu: Some(1.0),
        memory: Some(crate::container::MIN_MEMORY),
        pids: Some(16),
    };
    crate::container::support::Support::detect().check(&limits)
}

/// Serves `plan` in the release `virtlab` program (`virtlab serve --json`): the front, the
/// load generator and the instances' starts are timed there, not in a notebook's unoptimised,
/// many-threaded process.
pub fn serve_in_release_build(plan: &Plan) -> Result<Served> {
    let policies: Vec<&str> = plan.policies.iter().map(|p| p.name()).collect();
    let (mut fleet, mut max_instances, mut keep_alive) = (1, 1, 0.0);
    for policy in &plan.policies {
        use super::serve::Policy;
        match *policy {
            Policy::Fixed { instances } => fleet = instances,
            Policy::Autoscale {
                max_instances: m,
                keep_alive_s,
            } => {
                max_instances = m;
                keep_alive = keep_alive_s;
            }
            Policy::PerRequest { max_instances: m } => max_instances = m,
        }
    }
    let t = plan.trace;
    let args: Vec<String> = vec![
        "serve".into(),
        "--json".into(),
        "--policy".into(),
        policies.join(","),
        "--instance".into(),
        plan.kind.name().into(),
        "--fleet".into(),
        fleet.to_string(),
        "--max-instances".into(),
        max_instances.to_string(),
        "--keep-alive".into(),
        keep_alive.to_string(),
        "--rate".into(),
        t.rate_per_s.to_string(),
        "--duration".into(),
        t.duration_s.to_string(),
        "--stretch".into(),
        t.stretch_s.to_string(),
        "--burst".into(),
        t.burst_factor.to_string(),
        "--seed".into(),
        t.seed.to_string(),
        "--samples".into(),
        plan.samples_per_request.to_string(),
        "--vcpu".into(),
        plan.size.vcpu.to_string(),
        "--memory-gib".into(),
        plan.size.memory_gib.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::release::json("the serve run", &args)
}

/// Where the prices came from and when they were read (or that no read date was recorded),
/// and that they change.
pub fn prices_note(book: &PriceBook) -> String {
    let read: Vec<&str> = book
        .products
        .iter()
        .map(|p| p.date_read.as_str())
        .chain(book.discounts.iter().map(|d| d.date_read.as_str()))
        .collect();
    let mut dates: Vec<&str> = read.iter().filter_map(|d| read_on(d)).collect();
    dates.sort_unstable();
    dates.dedup();
    let undated = read.iter().filter(|d| read_on(d).is_none()).count();
    let mut sources: Vec<&str> = book.products.iter().map(|p| p.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let when = match (dates.is_empty(), undated) {
        (true, _) => "none records the date it was read".to_string(),
        (false, 0) => format!("read on {}", dates.join(", ")),
        (false, n) => format!("read on {}; {n} record no read date", dates.join(", ")),
    };
    format!(
        "Published prices of {} products and {} discounts from {} sources; {when}. Prices change: \
         these are what the pages said, not a quote; the table gives each row's page to check.",
        book.products.len(),
        book.discounts.len(),
        sources.len(),
    )
}

/// Where the break-even lines cross, one row each.
pub fn crossings_table(be: &BreakEven) -> Table {
    let mut table = Table::new(
        "Where the lines cross (computed from the measured work per request)",
        ["one", "meets", "at busy share", "a month there"],
    );
    for c in &be.crossings {
        table.row([
            c.a.clone(),
            c.b.clone(),
            format!("{:.2} %", c.busy_share * 100.0),
            usd(c.month_usd),
        ]);
    }
    table
}

/// The run's findings in sentences, each computed from its figures.
pub fn what_we_saw(served: &Served, billed: &Billed, coin: &CoinPlay) -> String {
    let mut said = Vec::new();
    let runs = &served.runs;
    if let Some(fastest) = runs
        .iter()
        .filter(|r| r.summary.p99_s.is_some())
        .min_by(|a, b| {
            a.summary
                .p99_s
                .partial_cmp(&b.summary.p99_s)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    {
        said.push(format!(
            "The lowest p99 was {}'s, {} ms.",
            describe_policy(fastest),
            ms(fastest.summary.p99_s)
        ));
    }
    for run in runs {
        let s = &run.summary;
        if s.cold > 0 {
            let cold_share = s.cold as f64 / s.served.max(1) as f64 * 100.0;
            said.push(format!(
                "{}: {} of {} requests ({cold_share:.1} %) waited for a {} started for them (cold p50 {} ms{}; a start took {} ms at the median); it started {} instances in all.",
                describe_policy(run),
                s.cold,
                s.served,
                served.plan.kind.name(),
                ms(s.cold_p50_s),
                s.warm_p50_s.map_or(String::new(), |w| format!(" against warm p50 {} ms", ms(Some(w)))),
                ms(s.cold_start_p50_s),
                s.instances_started
            ));
        } else {
            said.push(format!(
                "{}: no request waited for a cold start; {} instances served all {} (p99 {} ms).",
                describe_policy(run),
                s.instances_started,
                s.served,
                ms(s.p99_s)
            ));
        }
        if s.dropped > 0 {
            said.push(format!(
                "{}: {} requests were dropped (the queue was full).",
                describe_policy(run),
                s.dropped
            ));
        }
    }
    let month = |b: &super::runs::PolicyBill| b.bill.month_usd;
    if let (Some(cheap), Some(dear)) = (
        billed
            .bills
            .iter()
            .min_by(|a, b| month(a).total_cmp(&month(b))),
        billed
            .bills
            .iter()
            .max_by(|a, b| month(a).total_cmp(&month(b))),
    ) {
        said.push(format!(
            "A month at this trace's rate costs from {} ({} on {}) to {} ({} on {}): {:.0}× apart for the same requests.",
            usd(cheap.bill.month_usd),
            cheap.policy,
            cheap.bill.product,
            usd(dear.bill.month_usd),
            dear.policy,
            dear.bill.product,
            dear.bill.month_usd / cheap.bill.month_usd.max(f64::MIN_POSITIVE)
        ));
    }
    said.push(match &coin.choice {
        Some(o) => format!(
            "Coin play: with p99 at most {:.0} ms and at most {} a month, the cheapest measured choice is {} on {} at {} a month ({} other choices turned down), {}.",
            coin.target_p99_s * 1e3,
            usd(coin.budget_usd),
            o.policy,
            o.product_id,
            usd(o.month_usd),
            coin.rejected.len(),
            coin.latency_is
        ),
        None => format!(
            "Coin play: nothing measured meets p99 at most {:.0} ms within {} a month ({}); loosen one of the two or try another policy.",
            coin.target_p99_s * 1e3,
            usd(coin.budget_usd),
            coin.latency_is
        ),
    });
    said.join("\n")
}

/// Coin play's candidates turned down, with the reason.
pub fn rejected_table(coin: &CoinPlay) -> Table {
    let mut table = Table::new(
        format!("Turned down by coin play ({})", coin.latency_is),
        ["policy", "product", "p99 ms here", "a month", "why"],
    );
    for r in &coin.rejected {
        table.row([
            r.outcome.policy.clone(),
            r.outcome.product_id.clone(),
            ms(Some(r.outcome.p99_s)),
            usd(r.outcome.month_usd),
            r.why.clone(),
        ]);
    }
    table
}
