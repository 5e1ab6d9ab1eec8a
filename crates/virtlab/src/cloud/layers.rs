//! "Which layer am I in?", asked from several places: `virtlab whereami` run natively (as a
//! child of this process), as pid 1 of one of chapter 7's containers limited like an instance,
//! and on a one-node chapter 8 cluster. Each run's verdict with its evidence goes into one
//! table. The container and the cluster are gone when their run returns, whichever way (the
//! container's cgroup removes itself when dropped, the shim when pid 1 ends; a cluster when
//! taken down or dropped).

use super::whereami::Whereami;
use crate::display::Table;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The subcommand that looks (`virtlab whereami`).
pub const WHEREAMI_COMMAND: &str = "whereami";

/// One place asked, and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// Where it ran, in words ("natively", "in a container …").
    pub place: String,
    /// What it saw and decided; `None` where it could not run here.
    pub answer: Option<Whereami>,
    /// Why it could not run, and the fix.
    pub skipped: Option<String>,
}

/// Runs `virtlab whereami` natively and inside a container; a place this machine cannot give
/// is kept with the reason and its fix.
pub fn survey() -> Result<Vec<Place>> {
    let args = [WHEREAMI_COMMAND, "--json"];
    let native: Whereami = crate::release::json("the whereami run", &args)?;
    let mut places = vec![Place {
        place: "natively (a child process of this one)".into(),
        answer: Some(native),
        skipped: None,
    }];
    #[cfg(target_os = "linux")]
    places.push(match in_container() {
        Ok(answer) => Place {
            place: "in our container (chapter 7, as pid 1, limited to 1 CPU, 256 MiB)".into(),
            answer: Some(answer),
            skipped: None,
        },
        Err(e) if e.kind() == crate::error::ErrorKind::Unavailable => Place {
            place: "in our container".into(),
            answer: None,
            skipped: Some(e.sentence()),
        },
        Err(e) => return Err(e),
    });
    #[cfg(target_os = "linux")]
    places.push(match on_a_node() {
        Ok(answer) => Place {
            place:
                "on a chapter 8 node (its network and uts namespaces, its instance type's cgroup)"
                    .into(),
            answer: Some(answer),
            skipped: None,
        },
        Err(e) if e.kind() == crate::error::ErrorKind::Unavailable => Place {
            place: "on a chapter 8 node".into(),
            answer: None,
            skipped: Some(e.sentence()),
        },
        Err(e) => return Err(e),
    });
    Ok(places)
}

/// The answer a parent read from `virtlab whereami --json`'s output, or an error quoting what
/// it printed instead.
fn answer(place: &str, stdout: &[u8], stderr: &[u8]) -> Result<Whereami> {
    serde_json::from_slice(stdout).map_err(|e| {
        Error::new(
            format!(
                "`virtlab whereami` {place} printed no answer ({e}): {}",
                String::from_utf8_lossy(stderr).trim()
            ),
            "see its message; `virtlab container --support` and `virtlab mpi --help` say what this machine allows",
        )
    })
}

/// `virtlab whereami --json` on the one node of a cluster made for it (and removed after).
#[cfg(target_os = "linux")]
fn on_a_node() -> Result<Whereami> {
    use crate::cluster::{Cluster, ClusterSpec};
    crate::cluster::cluster::prerequisites()?;
    let program = crate::release::program()?;
    crate::cluster::cluster::visible_on_nodes(&program)?;
    let cluster = Cluster::up(ClusterSpec {
        nodes: 1,
        ..ClusterSpec::default()
    })?;
    let command = format!("'{}' {WHEREAMI_COMMAND} --json", program.display());
    let out = cluster.run_on(1, &command);
    cluster.down()?;
    let out = out?;
    answer("on a node", &out.stdout, &out.stderr)
}

/// `virtlab whereami --json` as pid 1 of a container with an instance's limits.
#[cfg(target_os = "linux")]
fn in_container() -> Result<Whereami> {
    use crate::container::support::Support;
    use crate::container::{Limits, Spec};
    use std::process::Stdio;
    let limits = Limits {
        cpu: Some(1.0),
        memory: Some(256 << 20),
        pids: Some(16),
    };
    let spec = Spec::new("whereami")?.with_limits(limits)?;
    let support = Support::detect();
    let program = crate::release::program()?;
    let args = [WHEREAMI_COMMAND.to_string(), "--json".to_string()];
    let (mut command, preparing) = spec.command(&support, &program, &args)?;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let shim = command.spawn();
    // The group removes itself when dropped: kept until the shim has been waited for.
    let prepared = preparing.wait();
    let out = shim
        .map_err(|e| {
            Error::os(
                format!("starting a container shim ({})", program.display()),
                e,
            )
        })?
        .wait_with_output()
        .map_err(|e| Error::io("waiting for the whereami container", e))?;
    drop(prepared?);
    answer("in a container", &out.stdout, &out.stderr)
}

fn yes_no(found: bool) -> &'static str {
    if found { "yes" } else { "no" }
}

/// One row per place: each layer's verdict with the evidence for it (or, when not found, what
/// was looked at), and the instance it was given.
pub fn table(places: &[Place]) -> Table {
    let mut table = Table::new(
        "Which layer am I in? Each verdict follows from the evidence beside it",
        [
            "where it ran",
            "container?",
            "why",
            "VM?",
            "why",
            "the instance it was given",
        ],
    );
    for p in places {
        match (&p.answer, &p.skipped) {
            (Some(w), _) => {
                let why = |l: &super::whereami::Layer| {
                    if l.found { &l.because } else { &l.against }.join("; ")
                };
                table.row([
                    p.place.clone(),
                    yes_no(w.verdict.container.found).into(),
                    why(&w.verdict.container),
                    yes_no(w.verdict.vm.found).into(),
                    why(&w.verdict.vm),
                    w.verdict.instance.clone(),
                ]);
            }
            (None, skipped) => {
                table.row([
                    p.place.clone(),
                    "-".into(),
                    format!("skipped: {}", skipped.as_deref().unwrap_or("not run")),
                    "-".into(),
                    String::new(),
                    String::new(),
                ]);
            }
        }
    }
    table
}
