//! What a virtual machine costs, measured from outside it: how long each phase of making one
//! takes (open the device, create the VM, give it memory, create its vCPU, run to the guest's
//! first line), the memory each adds, a guest I/O exit's round trip beside a native system call
//! and a function call, and the same compute loop in the guest and natively.
//!
//! Every figure here depends on the virtualization mode ([`super::Support::label`]): it is
//! carried with the results and printed beside them.
//!
//! Why one long file: three measurements (start phases, exit round trip, guest vs native loop)
//! that share the timing helpers and their tables; about a quarter is tests.

use super::guest::{Guest, Ring, native_compute};
use super::kind::MAX_VMS;
use super::{GuestExit, VcpuCounts, Vm, support};
use serde::Serialize;
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::stats::median;
use virtlab_core::units;
use virtlab_display::plot::BarChart;
use virtlab_display::{Figure, Table};

/// Guest memory of the VMs made to measure costs.
const MEASURE_MEMORY: u64 = 2 << 20;

/// Everything this module measures, for the `vm-cost` command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Costs {
    /// Making VMs, phase by phase.
    pub start: StartCost,
    /// A guest exit beside a syscall and a call.
    pub exit: ExitCost,
    /// The same loop in the guest and natively.
    pub compute: ComputeCost,
}

impl Costs {
    /// Checks every size first, then measures [`start_cost`], [`exit_cost`] and
    /// [`compute_cost`] in turn.
    pub fn measure(vms: usize, exits: u32, compute_ms: u64) -> Result<Costs> {
        check_vms(vms)?;
        check_exits(exits)?;
        check_compute_ms(compute_ms)?;
        support().ready()?;
        Ok(Costs {
            start: start_cost(vms)?,
            exit: exit_cost(exits)?,
            compute: compute_cost(compute_ms)?,
        })
    }

    /// The three tables, one after another, as text.
    pub fn tables(&self) -> [Table; 3] {
        [self.start.table(), self.exit.table(), self.compute.table()]
    }
}

fn check_vms(vms: usize) -> Result<usize> {
    virtlab_core::error::check_range("VMs", vms, 2, MAX_VMS)
}

fn check_exits(exits: u32) -> Result<u32> {
    virtlab_core::error::check_range("exits", exits, 100, 10_000_000)
}

fn check_compute_ms(ms: u64) -> Result<u64> {
    virtlab_core::error::check_range("the compute time (ms)", ms, 10, 60_000)
}

/// The start of one VM, phase by phase, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StartSample {
    /// Opening the KVM device.
    pub open_ms: f64,
    /// `KVM_CREATE_VM`.
    pub create_vm_ms: f64,
    /// Guest memory mapped, written and registered.
    pub memory_ms: f64,
    /// `KVM_CREATE_VCPU` and its registers.
    pub vcpu_ms: f64,
    /// From the first `KVM_RUN` to the guest's first report.
    pub first_line_ms: f64,
}

impl StartSample {
    /// From opening the device to the first guest line.
    pub fn total_ms(&self) -> f64 {
        self.open_ms + self.create_vm_ms + self.memory_ms + self.vcpu_ms + self.first_line_ms
    }
}

/// One figure of a [`StartSample`].
type Column = fn(&StartSample) -> f64;

/// Starting `samples.len()` VMs one after another, all kept alive until the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartCost {
    /// The virtualization mode these figures were taken in.
    pub mode: String,
    /// The first VM of the process pays for one-time kernel and library set-up: kept apart.
    pub first: StartSample,
    /// Medians over the VMs after the first.
    pub typical: StartSample,
    /// Every VM, in the order made.
    pub samples: Vec<StartSample>,
    /// Guest memory each VM was given.
    pub guest_memory_bytes: u64,
    /// Guest memory each VM actually touched (resident pages), median.
    pub guest_touched_bytes: u64,
    /// This process's resident memory growth per VM (guest pages touched, the vCPU's shared
    /// `kvm_run` page, our bookkeeping). KVM's own kernel structures are not in it.
    pub rss_per_vm_bytes: Option<f64>,
}

