//! The price of talking: ping-pong between two ranks, on one node (Open MPI's shared memory)
//! and across two nodes (TCP over the cluster's bridge), at each message size; and the yield
//! trap, the same small message with waiting ranks spinning (Open MPI's default) and yielding
//! their CPU.

use crate::cluster::Cluster;
use crate::mpi::{MpiRun, Mpirun, Program};
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

/// One message size, on one node and across two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingpongPoint {
    /// The message size.
    pub bytes: usize,
    /// One way, ranks on one node (shared memory), in microseconds.
    pub one_node_us: f64,
    /// Bandwidth on one node, in GB/s.
    pub one_node_gb_per_s: f64,
    /// One way, ranks on two nodes (TCP over the bridge), in microseconds.
    pub two_nodes_us: f64,
    /// Bandwidth across two nodes, in GB/s.
    pub two_nodes_gb_per_s: f64,
}

/// A ping-pong measured at every size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingpongReport {
    /// Whether waiting ranks yielded the CPU (`mpi_yield_when_idle 1`) or spun.
    pub yield_when_idle: bool,
    /// Round trips per size.
    pub rounds: u32,
    /// Every size, smallest first.
    pub points: Vec<PingpongPoint>,
}

/// Checks the sizes and rounds before anything runs (before a cluster is made for them).
pub fn check(sizes: &[usize], rounds: u32) -> Result<()> {
    if rounds == 0 {
        return Err(Error::invalid(
            "--rounds",
            0,
            "give 1 or more round trips, e.g. --rounds 200",
        ));
    }
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(Error::of(
            ErrorKind::Invalid,
            "ping-pong needs message sizes above 0 bytes",
            "give byte counts, e.g. --sizes 8,4096,4194304",
        ));
    }
    Ok(())
}

/// What rank 0 printed for each size: (bytes, one-way µs, GB/s).
type Sizes = Vec<(usize, f64, f64)>;

/// The sizes rank 0 printed, or the run's error.
fn points(run: &MpiRun, what: &str) -> Result<Sizes> {
    if run.exit_code != Some(0) {
        return Err(Error::new(
            format!("ping-pong {what} failed: {}", run.stderr.trim()),
            "run it again; with waiting ranks spinning on a busy machine, fewer rounds",
        ));
    }
    Ok(run.pingpong_points())
}

/// Two ranks on `cluster`'s first node, then one on each of its first two nodes.
fn one_and_two_nodes(
    cluster: &Cluster,
    program: &Program,
    yield_when_idle: bool,
) -> Result<(Sizes, Sizes)> {
    if cluster.nodes().len() < 2 {
        return Err(Error::of(
            ErrorKind::Invalid,
            "ping-pong across nodes needs a cluster of 2 nodes or more",
            "make the cluster with nodes: 2 or more",
        ));
    }
    let run = |nodes: &[usize], slots: usize| {
        Mpirun::new(cluster, 2)
            .nodes(nodes)
            .slots(slots)
            .yield_when_idle(yield_when_idle)
            .run(program)
    };
    let one = points(&run(&[1], 2)?, "on one node")?;
    let two = points(&run(&[1, 2], 1)?, "across two nodes")?;
    Ok((one, two))
}

/// Ping-pong of `sizes` bytes, `rounds` round trips each, on one node and across two.
pub fn measure(
    cluster: &Cluster,
    sizes: &[usize],
    rounds: u32,
    yield_when_idle: bool,
) -> Result<PingpongReport> {
    check(sizes, rounds)?;
    let program = Program::PingPong {
        sizes: sizes.to_vec(),
        rounds,
    };
    let (one, two) = one_and_two_nodes(cluster, &program, yield_when_idle)?;
    let points = one
        .iter()
        .zip(&two)
        .map(|(a, b)| PingpongPoint {
            bytes: a.0,
            one_node_us: a.1,
            one_node_gb_per_s: a.2,
            two_nodes_us: b.1,
            two_nodes_gb_per_s: b.2,
        })
        .collect();
    Ok(PingpongReport {
        yield_when_idle,
        rounds,
        points,
    })
}

impl PingpongReport {
    /// A report of yielding ranks, 10 round trips, at `(bytes, one node µs, two nodes µs)`
    /// each, bandwidth from the two: for tests of what is said and drawn about a ping-pong.
    #[doc(hidden)]
    pub fn made(points: &[(usize, f64, f64)]) -> PingpongReport {
        let gb_per_s = |bytes: usize, us: f64| bytes as f64 / (us * 1e3);
        PingpongReport {
            yield_when_idle: true,
            rounds: 10,
            points: points
                .iter()
                .map(|&(bytes, one_node_us, two_nodes_us)| PingpongPoint {
                    bytes,
                    one_node_us,
                    one_node_gb_per_s: gb_per_s(bytes, one_node_us),
                    two_nodes_us,
                    two_nodes_gb_per_s: gb_per_s(bytes, two_nodes_us),
                })
                .collect(),
        }
    }

