//! `virtlab-cluster`: the cluster's own command line, until the `virtlab` CLI wires these in.
//! `up` holds a cluster (a detached `serve` keeps it), `status` lists clusters, `down` removes
//! one. Every command prints JSON with `--json`; `up --slurm` runs Slurm on the cluster too.

use std::process::ExitCode;
use virtlab_cluster::ErrorKind;
use virtlab_cluster::{ClusterSpec, Error, Result, held};

const USAGE: &str =
    "usage: virtlab-cluster up [--name NAME] [--nodes N] [--type small|medium|large] [--slurm] [--json]
       virtlab-cluster status [--json]
       virtlab-cluster down NAME [--json]
       virtlab-cluster serve --name NAME [--nodes N] [--type TYPE] [--slurm]   (the keeper `up` starts)

--slurm starts Slurm on the held cluster (slurmctld, a slurmd per node, munged); its
SLURM_CONF is slurm/slurm.conf in the cluster's run folder.";

/// The value after `flag` in `args`, if the flag is there.
fn value<'a>(args: &'a [String], flag: &str) -> Result<Option<&'a str>> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => args.get(i + 1).map(|v| Some(v.as_str())).ok_or_else(|| {
            Error::of(
                ErrorKind::Invalid,
                format!("{flag} needs a value"),
                USAGE.replace('\n', " "),
            )
        }),
    }
}

fn spec(args: &[String]) -> Result<ClusterSpec> {
    let mut spec = ClusterSpec::default();
    if let Some(n) = value(args, "--nodes")? {
        spec.nodes = n.parse().map_err(|_| {
            Error::of(
                ErrorKind::Invalid,
                format!("--nodes {n:?} is not a number"),
                "give a whole number, e.g. --nodes 3",
            )
        })?;
    }
    if let Some(t) = value(args, "--type")? {
        spec.instance_type = t.parse()?;
    }
    spec.check()?;
    Ok(spec)
}

fn print<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_string(value).unwrap_or_default());
    } else {
        print!("{}", text());
    }
}

fn run(args: &[String]) -> Result<()> {
    let json = args.iter().any(|a| a == "--json");
    let slurm = args.iter().any(|a| a == "--slurm");
    match args.first().map(String::as_str) {
        Some("up") => {
            let name = value(args, "--name")?.unwrap_or("lab");
            let me =
                std::env::current_exe().map_err(|e| Error::io("finding this program's path", e))?;
            let state = held::hold(&me, spec(args)?, name, slurm)?;
            print(json, &state, || {
                format!(
                    "{}up in {:.0} ms; take it down with: virtlab-cluster down {name}\n",
                    virtlab_cluster::cluster::node_table(&state),
                    state.up_ms
                )
            });
        }
        Some("serve") => {
            let name = value(args, "--name")?.ok_or_else(|| {
                Error::of(
                    ErrorKind::Invalid,
                    "serve needs --name",
                    "give it one: serve --name lab",
                )
            })?;
            held::serve(spec(args)?, name, slurm)?;
        }
        Some("status") => {
            let clusters = held::status();
            print(json, &clusters, || {
                if clusters.is_empty() {
                    return "no cluster is up\n".into();
                }
                clusters
                    .iter()
                    .map(virtlab_cluster::cluster::node_table)
                    .collect()
            });
        }
        Some("down") => {
            let name = args
                .get(1)
                .filter(|a| !a.starts_with("--"))
                .ok_or_else(|| {
                    Error::of(
                        ErrorKind::Invalid,
                        "down needs the cluster's name",
                        "virtlab-cluster down lab",
                    )
                })?;
            let ms = held::down(name)?;
            print(
                json,
                &serde_json::json!({ "name": name, "down_ms": ms }),
                || format!("cluster {name} removed in {ms:.0} ms\n"),
            );
        }
        _ => {
            return Err(Error::of(
                ErrorKind::Invalid,
                "no such command",
                USAGE.replace('\n', " "),
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
