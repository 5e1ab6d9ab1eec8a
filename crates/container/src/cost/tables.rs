//! How [`Costs`] are shown: start → first line per kind, the container's start step by step (a
//! table of every step, and a stacked chart that sums pid 1's set-up into one segment), the two
//! ways into a group, and each namespace alone with a sentence naming the dearest.

use super::Costs;
use crate::init::PID1_SETUP;
use crate::kind::{FIRST_LINE, WORKER_RUNNING};
use virtlab_core::Result;
use virtlab_core::units;
use virtlab_display::plot::BarChart;
use virtlab_display::{Figure, Table};

/// The start chart's segments that stand for several steps each: pid 1's own set-up, and the
/// worker from its start to its first line. With them the chart has at most eight segments, as
/// many as the chart palette has distinct colours (the table keeps every step).
const CHART_GROUPS: [(&str, &[&str]); 2] = [
    ("pid 1 set up (ids, hostname, root, lo)", &PID1_SETUP),
    (
        "worker: running → first line",
        &[WORKER_RUNNING, FIRST_LINE],
    ),
];

impl Costs {
    /// Start → first line and memory per kind, with the ratio to a plain process.
    pub fn table(&self) -> Table {
        let process = self.starts.first().and_then(|s| s.first_line_ms);
        let mut t = Table::new(
            format!(
                "Start → first line, median of {} ({})",
                self.repeats, self.cpu
            ),
            [
                "kind",
                "start → first line",
                "× a process",
                "memory",
                "note",
            ],
        );
        for s in &self.starts {
            t.row([
                s.kind.clone(),
                s.first_line_ms
                    .map_or("–".into(), |ms| format!("{ms:.1} ms")),
                match (s.first_line_ms, process) {
                    (Some(ms), Some(p)) if p > 0.0 => format!("{:.1}×", ms / p),
                    _ => "–".into(),
                },
                s.memory_bytes
                    .map_or("–".into(), |b| units::bytes(b.max(0.0) as u64)),
                s.note.clone(),
            ]);
        }
        t
    }

    /// Every step of either container, in order, with its median ms without and with a
    /// cgroup (`None` where a step belongs to the other one only).
    fn step_rows(&self) -> Vec<(String, Option<f64>, Option<f64>)> {
        let mut names: Vec<&String> = self.steps.iter().map(|(n, _)| n).collect();
        for (i, (name, _)) in self.steps_no_cgroup.iter().enumerate() {
            if !names.contains(&name) {
                names.insert(i.min(names.len()), name);
            }
        }
        let find = |steps: &[(String, f64)], name: &String| {
            steps.iter().find(|(n, _)| n == name).map(|(_, ms)| *ms)
        };
        names
            .into_iter()
            .map(|n| {
                (
                    n.clone(),
                    find(&self.steps_no_cgroup, n),
                    find(&self.steps, n),
                )
            })
            .collect()
    }

    /// Each step from asking for our container to its first line, median ms, without and
    /// with a cgroup ("–" where a step belongs to one of them only).
    pub fn steps_table(&self) -> Table {
        let mut t = Table::new(
            "Where a container's start goes (median ms per step)",
            ["step ends with", "no cgroup", "with a cgroup"],
        );
        let cell = |ms: Option<f64>| ms.map_or("–".into(), |ms| format!("{ms:.2}"));
        for (name, plain, grouped) in self.step_rows() {
            t.row([name, cell(plain), cell(grouped)]);
        }
        t
    }

    /// The two ways into a cgroup v1 group: which one waits for the kernel's RCU grace period.
    pub fn joins_table(&self) -> Table {
        let mut t = Table::new(
            "Into a cgroup: a pid written from outside vs the process moving itself (median)",
            ["how", "ms"],
        );
        for (how, ms) in &self.joins {
            t.row([how.clone(), format!("{ms:.2}")]);
        }
        t
    }

    /// The steps as drawn: [`Costs::step_rows`] with each of [`CHART_GROUPS`] summed into one
    /// segment, so that no two segments share a colour.
    fn chart_rows(&self) -> Vec<(String, f64, f64)> {
        let mut rows: Vec<(String, f64, f64)> = Vec::new();
        for (name, plain, grouped) in self.step_rows() {
            let (plain, grouped) = (plain.unwrap_or(0.0), grouped.unwrap_or(0.0));
            let label = CHART_GROUPS
                .iter()
                .find(|(_, steps)| steps.contains(&name.as_str()))
                .map_or(name, |(label, _)| label.to_string());
            match rows.iter_mut().find(|r| r.0 == label) {
                Some(row) => {
                    row.1 += plain;
                    row.2 += grouped;
                }
                None => rows.push((label, plain, grouped)),
            }
        }
        rows
    }

