//! "Which layer am I in?", asked from several places: `virtlab whereami` run natively (as a
//! child of this process) and as pid 1 of one of chapter 7's containers limited like an
//! instance. Each run's verdict with its evidence goes into one table. The container is gone
//! when its run returns, whichever way (its cgroup removes itself when dropped, the shim when
//! pid 1 ends).

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
            skipped: Some(format!("{}. Fix: {}", e.problem(), e.fix())),
        },
        Err(e) => return Err(e),
    });
    Ok(places)
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
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::new(
            format!(
                "the whereami container printed no answer ({e}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "see its message; `virtlab container --support` says what this machine allows",
        )
    })
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
