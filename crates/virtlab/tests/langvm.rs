//! `virtlab runtimes` as a user runs it: the same job on every runtime this machine has, the
//! same hit count from each, JSON for programs, and clear errors for bad runtimes and sizes.

use std::process::{Command, Output};

fn virtlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the virtlab binary should start")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_runtime_counts_the_same_hits_as_json() {
    let out = virtlab(&["runtimes", "--samples", "3000", "--repeats", "2", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let native = json["native_hits"].as_u64().unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "every runtime has a row");
    for row in rows {
        let speed = &row["speed"];
        if speed["outcome"] == "skipped" {
            // A missing runtime says which, and how to get it.
            let why = speed["value"].as_str().unwrap();
            assert!(
                why.contains("install") || why.contains("--features"),
                "{row}"
            );
            continue;
        }
        for hits in speed["value"]["hits"].as_array().unwrap() {
            assert_eq!(hits.as_u64(), Some(native), "{row}");
        }
    }
    // Every WebAssembly runtime that ran reports the same module (its SHA-256), wasmi at least.
    let hashes: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["speed"]["value"]["module_sha256"].as_str())
        .collect();
    assert!(!hashes.is_empty(), "{rows:?}");
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    // wasmtime runs when the program was built with its feature, and says how to get it if not.
    let wasmtime = rows.iter().find(|r| r["runtime"] == "wasmtime").unwrap();
    if cfg!(feature = "wasmtime") {
        assert_eq!(wasmtime["speed"]["outcome"], "measured", "{wasmtime}");
        assert_eq!(
            wasmtime["speed"]["value"]["module_sha256"].as_str(),
            Some(hashes[0])
        );
    } else {
        assert!(
            wasmtime["speed"]["value"]
                .as_str()
                .unwrap()
                .contains("--features wasmtime")
        );
    }
}

/// The chapter's run: seed 1, 200 000 samples. wasmtime (when built in) and Node's V8 (when
/// installed) count the same 156 774 hits as native Rust. (wasmi is left to the smaller run
/// above: unoptimised, as in a debug test build, its dispatch can overflow the stack on a run
/// this long.)
#[test]
fn compiled_wasm_counts_the_chapters_hits() {
    let out = virtlab(&[
        "runtimes",
        "--samples",
        "200000",
        "--seed",
        "1",
        "--repeats",
        "1",
        "--runtimes",
        "native,wasmtime,node-wasm",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["native_hits"], 156_774);
    let mut measured = Vec::new();
    for row in json["rows"].as_array().unwrap() {
        if row["speed"]["outcome"] == "measured" {
            assert_eq!(
                row["speed"]["value"]["hits"],
                serde_json::json!([156_774]),
                "{row}"
            );
            measured.push(row["runtime"].as_str().unwrap());
        }
    }
    assert!(measured.contains(&"native"));
    assert_eq!(measured.contains(&"wasmtime"), cfg!(feature = "wasmtime"));
}

#[test]
fn tables_and_warmups_print_for_people() {
    let out = virtlab(&[
        "runtimes",
        "--samples",
        "2000",
        "--runtimes",
        "native,wasmi",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("wasmi (wasm interpreter)"), "{stdout}");
    assert!(stdout.contains("slowdown vs native"), "{stdout}");
    let out = virtlab(&[
        "runtimes",
        "--samples",
        "2000",
        "--runtimes",
        "wasmi",
        "--warmup",
        "4",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("Warm-up: 4 chunks of 2000 samples"),
        "{stdout}"
    );
}

#[test]
fn unknown_runtimes_and_bad_sizes_are_clear_errors() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["runtimes", "--runtimes", "native,pypy"],
            "a runtime cannot be 'pypy'",
        ),
        (
            &["runtimes", "--samples", "0"],
            "number of samples cannot be 0",
        ),
        (
            &["runtimes", "--repeats", "0"],
            "number of runs cannot be 0",
        ),
        (&["runtimes", "--warmup", "0"], "number of runs cannot be 0"),
    ];
    for (args, expected) in cases {
        let out = virtlab(args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Fix:") || stderr.contains("fix"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