    /// The steps as one stacked bar per container: without and with a cgroup.
    pub fn plot(&self) -> Result<Figure> {
        let rows = self.chart_rows();
        let names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
        let plain: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let grouped: Vec<f64> = rows.iter().map(|r| r.2).collect();
        BarChart::new("Our container's start, step by step", &names)
            .x_label("milliseconds")
            .bar("no cgroup", &plain)
            .bar("with a cgroup", &grouped)
            .render()
            .map_err(Into::into)
    }

    /// fork + unshare + exit + wait per namespace kind.
    pub fn namespaces_table(&self) -> Table {
        let base = self.namespaces.first().map_or(0.0, |n| n.1);
        let mut t = Table::new(
            "Each namespace alone: fork + unshare + exit + wait (median)",
            ["namespace", "ms", "more than none"],
        );
        for (name, ms) in &self.namespaces {
            t.row([
                name.clone(),
                format!("{ms:.3}"),
                format!("{:+.3}", ms - base),
            ]);
        }
        t
    }

    /// Which namespace kinds cost most and least beyond a bare fork, in this run.
    pub fn namespaces_summary(&self) -> String {
        let Some(((_, base), kinds)) = self.namespaces.split_first() else {
            return "The namespace kinds were not measured.".into();
        };
        let by_cost = |a: &&(String, f64), b: &&(String, f64)| a.1.total_cmp(&b.1);
        match (kinds.iter().max_by(by_cost), kinds.iter().min_by(by_cost)) {
            (Some((dearest, most)), Some((cheapest, least))) => format!(
                "Beyond a bare fork ({base:.3} ms): the dearest namespace here was {dearest} \
                 ({:+.3} ms), the cheapest {cheapest} ({:+.3} ms).",
                most - base,
                least - base
            ),
            _ => "No namespace kind could be created here.".into(),
        }
    }

    /// Shows the start-cost table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_table_lines_up_both_containers_and_marks_missing_steps() {
        let named = |l: &[(&str, f64)]| l.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        let costs = Costs {
            cpu: "cpu".into(),
            repeats: 1,
            starts: Vec::new(),
            steps: named(&[("cgroup created", 0.3), ("joined", 0.1), ("lo up", 0.2)]),
            steps_no_cgroup: named(&[("cgroup created", 0.1), ("lo up", 0.4)]),
            joins: Vec::new(),
            namespaces: Vec::new(),
        };
        let rows = costs.step_rows();
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names, ["cgroup created", "joined", "lo up"]);
        assert_eq!(rows[1], ("joined".to_string(), None, Some(0.1)));
        assert_eq!(rows[2], ("lo up".to_string(), Some(0.4), Some(0.2)));
        assert!(costs.steps_table().to_string().contains("–"));
        assert!(costs.plot().is_ok());
    }

    #[test]
    fn the_namespace_summary_names_the_dearest_and_the_cheapest() {
        let costs = Costs {
            cpu: "cpu".into(),
            repeats: 1,
            starts: Vec::new(),
            steps: Vec::new(),
            steps_no_cgroup: Vec::new(),
            joins: Vec::new(),
            namespaces: vec![
                ("none".into(), 0.5),
                ("uts".into(), 0.52),
                ("net".into(), 1.4),
                ("mnt".into(), 0.7),
            ],
        };
        let text = costs.namespaces_summary();
        assert!(
            text.contains("dearest namespace here was net (+0.900 ms)"),
            "{text}"
        );
        assert!(text.contains("the cheapest uts (+0.020 ms)"), "{text}");
    }

    #[test]
    fn the_chart_sums_its_step_groups_and_stays_within_eight_colours() {
        let named = |l: &[&str]| {
            l.iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i as f64))
                .collect::<Vec<_>>()
        };
        // Every step a container with a cgroup v1 group reports, in order.
        let steps = [
            "shim asked for",
            "cgroup made (beside the shim's start)",
            "shim started",
            "namespaces cloned",
            "child running",
            "cgroup joined (v1, itself: no RCU wait)",
            PID1_SETUP[0],
            PID1_SETUP[1],
            PID1_SETUP[2],
            WORKER_RUNNING,
            FIRST_LINE,
        ];
        let costs = Costs {
            cpu: "cpu".into(),
            repeats: 1,
            starts: Vec::new(),
            steps: named(&steps),
            steps_no_cgroup: Vec::new(),
            joins: Vec::new(),
            namespaces: Vec::new(),
        };
        let rows = costs.chart_rows();
        assert!(rows.len() <= 8, "{rows:?}");
        assert_eq!(rows.len(), steps.len() - 3);
        let setup = rows.iter().find(|r| r.0 == CHART_GROUPS[0].0).unwrap();
        assert_eq!(setup.2, 6.0 + 7.0 + 8.0, "the three steps summed");
        let last = rows.last().unwrap();
        assert_eq!(
            (last.0.as_str(), last.2),
            (CHART_GROUPS[1].0, 9.0 + 10.0),
            "order kept"
        );
        assert_eq!(
            costs.steps_table().rows().len(),
            steps.len(),
            "the table keeps all"
        );
    }
}
