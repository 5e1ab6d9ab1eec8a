//! Measures chapter 9's figures on this machine: a process instance's cold start and warm
//! request (direct, no front), then the three policies on one default trace through the front
//! (p50/p95/p99, cold and warm, the front's overhead), each run billed and a month projected,
//! break-even for the measured work, and coin play.
//!
//! Build the instance program first (release), then run:
//! `cargo build --release -p virtlab-cloud --bins && cargo run --release -p virtlab-cloud --example serve_policies`

use std::sync::Arc;
use std::time::Instant;
use virtlab_cloud::Result;
use virtlab_cloud::bill::{BillOptions, bill};
use virtlab_cloud::breakeven::{Outcome, Work, break_even, coin_play};
use virtlab_cloud::instance::{Launcher, ProcessLauncher};
use virtlab_cloud::prices::{PriceBook, Size};
use virtlab_cloud::serve::{Policy, ServeSpec, percentile, serve};
use virtlab_cloud::trace::{Trace, TraceSpec};

fn ms(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{:.2}", s * 1e3))
}

fn main() -> Result<()> {
    let size = Size {
        vcpu: 1.0,
        memory_gib: 2.0,
    };
    let launcher = Arc::new(ProcessLauncher::find(size)?);
    let samples = ServeSpec::new(Policy::Fixed { instances: 1 }).samples_per_request;

    // Direct: 30 cold starts, and 200 warm requests on one instance.
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for i in 0..30 {
        let t = Instant::now();
        let mut inst = launcher.launch()?;
        cold.push(t.elapsed().as_secs_f64());
        if i == 0 {
            for seed in 0..200 {
                let t = Instant::now();
                inst.call(samples, seed)?;
                warm.push(t.elapsed().as_secs_f64());
            }
        }
    }
    println!(
        "process instance, direct: cold start p50 {} ms (p95 {}), warm request of {samples} samples p50 {} ms (p95 {})",
        ms(percentile(&cold, 50.0)),
        ms(percentile(&cold, 95.0)),
        ms(percentile(&warm, 50.0)),
        ms(percentile(&warm, 95.0))
    );

    let trace = Trace::generate(TraceSpec::default())?;
    println!(
        "trace: {:?}, {} requests, {:.1}/s on average",
        trace.spec,
        trace.arrivals.len(),
        trace.mean_rate()
    );
    let book = PriceBook::load_shipped()?;
    let policies = [
        Policy::Fixed { instances: 2 },
        Policy::Autoscale {
            max_instances: 4,
            keep_alive_s: 1.0,
        },
        Policy::PerRequest { max_instances: 4 },
    ];
    let mut outcomes = Vec::new();
    let mut work = None;
    for policy in policies {
        let run = serve(&trace, &ServeSpec::new(policy), launcher.clone())?;
        let s = &run.summary;
        println!(
            "{:<12} served {} dropped {} queued {} cold {} | p50 {} p95 {} p99 {} ms | cold p50 {} warm p50 {} ms | front overhead p50 {} ms | instances {} (max alive {}) | CPU {:.2} s, memory {:.4} GiB-s",
            policy.name(),
            s.served,
            s.dropped,
            s.queued,
            s.cold,
            ms(s.p50_s),
            ms(s.p95_s),
            ms(s.p99_s),
            ms(s.cold_p50_s),
            ms(s.warm_p50_s),
            ms(s.front_overhead_p50_s),
            s.instances_started,
            s.max_alive,
            s.cpu_s,
            s.memory_gib_s
        );
        let usage = run.usage();
        if work.is_none() {
            let service: Vec<f64> = usage.request_seconds.clone();
            work = percentile(&service, 50.0).map(|v| Work {
                vcpu_s_per_request: v,
                memory_gib: size.memory_gib,
            });
        }
        for product in book.products.iter().filter(|p| policy.fits(p.model)) {
            let id = product.id.as_str();
            let b = bill(&book, id, &usage, &BillOptions::default())?;
            println!(
                "    {:<58} run ${:.6}  month ${:>10.2}",
                b.product, b.run_usd, b.month_usd
            );
            for d in &b.discounts {
                println!("        {}: ${:.2}", d.label, d.as_low_as_usd);
            }
            outcomes.push(Outcome {
                policy: policy.name().into(),
                product_id: id.into(),
                p99_s: s.p99_s.unwrap_or(f64::INFINITY),
                month_usd: b.month_usd,
            });
        }
    }
    if let Some(work) = work {
        let be = break_even(&book, work, "aws-ec2-c7i.large")?;
        println!(
            "break-even for {:.2} ms of one vCPU a request ({:.3e} requests a month at 100% busy of a c7i.large):",
            work.vcpu_s_per_request * 1e3,
            be.requests_at_full
        );
        for c in &be.crossings {
            println!(
                "    {} meets {} at {:.1}% busy, ${:.2} a month",
                c.a,
                c.b,
                c.busy_share * 100.0,
                c.month_usd
            );
        }
    }
    let cp = coin_play(&outcomes, 0.050, 100.0)?;
    match &cp.choice {
        Some(o) => println!(
            "coin play (p99 <= 50 ms, <= $100 a month): {} on {}, ${:.2}",
            o.policy, o.product_id, o.month_usd
        ),
        None => println!("coin play (p99 <= 50 ms, <= $100 a month): nothing measured meets both"),
    }
    Ok(())
}
