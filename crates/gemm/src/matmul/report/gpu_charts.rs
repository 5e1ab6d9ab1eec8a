//! The GPU's time charts: where a product's time goes (copy in, compute, copy out), and the
//! essay's mistake, timing only the launch, beside the synchronized time.

use crate::matmul::{GpuTimes, Point, Run};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_display::Figure;
use virtlab_display::plot::BarChart;

/// The run's GPU points with their GPU times, or an error saying there are none.
fn gpu_points_or_error(run: &Run) -> Result<Vec<(&Point, &GpuTimes)>> {
    let points: Vec<(&Point, &GpuTimes)> = run
        .gpu_points()
        .filter_map(|p| p.gpu.as_ref().map(|times| (p, times)))
        .collect();
    if points.is_empty() {
        return Err(Error::new(
            "this run has no GPU measurements",
            "run with device gpu or both on a machine with a GPU, or use the recorded results",
        ));
    }
    Ok(points)
}

/// Where a GPU product's time goes, per size: copying A and B in, the product, copying C out.
pub fn gpu_time_split(run: &Run) -> Result<Figure> {
    let mut chart = BarChart::new(
        format!("Where the time goes on the {}", run.gpu_name()),
        &["copy in (A, B)", "compute", "copy out (C)"],
    )
    .x_label("milliseconds");
    for (p, times) in gpu_points_or_error(run)? {
        chart = chart.bar(
            format!("{} n = {}", p.dtype, p.n),
            &[times.copy_in_ms, p.median_ms(), times.copy_out_ms],
        );
    }
    chart.render().map_err(Into::into)
}

/// The essay's mistake beside the truth: wall time of the call alone, and of call + synchronize.
pub fn launch_vs_synchronized(run: &Run) -> Result<Figure> {
    let mut chart = BarChart::new(
        "Timing the GPU: launch only (the essay) vs synchronized",
        &["milliseconds"],
    )
    .x_label("milliseconds (host clock)");
    for (p, times) in gpu_points_or_error(run)? {
        chart = chart
            .bar(
                format!("{} n = {}: launch only", p.dtype, p.n),
                &[times.launch_only_median_ms()],
            )
            .bar(
                format!("{} n = {}: synchronized", p.dtype, p.n),
                &[times.synchronized_median_ms()],
            );
    }
    chart.render().map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::Device;
    use crate::matmul::report::fixtures::{cpu_only, point, run_with};

    #[test]
    fn gpu_charts_need_gpu_points() {
        let cpu = cpu_only(vec![point(Device::Cpu, 10_000, 16_000.0)]);
        assert!(gpu_time_split(&cpu).unwrap_err().fix().contains("recorded"));
        let gpu = run_with(vec![point(Device::Gpu, 10_000, 40.0)]);
        assert!(gpu_time_split(&gpu).unwrap().svg().contains("compute"));
        assert!(
            launch_vs_synchronized(&gpu)
                .unwrap()
                .svg()
                .contains("launch only")
        );
    }
}
