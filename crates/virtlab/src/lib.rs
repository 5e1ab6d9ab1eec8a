//! virtlab shows how a computer shares its work — processes, threads, tasks, the GPU, language
//! VMs, virtual machines and containers — by measuring it live, on your machine.
//!
//! This crate is the facade behind two front ends. The notebooks under `notebooks/` (Rust, run by
//! the evcxr Jupyter kernel) load it with their chapter's feature, e.g.
//! `:dep virtlab = { path = "../crates/virtlab", default-features = false, features = ["vm"] }`,
//! and stay short, because the logic lives in the crates; the `virtlab` command
//! (`cargo run --release -- --help`) runs the same workloads from a terminal and prints a table,
//! or JSON with `--json`. There is one module per idea; each chapter's notebook calls the modules
//! below it.
//!
//! Every fallible function returns [`Result`], and every [`Error`] says what went wrong and what
//! to do about it. Values that a notebook shows (tables, charts, runs) have an `evcxr_display`
//! method, so a cell can end with the value itself; in a terminal, `println!("{}", x.table())`
//! prints the same table as text.
//!
//! # Chapter 0: your machine
//!
//! What the machine offers and what this process may use of it ([`machine`]), and its
//! floating-point peak ([`peak`]). Detecting never fails: what cannot be seen says why.
//!
//! ```
//! use virtlab::machine::Machine;
//!
//! let machine = Machine::detect();
//! println!("{}", machine.table()); // CPUs, cgroup limits, memory, hypervisor, SIMD, GPU
//! assert!(machine.usable_cpus >= 1); // the CPUs our executors use, limits included
//! ```
//!
//! # Chapter 1: processes
//!
//! N real worker processes, each a child of this one ([`processes`]). Not run here: the workers
//! are the release-built `virtlab` program, which the first run builds with cargo.
//!
//! ```no_run
//! use virtlab::{executor::Options, processes, work::Work};
//!
//! let run = processes::run(&Work::new("worker", 3, 500)?, 3, Options::default())?;
//! assert_eq!(run.timeline.pids().len(), 3); // three processes, one pid each
//! println!("{}", run.tree()?.table()); // this process and its three children
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Chapter 2: threads
//!
//! The same work on N OS threads of this one process ([`threads`]), then CPU-bound scaling and
//! the price of sharing a counter.
//!
//! ```
//! use virtlab::{executor::Options, threads, work::Work};
//!
//! let run = threads::run(&Work::new("thread", 3, 10)?, 4, Options::quiet())?;
//! assert!(run.succeeded());
//! assert_eq!(run.timeline.pids(), vec![std::process::id()]); // one process …
//! assert_eq!(run.timeline.os_threads().len(), 4); // … four OS threads
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Chapter 3: tasks
//!
//! The same work as tokio tasks that all share one OS thread ([`tasks`]), then how many fit and
//! the blocking trap.
//!
//! ```
//! use virtlab::{executor::Options, tasks, work::Work};
//!
//! let run = tasks::run(&Work::new("task", 3, 10)?, 100, Options::quiet())?;
//! assert!(run.succeeded());
//! assert_eq!(run.timeline.os_threads().len(), 1); // a hundred tasks, one OS thread
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # The executor
//!
//! Every kind of worker runs through one [`executor`]: a kind ([`executor::Kind`]) says how many
//! units it can run, how to start, wake and release one, and what it reports about each beyond
//! how it ended; the executor does the rest — checking the options, names, timeline, deadline,
//! cancelling, a fault or a runaway on purpose, and stopping the others when one unit fails.
//! [`kinds`] is the registry of them all.
//!
//! ```
//! use virtlab::executor::{self, Options, Status};
//! use virtlab::{threads::Threads, work::Work};
//!
//! let work = Work::new("thread", 5, 10)?;
//! let run = executor::run(&mut Threads::new(), &work, 3, Options::quiet().with_fault(2, 1))?;
//! assert!(matches!(run.units[1].status, Status::Panicked(_))); // thread-2, on purpose
//! assert!(run.check().is_err()); // `run.check()?` would stop here, naming thread-2
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # The cost ladder
//!
//! What one task, thread or process costs, by one method for all ([`cost`]): time from asking
//! for a unit to its first line, and the memory it holds, user space and kernel. Not run here:
//! each measurement runs in a fresh probe process (the release-built `virtlab`).
//!
//! ```no_run
//! use virtlab::cost::{COMPARED_COUNT, Ladder};
//!
//! let ladder = Ladder::measured(&virtlab::kinds::rungs(), &[1, COMPARED_COUNT], 3)?; // reused when saved on this boot
//! println!("{}", ladder.table()); // what one more unit costs: the slope over the counts
//! ladder.plot(COMPARED_COUNT)?.save_svg("ladder.svg")?; // cheapest bottom left, dearest top right
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Chapter 4: the GPU
//!
//! Matrix products on the CPU and the GPU, timed right and checked against an f64 product
//! ([`matmul`]). On the CPU, with one thread and a small size:
//!
//! ```
//! use virtlab::matmul::{self, Devices, Dtype, Plan};
//!
//! let plan = Plan::new(&[64], Dtype::F64, Devices::Cpu).threads(1).repeats(1);
//! let run = matmul::sweep(&plan, |point| println!("{}", point.line()))?;
//! for point in &run.points {
//!     assert!(point.gflops() > 0.0 && point.max_error <= point.tolerance);
//! }
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Chapter 5: language virtual machines
//!
//! The same job natively and on language VMs ([`langvm`]): our hand-written WebAssembly module on
//! wasmi and wasmtime, CPython, the JVM, Node; every runtime must count the same hits. A
//! WebAssembly instance is also a kind of worker on the executor: a read outside its memory traps.
//!
//! ```
//! use virtlab::executor::{Options, Status};
//! use virtlab::langvm::{Comparison, Plan, Runtime, instance};
//! use virtlab::work::Work;
//!
//! let plan = Plan::new(10_000, 1)?.runtimes(&[Runtime::Native, Runtime::Wasmi]);
//! Comparison::measure(&plan)?.check()?; // the same hits natively and in the interpreter
//! let run = instance::run(&Work::new("wasm", 2, 10)?, 2, Options::quiet().with_fault(1, 0))?;
//! assert!(matches!(&run.units[0].status, Status::Crashed(trap) if trap.describe().starts_with("trap:")));
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Chapter 6: virtual machines
//!
//! Virtual machines of our own through Linux's KVM ([`vm`]): a guest program in 64-bit long
//! mode, one vCPU per VM on a host thread of this process, and what being virtual costs. Not run
//! here: it needs `/dev/kvm` (Linux, x86-64); [`vm::support()`] says what this machine offers.
//!
//! ```no_run
//! use virtlab::{executor::Options, vm, work::Work};
//!
//! vm::support().ready()?; // the problem and the fix when there is no usable KVM
//! print!("{}", vm::Guest::essay_loop(3, None)?.listing()); // the guest, as assembly
//! let run = vm::kind::run(&Work::new("vm", 3, 10)?, 3, 2 << 20, Options::quiet())?;
//! assert_eq!(run.timeline.os_threads().len(), 3); // one host thread per vCPU
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Chapter 7: containers
//!
//! The same worker in containers built from namespaces and a cgroup ([`container`], Linux
//! only): each sees itself as pid 1 under its own hostname, held to its limits. Not run as a
//! doc test: it needs root or user namespaces.
//!
//! ```no_run
//! # #[cfg(target_os = "linux")] {
//! use virtlab::container::{Limits, kind::Containers};
//!
//! let limits = Limits::parse(Some("0.5"), Some("64MiB"), Some("64"))?;
//! let work = virtlab::work::Work::new("container", 3, 500)?;
//! let fleet = Containers::new(limits)?.run(&work, 3, Default::default())?;
//! println!("{}", fleet.table()); // "0: container-1 pid 1 (host pid 4242), hostname container-1" first
//! # }
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Chapter 8: many machines
//!
//! A cluster of namespace nodes on this machine, MPI ranks across it (a kind of worker on the
//! executor: the same work, each rank a unit) and Slurm scheduling jobs on it ([`cluster`],
//! Linux, root; Open MPI and Slurm from `scripts/setup`). Not run as a doc
//! test: it needs root. [`cluster::Support`] says what is missing, with the fix.
//!
//! ```no_run
//! # #[cfg(target_os = "linux")] {
//! use virtlab::cluster::{Cluster, ClusterSpec, Support, live, pingpong};
//! use virtlab::{executor::Options, work::Work};
//!
//! let support = Support::detect();
//! let cluster = support.if_nodes(|| Cluster::up(ClusterSpec::default()))?; // 3 medium nodes
//! let work = Work::new("worker", 3, 200)?;
//! let hello = support.if_mpi(&cluster, |c| live::hello(c, &work, 6, Options::default()))?;
//! let talk = support.if_mpi(&cluster, |c| pingpong::measure(c, &[8, 4096], 100, true))?;
//! # let _ = (hello, talk);
//! # }
//! # Ok::<(), virtlab::Error>(())
//! ```
//!
//! # Crates and modules
//!
//! This crate is the facade over layered crates, which it re-exports under these names, and the
//! `virtlab` program; a cargo feature per chapter decides what a notebook compiles
//! (`machine`, `processes`, `threads`, `tasks`, `matmul`, `langvm`, `vm`, `container`, `cluster`,
//! `cloud`; `chapters` for all). `virtlab-display` (tables, charts) is the lowest layer;
//! `virtlab-core` (the work, the executor, the timeline, the process explorer, the cost ladder,
//! errors) is built on it; `virtlab-gemm`, `virtlab-langvm`, `virtlab-vmm`, `virtlab-container`,
//! `virtlab-cluster` and `virtlab-cloud` each build one chapter's machinery on the core and never
//! on each other (chapter 9's container instances, which need two of them, live here).
//!
//! - [`machine`]: what the machine offers (CPUs, limits, memory, hypervisor, GPU); chapter 0.
//! - [`peak`]: the CPU's floating-point peak in GFLOP/s, measured with an FMA loop; chapter 0.
//! - [`gpu`]: whether there is a CUDA GPU and which, asked without risking a panic.
//! - [`isa`]: which SIMD instruction sets this CPU has (AVX-512, AVX2+FMA, portable).
//! - [`work`]: the one workload every kind of worker runs: a named loop of iterations and pauses.
//! - [`executor`]: runs a [`work::Work`] as N units of any kind of worker, and reports each one.
//! - [`kinds`]: the registry of kinds of worker: rung, subcommand, feature, how to make one.
//! - [`protocol`]: the one line protocol between virtlab and the programs it starts.
//! - [`hits`]: the one CPU-bound job (a Monte Carlo hit count) chapters 2, 5 and later share.
//! - [`processes`]: the process as a kind of worker, and the worker program; chapter 1.
//! - [`threads`]: the thread as a kind of worker, CPU-bound scaling, sharing a counter; chapter 2.
//! - [`tasks`]: the tokio task as a kind of worker, how many fit, the blocking trap; chapter 3.
//! - [`cost`]: the cost ladder, time and memory per unit for every kind of worker.
//! - [`matmul`]: matrix multiply on the CPU and the GPU, measured right; chapter 4.
//! - [`langvm`]: the same job natively, on WebAssembly, CPython, the JVM and V8; a wasm instance
//!   as a kind of worker; chapter 5.
//! - [`vm`]: virtual machines through KVM, and the price of being virtual; chapter 6.
//! - [`container`]: containers from namespaces and a cgroup, as a kind of worker (Linux);
//!   chapter 7.
//! - [`cluster`]: a cluster of namespace nodes on this machine, MPI ranks across it, Slurm
//!   scheduling jobs on it (Linux, root); chapter 8.
//! - [`cloud`]: prices, the bill, break-even, and elastic serving on processes or chapter 7's
//!   containers as instances; chapter 9.
//! - [`timeline`]: who ran when: timestamped events from every worker, drawn as lanes.
//! - [`observer`]: the "process explorer": a process tree with threads, memory and CPU time.
//! - [`memory`]: how much memory a process holds (RSS, PSS, heap, page tables, kernel stacks).
//! - [`display`]: tables, HTML and charts shown inline in a notebook cell.
//! - [`plot`]: line, bar and lane charts, drawn as SVG and PNG.
//! - [`error`]: the crate's one error type: what went wrong and how to fix it.
//! - [`outcome`]: a measurement that ran, or was skipped with the reason (no Python, no GPU).
//! - [`release`]: runs the release-built `virtlab` program as a child, for work that needs speed.
//! - [`stats`]: the median of repeated runs.
//! - [`store`]: where measurements are kept between runs, written whole or not at all.
//! - [`strict`]: strict mode for headless notebook runs: a panic fails the cell.
//! - [`units`]: quantities for people, e.g. bytes as `1.5 KiB`.

#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The spine (always there): the same names as when this was one crate.
pub use virtlab_core::{
    cost, error, executor, hits, load, memory, observer, outcome, processes, protocol, release,
    stats, store, strict, timeline, units, work,
};
pub use virtlab_display as display;
pub use virtlab_display::plot;

#[cfg(feature = "cloud")]
pub mod cloud;
pub mod kinds;
pub mod machine;
#[cfg(feature = "tasks")]
pub mod tasks;
pub mod threads;

#[cfg(all(feature = "cluster", target_os = "linux"))]
pub use virtlab_cluster as cluster;
#[cfg(all(feature = "container", target_os = "linux"))]
pub use virtlab_container as container;
#[cfg(any(feature = "machine", feature = "matmul"))]
pub use virtlab_gemm::{gpu, isa, matmul, peak};
#[cfg(feature = "langvm")]
pub use virtlab_langvm as langvm;
#[cfg(any(feature = "machine", feature = "vm"))]
pub use virtlab_vmm as vm;

pub use error::{Error, Result};