/// Makes `vms` VMs (2 or more) one after another, each run to its first report, and times
/// every phase.
pub fn start_cost(vms: usize) -> Result<StartCost> {
    check_vms(vms)?;
    let found = support();
    found.ready()?;
    let guest = Guest::essay_loop(1, None)?;
    let before = virtlab_core::memory::resident_bytes();
    let mut alive = Vec::with_capacity(vms);
    let mut samples = Vec::with_capacity(vms);
    for i in 0..vms {
        let (vm, sample) = start_one(&format!("cost-{}", i + 1), MEASURE_MEMORY, &guest)?;
        samples.push(sample);
        alive.push(vm);
    }
    let after = virtlab_core::memory::resident_bytes();
    let mut touched: Vec<f64> = alive.iter().map(|vm| vm.resident_bytes() as f64).collect();
    drop(alive);
    let column = |f: fn(&StartSample) -> f64| {
        let mut v: Vec<f64> = samples[1..].iter().map(f).collect();
        median(&mut v)
    };
    Ok(StartCost {
        mode: found.label(),
        first: samples[0],
        typical: StartSample {
            open_ms: column(|s| s.open_ms),
            create_vm_ms: column(|s| s.create_vm_ms),
            memory_ms: column(|s| s.memory_ms),
            vcpu_ms: column(|s| s.vcpu_ms),
            first_line_ms: column(|s| s.first_line_ms),
        },
        samples,
        guest_memory_bytes: MEASURE_MEMORY,
        guest_touched_bytes: median(&mut touched) as u64,
        rss_per_vm_bytes: before
            .zip(after)
            .map(|(b, a)| (a as f64 - b as f64) / vms as f64),
    })
}

/// Makes one VM and runs it to its first report.
fn start_one(name: &str, memory: u64, guest: &Guest) -> Result<(Vm, StartSample)> {
    let mut vm = Vm::new(name, memory, guest)?;
    let t = Instant::now();
    let exit = vm.run()?;
    let first_line = t.elapsed();
    if exit != GuestExit::Report(0) {
        return Err(unexpected(name, &exit));
    }
    let s = vm.startup();
    Ok((
        vm,
        StartSample {
            open_ms: ms(s.open),
            create_vm_ms: ms(s.create_vm),
            memory_ms: ms(s.memory),
            vcpu_ms: ms(s.vcpu),
            first_line_ms: ms(first_line),
        },
    ))
}

impl StartCost {
    /// The measurements as a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("Making a VM, phase by phase (ms), {}", self.mode),
            [
                "phase",
                "first VM of the process",
                "typical (median of the rest)",
            ],
        );
        let rows: [(&str, Column); 6] = [
            ("open /dev/kvm", |s| s.open_ms),
            ("KVM_CREATE_VM", |s| s.create_vm_ms),
            ("guest memory + tables + program", |s| s.memory_ms),
            ("KVM_CREATE_VCPU + registers", |s| s.vcpu_ms),
            ("first KVM_RUN → first guest line", |s| s.first_line_ms),
            ("total", StartSample::total_ms),
        ];
        for (phase, f) in rows {
            t.row([
                phase.to_string(),
                format!("{:.3}", f(&self.first)),
                format!("{:.3}", f(&self.typical)),
            ]);
        }
        t.row([
            "guest memory: given → touched by the guest".to_string(),
            "-".into(),
            format!(
                "{} → {}",
                units::bytes(self.guest_memory_bytes),
                units::bytes(self.guest_touched_bytes)
            ),
        ]);
        t.row([
            "our resident memory per VM (KVM's kernel side not counted)".to_string(),
            "-".into(),
            self.rss_per_vm_bytes
                .map_or("not observable".into(), |b| units::bytes(b.max(0.0) as u64)),
        ]);
        t
    }

    /// The first VM's start and a typical one's, each a bar stacked from its phases.
    pub fn plot(&self) -> Result<Figure> {
        let phases = ["open", "create VM", "memory", "vCPU", "first line"];
        let values = |s: &StartSample| {
            [
                s.open_ms,
                s.create_vm_ms,
                s.memory_ms,
                s.vcpu_ms,
                s.first_line_ms,
            ]
        };
        BarChart::new(format!("Making a VM ({})", short_mode(&self.mode)), &phases)
            .x_label("ms")
            .bar("first VM", &values(&self.first))
            .bar("typical VM", &values(&self.typical))
            .render()
            .map_err(Into::into)
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// The price of faking hardware: one guest exit and return, next to things that do not leave
/// this machine's CPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitCost {
    /// The virtualization mode these figures were taken in.
    pub mode: String,
    /// Exits timed.
    pub exits: u32,
    /// Guest `out` → KVM → our code → back into the guest, median per exit over batches.
    pub guest_exit_ns: f64,
    /// A `getppid` system call, native, median.
    pub syscall_ns: f64,
    /// A function call, native, median.
    pub function_call_ns: f64,
}

