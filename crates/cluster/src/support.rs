//! What chapter 8 needs of this machine, each part said with its fix: root (and `ip`,
//! `nsenter`) for the nodes, Open MPI with an MPI-built `virtlab-ranks` for the ranks, Slurm's
//! packages for the scheduler. The `if_…` helpers run a notebook cell's measurement only where
//! its part is there and otherwise print why and how to get it, so the rest of the chapter
//! still runs (chapter 6's `if_kvm`, for a cluster).

use crate::cluster::{self, Cluster};
use crate::{Error, Result, mpi, slurm};
use virtlab_display::{Figure, Table};

/// Each part of the chapter: ready, or what is missing and the fix.
#[derive(Debug, Clone)]
pub struct Support {
    /// Namespace nodes: root, `ip` and `nsenter`.
    pub nodes: std::result::Result<(), Error>,
    /// Ranks: mpirun and a `virtlab-ranks` built with Open MPI.
    pub mpi: std::result::Result<(), Error>,
    /// Slurm: its daemons and clients, munge, and root.
    pub slurm: std::result::Result<(), Error>,
}

impl Support {
    /// Looks at this machine (nothing is made).
    pub fn detect() -> Support {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        Support {
            nodes: cluster::prerequisites(),
            mpi: mpi::ready().map(|_| ()),
            slurm: slurm::check_prerequisites(euid, |p| slurm::find_program(p).is_some()),
        }
    }

    /// One row per part: ready, or what is missing and the fix.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            "What chapter 8 needs here",
            ["part", "needs", "here", "fix"],
        );
        for (part, needs, state) in self.parts() {
            let (here, fix) = match state {
                Ok(()) => ("ready".to_string(), String::new()),
                Err(e) => (e.problem().to_string(), e.fix().to_string()),
            };
            table.row([part.to_string(), needs.to_string(), here, fix]);
        }
        table
    }

    /// Shows [`Support::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    fn parts(&self) -> [(&str, &str, &std::result::Result<(), Error>); 3] {
        [
            ("nodes", "root, ip, nsenter", &self.nodes),
            (
                "MPI ranks",
                "mpirun, virtlab-ranks built with Open MPI",
                &self.mpi,
            ),
            ("Slurm", "slurmctld, slurmd, srun, munged", &self.slurm),
        ]
    }

    /// Runs `make` (which makes the cluster) where nodes can be made; otherwise prints why not.
    pub fn if_nodes<T>(&self, make: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
        gated(&[&self.nodes], make)
    }

    /// Runs `measure` on `cluster` where ranks can run; otherwise prints why not.
    pub fn if_mpi<T>(
        &self,
        cluster: &Option<Cluster>,
        measure: impl FnOnce(&Cluster) -> Result<T>,
    ) -> Result<Option<T>> {
        gated(&[&self.nodes, &self.mpi], || measure(made(cluster)?))
    }

    /// Runs `measure` on `cluster` where Slurm can run; otherwise prints why not.
    pub fn if_slurm<T>(
        &self,
        cluster: &Option<Cluster>,
        measure: impl FnOnce(&Cluster) -> Result<T>,
    ) -> Result<Option<T>> {
        gated(&[&self.nodes, &self.slurm], || measure(made(cluster)?))
    }

    /// A chart cell: draws `measured` where its cell measured it; where that cell was skipped,
    /// says again why (the first missing part) and draws nothing.
    pub fn figure<T>(
        &self,
        measured: &Option<T>,
        draw: impl FnOnce(&T) -> Result<Figure>,
    ) -> Result<()> {
        if let Some(value) = measured {
            draw(value)?.evcxr_display();
            return Ok(());
        }
        let missing = self
            .parts()
            .into_iter()
            .find_map(|(_, _, p)| p.as_ref().err());
        match missing {
            Some(e) => {
                println!("Skipped: {}", e.sentence());
                Ok(())
            }
            None => Err(Error::new(
                "there is nothing to draw: the cell that measures it has not run",
                "run the cells above this one, from the top",
            )),
        }
    }
}

