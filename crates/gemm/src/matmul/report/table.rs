//! The sweep table: every measured point as a row (device, type, size, time, GFLOP/s, error),
//! with numpy's GFLOP/s and our ratio to it beside each CPU point when numpy ran.

use crate::matmul::numpy::Numpy;
use crate::matmul::{Device, Run};
use virtlab_core::outcome::Outcome;
use virtlab_display::Table;

impl Run {
    /// Every point as a row: size, device, time, GFLOP/s, error; and where it was measured.
    pub fn table(&self) -> Table {
        self.table_with(None)
    }

    /// [`Run::table`] with numpy's GFLOP/s beside each CPU point and our ratio to it; when numpy
    /// did not run, a last row says why.
    pub fn table_beside(&self, numpy: &Outcome<Numpy>) -> Table {
        self.table_with(Some(numpy))
    }

    fn table_with(&self, numpy: Option<&Outcome<Numpy>>) -> Table {
        let gpu = match (&self.gpu, &self.gpu_skipped) {
            (Some(g), _) => format!(
                "{} (driver {}, cuBLAS {})",
                g.name, g.driver, g.cublas_version
            ),
            (None, Some(why)) => format!("not used: {why}"),
            (None, None) => "not asked for".to_string(),
        };
        let mut header = vec!["device", "type", "n", "median time", "GFLOP/s"];
        let peer = numpy.and_then(Outcome::measured);
        let peer_column = peer.map(|p| format!("{} GFLOP/s (same threads)", p.label()));
        if let Some(column) = &peer_column {
            header.extend([column.as_str(), "ours ÷ numpy"]);
        }
        header.push("max error (limit)");
        let mut table = Table::new(
            format!(
                "Matrix products measured {} on {} ({} CPUs, {}); GPU: {gpu}",
                self.date_utc, self.cpu_model, self.usable_cpus, self.cpu_instruction_set
            ),
            header,
        );
        for p in &self.points {
            let device = match p.threads {
                Some(t) => format!("CPU, {t} threads"),
                None => self.gpu_name(),
            };
            let mut row = vec![
                device,
                p.dtype.name().to_string(),
                p.n.to_string(),
                format!("{:.3} ms", p.median_ms()),
                format!("{:.1}", p.gflops()),
            ];
            if let Some(peer) = peer {
                let theirs = peer.point(p.dtype, p.n).filter(|_| p.device == Device::Cpu);
                row.push(theirs.map_or("—".into(), |t| format!("{:.1}", t.gflops())));
                row.push(theirs.map_or("—".into(), |t| format!("{:.2}×", p.gflops() / t.gflops())));
            }
            row.push(format!("{:.1e} ({:.0e})", p.max_error, p.tolerance));
            table.row(row);
        }
        if let Some(why) = numpy.and_then(Outcome::skipped) {
            table.row(["numpy".to_string(), format!("skipped: {why}")]);
        }
        table
    }

    /// Shows [`Run::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use crate::matmul::Device;
    use crate::matmul::report::fixtures::{cpu_only, no_numpy, numpy, point};

    #[test]
    fn the_sweep_table_puts_numpy_beside_ours_or_says_why_not() {
        let live = cpu_only(vec![
            point(Device::Cpu, 1000, 20.0),
            point(Device::Cpu, 2000, 150.0),
        ]);
        let table = live.table_beside(&numpy(&[(1000, 25.0), (2000, 150.0)]));
        let text = table.to_string();
        assert!(
            text.contains("numpy 2.4.6 GFLOP/s (same threads)"),
            "{text}"
        );
        let last = table.rows().last().unwrap();
        assert_eq!(last[5], "106.7", "numpy's GFLOP/s at n = 2000: {last:?}");
        assert_eq!(last[6], "1.00×");
        assert_eq!(table.rows()[0][6], "1.25×");
        let skipped = live.table_beside(&no_numpy());
        let last = skipped.rows().last().unwrap();
        assert_eq!(last[..], ["numpy", "skipped: no module named numpy"]);
        assert_eq!(
            live.table().rows().len(),
            2,
            "the plain table has no numpy row"
        );
    }
}