/// Runs a guest that reports `exits` times in a row (no pause) and times the round trips.
pub fn exit_cost(exits: u32) -> Result<ExitCost> {
    check_exits(exits)?;
    let found = support();
    found.ready()?;
    let mut vm = Vm::new("exits", MEASURE_MEMORY, &Guest::essay_loop(exits, None)?)?;
    // Batches of 50 exits, timed as a whole: the clock costs as much as a fast exit.
    const BATCH: u32 = 50;
    let mut samples = Vec::new();
    let mut reported = 0;
    expect_report(&mut vm, 0)?;
    while reported + BATCH < exits {
        let t = Instant::now();
        for _ in 0..BATCH {
            reported += 1;
            expect_report(&mut vm, reported)?;
        }
        samples.push(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    let costs = super::probe::instruction_costs(201)?;
    let ns_of = |name: &str| {
        costs
            .iter()
            .find(|c| c.name == name)
            .map_or(f64::NAN, |c| c.ns)
    };
    Ok(ExitCost {
        mode: found.label(),
        exits,
        guest_exit_ns: median(&mut samples),
        syscall_ns: ns_of("getppid system call"),
        function_call_ns: ns_of("function call"),
    })
}

fn expect_report(vm: &mut Vm, n: u32) -> Result<()> {
    match vm.run()? {
        GuestExit::Report(got) if got == n => Ok(()),
        other => Err(unexpected(vm.name(), &other)),
    }
}

impl ExitCost {
    /// The measurements as a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("The price of faking hardware (median ns), {}", self.mode),
            ["round trip", "ns", "× a function call"],
        );
        for (what, ns) in [
            (
                "guest I/O exit: out → KVM → our code → guest",
                self.guest_exit_ns,
            ),
            ("system call (getppid), native", self.syscall_ns),
            ("function call, native", self.function_call_ns),
        ] {
            t.row([
                what.to_string(),
                format!("{ns:.1}"),
                format!("{:.0}", ns / self.function_call_ns.max(1e-3)),
            ]);
        }
        t
    }

    /// The measurements as a bar chart, on a logarithmic axis (they differ a thousandfold).
    pub fn plot(&self) -> Result<Figure> {
        log_bars(
            format!("One round trip ({})", short_mode(&self.mode)),
            "ns (median), log scale",
            [
                ("guest I/O exit", self.guest_exit_ns),
                ("system call", self.syscall_ns),
                ("function call", self.function_call_ns),
            ],
        )
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// The compute loop run in one guest: where, how long, and what KVM did meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GuestLoop {
    /// The privilege level the vCPU was at when it reported the loop's end (read back from KVM).
    pub ring: u8,
    /// Rounds the guest ran.
    pub rounds: u32,
    /// ns per round (the median of the runs).
    pub ns_per_round: f64,
    /// KVM's counters between the two reports around the loop (the median run's); `None`
    /// where the kernel has no statistics fd.
    pub counts: Option<VcpuCounts>,
}

impl GuestLoop {
    /// Instructions KVM emulated per round of the loop.
    pub fn emulated_per_round(&self) -> Option<f64> {
        self.counts
            .map(|c| c.emulated_instructions as f64 / f64::from(self.rounds))
    }
}

/// The same compute loop (`dec rcx; jnz`) in a guest's ring 0, in its ring 3, and natively.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComputeCost {
    /// The virtualization mode these figures were taken in.
    pub mode: String,
    /// In ring 0 (kernel mode), where every guest of this chapter runs.
    pub kernel: GuestLoop,
    /// In ring 3 (user mode), after the guest's `iretq`.
    pub user: GuestLoop,
    /// Rounds the native loop ran.
    pub native_rounds: u32,
    /// ns per round natively (median of 3).
    pub native_ns_per_round: f64,
}

impl ComputeCost {
    /// How many times the native time per round `guest` took.
    pub fn slowdown(&self, guest: &GuestLoop) -> f64 {
        guest.ns_per_round / self.native_ns_per_round.max(1e-6)
    }