    /// Every size: one-way time and bandwidth, one node and two.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            format!(
                "ping-pong, {} round trips per size, waiting ranks {}",
                self.rounds,
                if self.yield_when_idle {
                    "yield"
                } else {
                    "spin"
                }
            ),
            [
                "bytes",
                "one node µs",
                "one node GB/s",
                "two nodes µs",
                "two nodes GB/s",
            ],
        );
        for p in &self.points {
            table.row([
                virtlab_core::units::bytes(p.bytes as u64),
                format!("{:.2}", p.one_node_us),
                format!("{:.3}", p.one_node_gb_per_s),
                format!("{:.2}", p.two_nodes_us),
                format!("{:.3}", p.two_nodes_gb_per_s),
            ]);
        }
        table
    }

    /// Shows [`PingpongReport::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// One-way time against message size, one node and two, both axes logarithmic.
    pub fn latency_plot(&self) -> Result<Figure> {
        Ok(self
            .latency_chart("Ping-pong: one way, by message size", "one way, µs")
            .render()?)
    }

    /// One way against message size, one node and two, on log axes (each in the colour the
    /// bandwidth chart gives it), for [`Self::latency_plot`] and the chart beside the rungs.
    pub(crate) fn latency_chart(&self, title: &str, y_label: &str) -> LineChart {
        LineChart::new(title)
            .x_label("message size, bytes")
            .y_label(y_label)
            .log_x()
            .log_y()
            .series("one node (shared memory)", self.by_size(|p| p.one_node_us))
            .series(
                "two nodes (TCP over the bridge)",
                self.by_size(|p| p.two_nodes_us),
            )
    }

    /// (bytes, `f` of the point) for every size.
    fn by_size(&self, f: fn(&PingpongPoint) -> f64) -> Vec<(f64, f64)> {
        self.points.iter().map(|p| (p.bytes as f64, f(p))).collect()
    }

    /// Bandwidth against message size, one node and two (log size axis).
    pub fn bandwidth_plot(&self) -> Result<Figure> {
        Ok(LineChart::new("Ping-pong: bandwidth, by message size")
            .x_label("message size, bytes")
            .y_label("GB/s")
            .log_x()
            .series(
                "one node (shared memory)",
                self.by_size(|p| p.one_node_gb_per_s),
            )
            .series(
                "two nodes (TCP over the bridge)",
                self.by_size(|p| p.two_nodes_gb_per_s),
            )
            .render()?)
    }
}

/// The yield trap: one small message's one-way time with waiting ranks spinning and yielding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YieldTrap {
    /// The message size.
    pub bytes: usize,
    /// Round trips per run.
    pub rounds: u32,
    /// Spinning (Open MPI's default), one node and two, µs one way.
    pub spin: (f64, f64),
    /// Yielding (`mpi_yield_when_idle 1`), one node and two, µs one way.
    pub yielding: (f64, f64),
}

/// Measures the yield trap: `bytes` bytes, `rounds` round trips, both ways, one node and two.
pub fn yield_trap(cluster: &Cluster, bytes: usize, rounds: u32) -> Result<YieldTrap> {
    check(&[bytes], rounds)?;
    let program = Program::PingPong {
        sizes: vec![bytes],
        rounds,
    };
    let first = |(one, two): (Sizes, Sizes)| match (one.first(), two.first()) {
        (Some(a), Some(b)) => Ok((a.1, b.1)),
        _ => Err(Error::bug("the ping-pong printed no result for its size")),
    };
    let spin = first(one_and_two_nodes(cluster, &program, false)?)?;
    let yielding = first(one_and_two_nodes(cluster, &program, true)?)?;
    Ok(YieldTrap {
        bytes,
        rounds,
        spin,
        yielding,
    })
}

impl YieldTrap {
    /// Both ways, one node and two.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            format!(
                "the yield trap: {} one way, {} round trips",
                virtlab_core::units::bytes(self.bytes as u64),
                self.rounds
            ),
            ["waiting ranks", "one node µs", "two nodes µs"],
        );
        for (name, (one, two)) in [("spin", self.spin), ("yield", self.yielding)] {
            table.row([name.to_string(), format!("{one:.2}"), format!("{two:.2}")]);
        }
        table
    }

    /// Shows [`YieldTrap::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_sizes_and_rounds_are_refused_with_a_fix() {
        assert!(check(&[8], 0).unwrap_err().fix().contains("--rounds"));
        assert!(check(&[], 10).unwrap_err().fix().contains("--sizes"));
        assert!(check(&[8, 0], 10).unwrap_err().fix().contains("--sizes"));
        assert!(check(&[8], 10).is_ok());
    }

    fn report() -> PingpongReport {
        PingpongReport::made(&[(8, 0.4, 300.0), (4 << 20, 900.0, 9000.0)])
    }

    #[test]
    fn the_table_and_charts_show_every_size() {
        let r = report();
        assert_eq!(r.table().rows().len(), 2);
        assert_eq!(r.table().rows()[1][0], "4.0 MiB");
        assert!(r.latency_plot().unwrap().svg().contains("two nodes"));
        assert!(r.bandwidth_plot().unwrap().svg().contains("one node"));
    }
}
