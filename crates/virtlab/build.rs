//! Links the `virtlab` program as a fixed-address (non-PIE) executable on Linux.
//!
//! Every worker process, container shim and probe the lab starts is this program, so its start
//! is part of what chapters 1 and 7 measure. As a position-independent executable its ~30 000
//! relocations are written at every start, copying some 90 pages (250 page faults in all
//! against 158 without; each fault is dear in a VM): `virtlab --version` took 1.6-1.7 ms
//! against 1.25-1.4 ms non-PIE (AMD EPYC Zen 4 KVM guest, `perf stat -r 300`). The code stays
//! position-independent; only the final link fixes its address (the cost: no address
//! randomisation of the program's own image, which a teaching lab can spare).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