    /// The measurements as a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("The same loop in the guest and natively, {}", self.mode),
            [
                "where",
                "ring read back from the vCPU",
                "rounds",
                "ns per round",
                "× native",
                "instructions KVM emulated per round",
                "exits during the loop",
            ],
        );
        for (what, guest) in [
            ("guest, ring 0 (kernel mode)", &self.kernel),
            ("guest, ring 3 (user mode)", &self.user),
        ] {
            t.row([
                what.to_string(),
                guest.ring.to_string(),
                guest.rounds.to_string(),
                ns(guest.ns_per_round),
                ratio(self.slowdown(guest)),
                guest
                    .emulated_per_round()
                    .map_or("not counted here".into(), |n| format!("{n:.3}")),
                guest
                    .counts
                    .map_or("not counted here".into(), |c| c.exits.to_string()),
            ]);
        }
        t.row([
            "native (this CPU)".to_string(),
            "-".into(),
            self.native_rounds.to_string(),
            ns(self.native_ns_per_round),
            "1.0".into(),
            "-".into(),
            "-".into(),
        ]);
        t
    }

    /// What this run showed, in words chosen from its numbers: how ring 3 and ring 0 compare
    /// with native, and how many of their instructions KVM emulated.
    pub fn summary(&self) -> String {
        let speed = |guest: &GuestLoop| {
            let times = self.slowdown(guest);
            let pace = if times < 1.25 {
                format!("about native speed ({times:.1}× native's time per round)")
            } else if times < 10.0 {
                format!("{times:.1}× native's time per round")
            } else {
                format!("{} times slower than native", ratio(times))
            };
            let emulated = match guest.emulated_per_round() {
                Some(n) if n >= 0.01 => {
                    format!("KVM emulated {n:.1} instructions per round (the loop has 2)")
                }
                Some(_) => "KVM emulated none of the loop's instructions".into(),
                None => "this kernel does not count emulated instructions".into(),
            };
            format!(
                "{} ns per round, {pace}; {emulated}",
                ns(guest.ns_per_round)
            )
        };
        format!(
            "In ring 3 the guest ran the loop at {}. In ring 0: {}. Natively: {} ns per round.",
            speed(&self.user),
            speed(&self.kernel),
            ns(self.native_ns_per_round)
        )
    }

    /// The measurements as a bar chart, on a logarithmic axis (they may differ a thousandfold).
    pub fn plot(&self) -> Result<Figure> {
        log_bars(
            format!("One loop round ({})", short_mode(&self.mode)),
            "ns per round (dec rcx; jnz), log scale",
            [
                ("guest, ring 0", self.kernel.ns_per_round),
                ("guest, ring 3", self.user.ns_per_round),
                ("native", self.native_ns_per_round),
            ],
        )
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// One bar of nanoseconds per label, on a logarithmic axis (the costs compared differ up to a
/// thousandfold).
fn log_bars(title: String, x_label: &str, bars: [(&str, f64); 3]) -> Result<Figure> {
    let mut chart = BarChart::new(title, &["ns"]).x_label(x_label).log_x();
    for (label, ns) in bars {
        chart = chart.bar(label, &[ns]);
    }
    chart.render().map_err(Into::into)
}

/// Nanoseconds with the digits that matter: `1700`, `35.2`, `0.52`.
fn ns(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A ratio with the digits that matter: `2700`, `35`, `3.4`.
fn ratio(times: f64) -> String {
    if times >= 10.0 {
        format!("{times:.0}")
    } else {
        format!("{times:.1}")
    }
}

/// Runs the loop in a guest's ring 0, in its ring 3 and natively, each sized to take about
/// `target_ms` (after a short calibration run), three times each, and compares the median time
/// per round.
pub fn compute_cost(target_ms: u64) -> Result<ComputeCost> {
    check_compute_ms(target_ms)?;
    let found = support();
    found.ready()?;
    let target = target_ms as f64 * 1e6;
    let kernel = guest_loop(Ring::Kernel, target)?;
    let user = guest_loop(Ring::User, target)?;

    let native_probe = 1_000_000;
    let native_probe_ns = native_loop_ns(native_probe) / f64::from(native_probe);
    let native_rounds = rounds_for(target, native_probe_ns);
    let mut native: Vec<f64> = (0..3)
        .map(|_| native_loop_ns(native_rounds) / f64::from(native_rounds))
        .collect();
    Ok(ComputeCost {
        mode: found.label(),
        kernel,
        user,
        native_rounds,
        native_ns_per_round: median(&mut native),
    })
}

fn rounds_for(target_ns: f64, ns_per_round: f64) -> u32 {
    (target_ns / ns_per_round.max(1e-3)).clamp(1000.0, f64::from(super::guest::MAX_ITERATIONS))
        as u32
}

/// The loop in `ring`, sized to take about `target_ns` after a calibration run; the median of
/// three runs.
fn guest_loop(ring: Ring, target_ns: f64) -> Result<GuestLoop> {
    let probe = 10_000;
    let calibration = run_guest_loop(ring, probe)?;
    let rounds = rounds_for(target_ns, calibration.ns_per_round);
    let mut runs = (0..3)
        .map(|_| run_guest_loop(ring, rounds))
        .collect::<Result<Vec<_>>>()?;
    runs.sort_by(|a, b| a.ns_per_round.total_cmp(&b.ns_per_round));
    Ok(runs[1])
}

/// One VM running the loop in `ring`: time and KVM's counters between its two reports.
fn run_guest_loop(ring: Ring, rounds: u32) -> Result<GuestLoop> {
    let mut vm = Vm::new("compute", MEASURE_MEMORY, &Guest::compute(rounds, ring)?)?;
    expect_report(&mut vm, 0)?;
    let before = vm.counts();
    let t = Instant::now();
    expect_report(&mut vm, 1)?;
    let ns = t.elapsed().as_nanos() as f64;
    let counts = vm.counts().zip(before).map(|(after, b)| after.since(&b));
    Ok(GuestLoop {
        ring: vm.ring()?,
        rounds,
        ns_per_round: ns / f64::from(rounds),
        counts,
    })
}

fn native_loop_ns(rounds: u32) -> f64 {
    let t = Instant::now();
    native_compute(rounds);
    t.elapsed().as_nanos() as f64
}

fn unexpected(name: &str, exit: &GuestExit) -> Error {
    Error::bug(format!(
        "{name} did not report as its program says: it {exit}"
    ))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The mode's first words, for a chart title.
fn short_mode(mode: &str) -> &str {
    mode.split(':').next().unwrap_or(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::tests::kvm_usable;

    #[test]
    fn bad_sizes_are_refused() {
        assert!(start_cost(1).is_err());
        assert!(start_cost(MAX_VMS + 1).is_err());
        assert!(exit_cost(5).is_err());
        assert!(compute_cost(1).is_err());
    }

    fn guest_loop(ring: u8, ns_per_round: f64, emulated: Option<u64>) -> GuestLoop {
        GuestLoop {
            ring,
            rounds: 1000,
            ns_per_round,
            counts: emulated.map(|emulated_instructions| VcpuCounts {
                exits: 1,
                emulated_instructions,
            }),
        }
    }

    #[test]
    fn the_summary_is_worded_from_the_numbers() {
        let pvm = ComputeCost {
            mode: "m".into(),
            kernel: guest_loop(0, 1000.0, Some(2000)),
            user: guest_loop(3, 0.6, Some(0)),
            native_rounds: 1000,
            native_ns_per_round: 0.5,
        };
        let text = pvm.summary();
        for fact in [
            "In ring 3 the guest ran the loop at 0.60 ns per round, about native speed (1.2×",
            "KVM emulated none of the loop's instructions",
            "In ring 0: 1000 ns per round, 2000 times slower than native; KVM emulated 2.0",
            "Natively: 0.50 ns",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        // Hardware-assisted: both rings near native, and a kernel without counters says so.
        let hardware = ComputeCost {
            kernel: guest_loop(0, 0.55, None),
            ..pvm
        };
        let text = hardware.summary();
        assert!(
            text.contains("In ring 0: 0.55 ns per round, about native speed"),
            "{text}"
        );
        let between = ComputeCost {
            user: guest_loop(3, 0.75, Some(0)),
            ..hardware.clone()
        };
        let text = between.summary();
        assert!(
            text.contains("at 0.75 ns per round, 1.5× native's time per round;"),
            "{text}"
        );
        assert!(
            text.contains("does not count emulated instructions"),
            "{text}"
        );
        assert_eq!(hardware.table().rows().len(), 3);
    }

    #[test]
    fn costs_are_measured_on_real_vms() {
        let _serial = super::super::tests::one_at_a_time();
        if !kvm_usable() {
            return;
        }
        let start = start_cost(3).unwrap();
        assert_eq!(start.samples.len(), 3);
        assert!(start.typical.total_ms() > 0.0);
        assert!(start.guest_touched_bytes >= 4096);
        assert!(start.table().to_string().contains("KVM_CREATE_VM"));
        let exits = exit_cost(200).unwrap();
        assert!(exits.guest_exit_ns > 0.0);
        let compute = compute_cost(10).unwrap();
        assert!(compute.kernel.rounds >= 1000 && compute.native_rounds >= 1000);
        assert_eq!((compute.kernel.ring, compute.user.ring), (0, 3));
        assert!(compute.summary().contains("In ring 3"));
    }
}
