//! Noisy neighbours, for real: at each overcommit ratio, K tenants as chapter 7's containers
//! (each sold `vcpu` CPUs; with quotas, its cgroup's CPU quota is that), one greedy tenant
//! spinning on every core through the request protocol, the others each serving its own seeded
//! trace through [`serve`](super::serve::serve) with a fleet of one. The victim is the first
//! serving tenant; its run-queue wait is read by [`Watched`]. Every container is stopped and
//! its cgroup removed when a point ends, whichever way it ends (the instances' and the greedy
//! tenant's drops).

use super::chapter::containers_here;
use super::container::{ContainerLauncher, MAX_THREADS};
use super::instance::{Instance, Launcher};
use super::neighbours::watch::Watched;
use super::neighbours::{NeighbourSpec, Neighbours, Point, TenantRun};
use super::prices::Size;
use super::serve::{Policy, ServeRun, ServeSpec, percentile, serve};
use super::trace::Trace;
use crate::display::{Figure, Table};
use crate::load::Sampler;
use crate::plot::LineChart;
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

/// Samples the greedy tenant asks for at a time: tens of milliseconds of spinning (release
/// build) between its looks at whether to stop.
const GREEDY_SAMPLES: u64 = 20_000_000;
/// Memory each tenant is sold (its container's limit): the instance needs a few MiB.
const MEMORY_GIB: f64 = 0.25;

/// Measures every ratio of `spec`, with quotas and without, on this machine's containers.
pub fn measure(spec: &NeighbourSpec) -> Result<Neighbours> {
    spec.check()?;
    let mut points = Vec::new();
    for &ratio in &spec.ratios {
        for quotas in [true, false] {
            points.push(point(spec, ratio, quotas)?);
        }
    }
    Ok(Neighbours {
        spec: spec.clone(),
        cpu: virtlab_core::machine::cpu_model(),
        points,
    })
}

/// Measures `spec` in the release `virtlab` program (`virtlab neighbours --json`: the fronts,
/// load generators and tenants' starts are timed there, not in a notebook's unoptimised
/// process). Where containers cannot be started, prints why and how to get them
/// (`Skipped: … Fix: …`) and returns `None`.
pub fn in_release_build(spec: &NeighbourSpec) -> Result<Option<Neighbours>> {
    spec.check()?;
    if let Err(e) = containers_here() {
        println!("Skipped: {}", e.sentence());
        return Ok(None);
    }
    let ratios: Vec<String> = spec.ratios.iter().map(f64::to_string).collect();
    let args: Vec<String> = vec![
        "neighbours".into(),
        "--json".into(),
        "--ratios".into(),
        ratios.join(","),
        "--vcpu".into(),
        spec.vcpu.to_string(),
        "--rate".into(),
        spec.rate_per_s.to_string(),
        "--duration".into(),
        spec.duration_s.to_string(),
        "--samples".into(),
        spec.samples_per_request.to_string(),
        "--seed".into(),
        spec.seed.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::release::json("the neighbours run", &args).map(Some)
}

/// A notebook cell: shows `draw(measured)` where it was measured; where it was skipped, says
/// again why.
pub fn cell<T: Shown>(
    measured: &Option<Neighbours>,
    draw: impl FnOnce(&Neighbours) -> Result<T>,
) -> Result<()> {
    match measured {
        Some(n) => draw(n).map(|shown| shown.show()),
        None => {
            let why = containers_here().err().map_or_else(
                || {
                    (
                        "the neighbours were not measured: their cell has not run".to_string(),
                        "run the cells above this one, from the top".to_string(),
                    )
                },
                |e| (e.problem().to_string(), e.fix().to_string()),
            );
            println!("Skipped: {}. Fix: {}", why.0, why.1);
            Ok(())
        }
    }
}

/// What a notebook cell can show inline.
pub trait Shown {
    /// Shows it as the cell's output.
    fn show(&self);
}

impl Shown for Table {
    fn show(&self) {
        self.evcxr_display();
    }
}

impl Shown for Figure {
    fn show(&self) {
        self.evcxr_display();
    }
}

fn launcher(
    spec: &NeighbourSpec,
    quotas: bool,
    threads: usize,
    name: &str,
) -> Result<ContainerLauncher> {
    let size = Size {
        vcpu: spec.vcpu,
        memory_gib: MEMORY_GIB,
    };
    let launcher = ContainerLauncher::new(size)?.with_threads(threads, name)?;
    Ok(if quotas {
        launcher
    } else {
        launcher.without_cpu_quota()
    })
}

/// The greedy tenant: one instance asked for work without pause on a thread of its own until
/// stopped. Dropping it stops the thread and so the instance.
struct Greedy {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<f64>>>,
}

impl Greedy {
    fn start(launcher: &ContainerLauncher) -> Result<Greedy> {
        let mut instance = launcher.launch()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("greedy".into())
            .spawn(move || spin(instance.as_mut(), &stopping))
            .map_err(|e| Error::os("starting the greedy tenant's thread", e))?;
        Ok(Greedy {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops it; the CPU-seconds it got.
    fn stop(mut self) -> Result<f64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(Error::bug("the greedy tenant's thread panicked")),
        }
    }
}

fn spin(instance: &mut dyn Instance, stop: &AtomicBool) -> Result<f64> {
    let before = instance.reading()?.cpu_s;
    let mut seed = 0;
    while !stop.load(Ordering::Relaxed) {
        instance.call(GREEDY_SAMPLES, seed)?;
        seed += 1;
    }
    Ok(instance.reading()?.cpu_s - before)
}

impl Drop for Greedy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One point: `spec.tenants(ratio)` tenants, with or without quotas.
fn point(spec: &NeighbourSpec, ratio: f64, quotas: bool) -> Result<Point> {
    let tenants = spec.tenants(ratio);
    let serving: Arc<dyn Launcher> = Arc::new(launcher(spec, quotas, 1, "tenant")?);
    let greedy_launcher = launcher(spec, quotas, spec.cores.min(MAX_THREADS), "greedy")?;
    let traces: Vec<Trace> = (1..tenants)
        .map(|t| Trace::generate(spec.trace(t)))
        .collect::<Result<_>>()?;
    let serve_spec = ServeSpec {
        samples_per_request: spec.samples_per_request,
        ..ServeSpec::new(Policy::Fixed { instances: 1 })
    };
    let watched: Vec<Arc<Watched>> = traces
        .iter()
        .map(|_| Arc::new(Watched::new(serving.clone())))
        .collect();
    let sampler = Sampler::start();
    let started = Instant::now();
    let greedy = Greedy::start(&greedy_launcher)?;
    let runs: Vec<Result<ServeRun>> = std::thread::scope(|scope| {
        let handles: Vec<_> = traces
            .iter()
            .zip(&watched)
            .map(|(trace, watched)| {
                let launcher: Arc<dyn Launcher> = watched.clone();
                scope.spawn(move || serve(trace, &serve_spec, launcher))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::bug("a tenant's serving thread panicked")))
            })
            .collect()
    });
    let greedy_cpu_s = greedy.stop()?;
    let seconds = started.elapsed().as_secs_f64();
    // Every container's shim has been waited for, its pid 1's CPU time with it: the sampler
    // counts the tenants as ours, and "others" are programs outside the experiment.
    let load = sampler.stop();
    let runs: Vec<ServeRun> = runs.into_iter().collect::<Result<_>>()?;
    let victim = tenant_run(&runs[0], &watched[0])?;
    let all: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.requests.iter().filter(|q| !q.dropped))
        .map(|q| q.latency_s)
        .collect();
    Ok(Point {
        ratio,
        tenants,
        quotas,
        victim,
        all_p99_s: percentile(&all, 99.0),
        greedy_cpu_s,
        seconds,
        load,
    })
}