/// The cluster, or the error saying that its cell has not run.
fn made(cluster: &Option<Cluster>) -> Result<&Cluster> {
    cluster.as_ref().ok_or_else(|| {
        Error::new(
            "the cluster has not been made in this session",
            "run the cell that makes the cluster (`Cluster::up`) first",
        )
    })
}

/// Runs `measure` when every need is met; otherwise prints the first unmet need's problem and
/// fix (on stdout: a notebook shows it as a note, not a failure) and returns `None`.
fn gated<T>(
    needs: &[&std::result::Result<(), Error>],
    measure: impl FnOnce() -> Result<T>,
) -> Result<Option<T>> {
    match needs.iter().find_map(|need| need.as_ref().err()) {
        None => measure().map(Some),
        Some(e) => {
            println!("Skipped: {}", e.sentence());
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(what: &str) -> std::result::Result<(), Error> {
        Err(Error::unavailable(what, format!("install {what}")))
    }

    fn ready() -> Support {
        Support {
            nodes: Ok(()),
            mpi: Ok(()),
            slurm: Ok(()),
        }
    }

    #[test]
    fn a_missing_part_skips_its_cells_and_only_them() {
        let no_mpi = Support {
            mpi: missing("mpirun"),
            ..ready()
        };
        let mut ran = false;
        assert_eq!(
            no_mpi
                .if_mpi(&None, |_| {
                    ran = true;
                    Ok(1)
                })
                .unwrap(),
            None
        );
        assert!(!ran, "a cell without MPI must not run");
        // Slurm is there, so its cell runs: here it finds no cluster made and says so.
        let e = no_mpi.if_slurm(&None, |_| Ok(1)).unwrap_err();
        assert!(e.fix().contains("Cluster::up"), "{e}");
        assert_eq!(no_mpi.if_nodes(|| Ok(2)).unwrap(), Some(2));
    }

    #[test]
    fn without_nodes_nothing_that_needs_them_runs() {
        let no_root = Support {
            nodes: missing("root"),
            ..ready()
        };
        assert_eq!(no_root.if_nodes(|| Ok(1)).unwrap(), None);
        assert_eq!(no_root.if_mpi(&None, |_| Ok(1)).unwrap(), None);
        assert_eq!(no_root.if_slurm(&None, |_| Ok(1)).unwrap(), None);
    }

    #[test]
    fn a_chart_of_a_skipped_measurement_says_why_or_asks_for_the_cells_above() {
        let no_mpi = Support {
            mpi: missing("mpirun"),
            ..ready()
        };
        let mut drew = false;
        no_mpi
            .figure(&None::<u8>, |_| {
                drew = true;
                Err(Error::bug("not drawn"))
            })
            .unwrap();
        assert!(!drew);
        let e = ready()
            .figure(&None::<u8>, |_| Err(Error::bug("x")))
            .unwrap_err();
        assert!(e.fix().contains("from the top"), "{e}");
        let e = ready()
            .figure(&Some(1), |_| Err(Error::bug("drawn")))
            .unwrap_err();
        assert_eq!(e.problem(), "drawn");
    }

    #[test]
    fn a_measurement_error_is_not_a_skip() {
        let e = ready()
            .if_nodes(|| Err::<(), _>(Error::bug("broke")))
            .unwrap_err();
        assert_eq!(e.problem(), "broke");
    }

    #[test]
    fn the_table_names_each_missing_part_and_its_fix() {
        let support = Support {
            slurm: missing("slurmd"),
            ..ready()
        };
        let rows = support.table().rows().to_vec();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0][2], "ready");
        assert_eq!(rows[2][2], "slurmd");
        assert_eq!(rows[2][3], "install slurmd");
    }

    #[test]
    fn detect_agrees_with_the_checks() {
        let support = Support::detect();
        assert_eq!(support.nodes.is_ok(), cluster::prerequisites().is_ok());
        assert_eq!(support.mpi.is_ok(), mpi::ready().is_ok());
    }
}
