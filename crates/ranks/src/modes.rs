//! The three modes under MPI. Every rank prints its JSON lines itself and flushes each one, so
//! mpirun forwards them live; times are wall-clock (MPI_Wtime, and Unix time for "asked →
//! first line", which the launcher measures from its side).

use crate::args::Mode;
use crate::sample;
use mpi::collective::SystemOperation;
use mpi::traits::*;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Prints one JSON line and flushes it (mpirun forwards what it gets, when it gets it).
fn emit(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// This process's pids from its /proc (`NSpid`: outermost visible namespace first).
fn ns_pids() -> Vec<u32> {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|l| l.display().to_string())
        .unwrap_or_default()
}

/// Initialises MPI, runs `mode`, finalises.
pub fn run(mode: Mode) -> ExitCode {
    let asked = unix_now();
    let started = std::time::Instant::now();
    let Some(universe) = mpi::initialize() else {
        eprintln!("virtlab error: MPI was initialised already. Fix: report this as a bug");
        return ExitCode::FAILURE;
    };
    let init_ms = started.elapsed().as_secs_f64() * 1e3;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    match mode {
        Mode::Hello {
            iterations,
            interval_ms,
        } => {
            let pids = ns_pids();
            let pid = std::process::id();
            let node = hostname();
            let host = match pids.first() {
                Some(&outer) if pids.len() > 1 => format!(" (host pid {outer})"),
                _ => String::new(),
            };
            let pidns = pid_namespace();
            for i in 0..iterations {
                let line = format!("{i}: rank-{rank} on {node} pid {pid}{host}");
                emit(format!(
                    r#"{{"kind":"hello","rank":{rank},"size":{size},"iteration":{i},"node":"{node}","pid":{pid},"pid_namespace":"{pidns}","init_ms":{init_ms:.3},"started_unix":{asked:.6},"unix":{:.6},"line":"{line}"}}"#,
                    unix_now()
                ));
                std::thread::sleep(Duration::from_millis(interval_ms));
            }
        }
        Mode::Hits { samples, seed } => {
            let t = mpi::time();
            let here = sample::share(samples, rank as u64, size as u64);
            let count = here.end - here.start;
            let local = sample::hits(seed, here);
            let compute_ms = (mpi::time() - t) * 1e3;
            let t = mpi::time();
            let root = world.process_at_rank(0);
            let mut total = 0u64;
            if rank == 0 {
                root.reduce_into_root(&local, &mut total, SystemOperation::sum());
            } else {
                root.reduce_into(&local, SystemOperation::sum());
            }
            let reduce_ms = (mpi::time() - t) * 1e3;
            emit(format!(
                r#"{{"kind":"hits","rank":{rank},"size":{size},"node":"{}","samples":{count},"hits":{local},"init_ms":{init_ms:.3},"compute_ms":{compute_ms:.3},"reduce_ms":{reduce_ms:.3}}}"#,
                hostname()
            ));
            if rank == 0 {
                emit(format!(
                    r#"{{"kind":"hits_total","size":{size},"samples":{samples},"seed":{seed},"hits":{total}}}"#
                ));
            }
        }
        Mode::PingPong { sizes, rounds } => {
            if size < 2 {
                eprintln!(
                    "virtlab error: ping-pong needs 2 ranks, this run has {size}. Fix: run it with 2 ranks"
                );
                return ExitCode::FAILURE;
            }
            let largest = sizes.iter().copied().max().unwrap_or(0);
            let mut buffer = vec![0u8; largest];
            // Rank 0 sends and waits for the echo; rank 1 echoes; the others look on.
            let round_trip = |message: &mut [u8]| {
                if rank == 0 {
                    world.process_at_rank(1).send(&message[..]);
                    world.process_at_rank(1).receive_into(message);
                } else if rank == 1 {
                    world.process_at_rank(0).receive_into(&mut message[..]);
                    world.process_at_rank(0).send(&message[..]);
                }
            };
            for &bytes in &sizes {
                let message = &mut buffer[..bytes];
                // One untimed round trip first: the first message opens the TCP connection.
                round_trip(message);
                world.barrier();
                let t = mpi::time();
                for _ in 0..rounds {
                    round_trip(message);
                }
                let seconds = mpi::time() - t;
                if rank == 0 {
                    let one_way = seconds / (2.0 * f64::from(rounds));
                    emit(format!(
                        r#"{{"kind":"pingpong","bytes":{bytes},"rounds":{rounds},"one_way_us":{:.3},"gb_per_s":{:.4},"from":"{}"}}"#,
                        one_way * 1e6,
                        bytes as f64 / one_way / 1e9,
                        hostname()
                    ));
                }
            }
        }
    }
    ExitCode::SUCCESS
}