fn tenant_run(run: &ServeRun, watched: &Watched) -> Result<TenantRun> {
    let life = watched.lives().into_iter().next().ok_or_else(|| {
        Error::new(
            "the victim's instance stopped before its scheduling figures could be read",
            "run it again; if it repeats, check that /proc/<pid>/schedstat exists (CONFIG_SCHED_INFO)",
        )
    })?;
    Ok(TenantRun {
        served: run.summary.served,
        latencies_s: run
            .requests
            .iter()
            .filter(|r| !r.dropped)
            .map(|r| r.latency_s)
            .collect(),
        alive_s: life.alive_s,
        cpu_s: life.cpu_s,
        waited_s: life.waited_s,
    })
}

fn quota_word(quotas: bool) -> &'static str {
    if quotas {
        "quotas (cpu.max = vCPUs sold)"
    } else {
        "no quotas"
    }
}

/// One row per point: tenants, the victim's latency and wait, the greedy tenant's CPU,
/// and how busy the machine was otherwise.
pub fn table(n: &Neighbours) -> Table {
    let mut table = Table::new(
        format!(
            "Noisy neighbours: tenants sold {} vCPU each on {} cores, one greedy; {}",
            n.spec.vcpu, n.spec.cores, n.cpu
        ),
        [
            "ratio",
            "tenants",
            "CPU quotas",
            "victim served",
            "victim p50 ms",
            "victim p99 ms",
            "all tenants p99 ms",
            "victim waited for a CPU (steal a VM would see)",
            "greedy CPU-s per s",
            "others' CPUs",
            "this machine's steal",
        ],
    );
    for p in &n.points {
        let ms = |s: Option<f64>| s.map_or("-".into(), |s| format!("{:.2}", s * 1e3));
        table.row([
            format!("{}×", p.ratio),
            p.tenants.to_string(),
            if p.quotas { "yes" } else { "no" }.to_string(),
            p.victim.served.to_string(),
            ms(p.victim.p50_s()),
            ms(p.victim.p99_s()),
            ms(p.all_p99_s),
            format!("{:.1}%", 100.0 * p.victim.steal_share()),
            format!("{:.2}", p.greedy_cpu_s / p.seconds.max(1e-9)),
            p.load
                .as_ref()
                .map_or("-".into(), |l| format!("{:.2}", l.others_cpus)),
            p.load
                .as_ref()
                .map_or("-".into(), |l| format!("{:.1}%", 100.0 * l.steal_share())),
        ]);
    }
    table
}

/// The victim's p99 against the overcommit ratio: one line with quotas, one without.
pub fn chart(n: &Neighbours) -> Result<Figure> {
    let mut chart = LineChart::new("The victim's p99 latency against overcommit")
        .x_label(format!(
            "overcommit ratio (vCPUs sold / {} cores)",
            n.spec.cores
        ))
        .y_label("victim's p99 latency, ms");
    for quotas in [true, false] {
        let points: Vec<(f64, f64)> = n
            .line(quotas)
            .iter()
            .filter_map(|p| Some((p.ratio, p.victim.p99_s()? * 1e3)))
            .collect();
        chart = chart.series(quota_word(quotas), points);
    }
    Ok(chart.render()?)
}

/// What this run measured, as a table of sentences.
pub fn what_we_saw(n: &Neighbours) -> Table {
    let mut table = Table::new("What this run measured", ["", "what we saw"]);
    for (i, said) in n.what_we_saw().into_iter().enumerate() {
        table.row([(i + 1).to_string(), said]);
    }
    table
}
