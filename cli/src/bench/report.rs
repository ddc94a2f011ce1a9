//! The bench's findings: printed as they come (one line per subject and step), kept for the
//! `--json` file and the chart.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::stats::{ms, Samples};

/// One subject's figures in one case (or one step of a growth curve).
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    /// `uncontended`, `contended`, `handoff`, `holds`, `waiters`.
    pub(crate) case: &'static str,
    /// `distlock`, `raw`, or the peer's name.
    pub(crate) subject: String,
    /// The step of a growth curve (locks held, waiters).
    pub(crate) step: Option<u64>,
    /// Named figures in print order; a name says its unit (`_us`, `_per_s`, `_bytes`).
    pub(crate) metrics: Vec<(&'static str, f64)>,
    /// Server counters per cycle (or per second, as the case says).
    pub(crate) server: BTreeMap<String, f64>,
    /// Latency at each whole percentile, µs, for the chart.
    pub(crate) percentiles_us: Vec<f64>,
}

impl Row {
    pub(crate) fn new(case: &'static str, subject: &str) -> Row {
        Row {
            case,
            subject: subject.to_string(),
            ..Row::default()
        }
    }

    pub(crate) fn metric(mut self, name: &'static str, value: f64) -> Row {
        self.metrics.push((name, value));
        self
    }

    /// The figures of a contended run: rate, fairness (least over most acquisitions of one
    /// client), the spread, and the counter check (`counted` must equal the acquisitions).
    pub(crate) fn contention(self, per_client: &[u64], counted: u64, elapsed_s: f64) -> Row {
        let total: u64 = per_client.iter().sum();
        let min = per_client.iter().copied().min().unwrap_or(0);
        let max = per_client.iter().copied().max().unwrap_or(0);
        let fairness = if max == 0 {
            0.0
        } else {
            min as f64 / max as f64
        };
        self.metric("acq_per_s", total as f64 / elapsed_s)
            .metric("fairness", fairness)
            .metric("min_per_client", min as f64)
            .metric("max_per_client", max as f64)
            .metric("acquisitions", total as f64)
            .metric("counter", counted as f64)
    }

    /// p50 and p99 of `samples`, and the percentiles for the chart.
    pub(crate) fn latencies(mut self, prefix: &'static str, samples: &Samples) -> Row {
        let (p50, p99) = match prefix {
            "handoff" => ("handoff_p50_us", "handoff_p99_us"),
            "wait" => ("wait_p50_us", "wait_p99_us"),
            _ => ("p50_us", "p99_us"),
        };
        self.metrics.push((p50, us(samples.p50())));
        self.metrics.push((p99, us(samples.p99())));
        self.percentiles_us = samples.percentiles_us();
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The printed line.
    pub(crate) fn line(&self) -> String {
        let mut out = format!("  {:<9}", self.subject);
        if let Some(step) = self.step {
            out.push_str(&format!(" {step:>7}"));
        }
        for (name, value) in &self.metrics {
            out.push_str(&format!("  {}", show(name, *value)));
        }
        if !self.server.is_empty() {
            let counted: Vec<String> = self
                .server
                .iter()
                .map(|(name, v)| format!("{name} {v:.2}"))
                .collect();
            out.push_str(&format!("  | server: {}", counted.join(", ")));
        }
        out
    }

    pub(crate) fn json(&self) -> Value {
        let metrics: serde_json::Map<String, Value> = self
            .metrics
            .iter()
            .map(|(name, v)| (name.to_string(), json!(v)))
            .collect();
        json!({
            "case": self.case,
            "subject": self.subject,
            "step": self.step,
            "metrics": metrics,
            "server": self.server,
            "percentiles_us": self.percentiles_us,
        })
    }
}

pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A figure with its unit, from its name.
fn show(name: &str, value: f64) -> String {
    let label = name
        .trim_end_matches("_us")
        .trim_end_matches("_per_s")
        .trim_end_matches("_bytes")
        .replace('_', " ");
    if name.ends_with("_us") {
        format!(
            "{label} {}",
            ms(Duration::from_secs_f64(value.max(0.0) / 1e6))
        )
    } else if name.ends_with("_per_s") {
        format!("{label} {value:.0}/s")
    } else if name.ends_with("_bytes") {
        format!("{label} {value:.0} B")
    } else if value.fract() == 0.0 {
        format!("{label} {value:.0}")
    } else {
        format!("{label} {value:.2}")
    }
}

/// The cases whose figures are compared as ratios, and the figures.
const CASES: [&str; 3] = ["uncontended", "contended", "handoff"];
const RATIO_METRICS: [&str; 3] = ["cycles_per_s", "acq_per_s", "handoff_p50_us"];

/// The median (the mean of the middle two for an even count); 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Everything one run found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    /// distlock/reference ratios: (case, what, reference, ratio).
    pub(crate) ratios: Vec<(String, String, String, f64)>,
    /// Things the reader must know (caps, skipped subjects, failed checks).
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// Prints and keeps a row.
    pub(crate) fn add(&mut self, row: Row) {
        println!("{}", row.line());
        self.rows.push(row);
    }

    /// Prints and keeps a note.
    pub(crate) fn note(&mut self, note: String) {
        println!("  note: {note}");
        self.notes.push(note);
    }

    /// Prints and keeps distlock's figure over each reference's, for `metric` of `case`.
    pub(crate) fn ratio(&mut self, case: &'static str, metric: &'static str) {
        let find = |subject: &str| {
            self.rows
                .iter()
                .rev()
                .find(|r| r.case == case && r.step.is_none() && r.subject == subject)
                .and_then(|r| r.get(metric))
        };
        let Some(ours) = find("distlock") else { return };
        let references: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.case == case && r.step.is_none() && r.subject != "distlock")
            .map(|r| r.subject.clone())
            .collect();
        for reference in references {
            if let Some(theirs) = find(&reference).filter(|v| *v > 0.0) {
                let ratio = ours / theirs;
                println!(
                    "  distlock/{reference} {}: {ratio:.3}x",
                    metric.replace('_', " ")
                );
                self.ratios
                    .push((case.into(), metric.into(), reference, ratio));
            }
        }
    }

    /// The median of each figure over several runs of the same cases, printed as it is
    /// made; notes of every run are kept.
    pub(crate) fn median(runs: Vec<Report>) -> Report {
        let mut merged = Report::default();
        let Some(first) = runs.first() else {
            return merged;
        };
        for row in &first.rows {
            let same: Vec<&Row> = runs
                .iter()
                .filter_map(|r| {
                    r.rows.iter().find(|o| {
                        o.case == row.case && o.subject == row.subject && o.step == row.step
                    })
                })
                .collect();
            let mut out = Row {
                case: row.case,
                subject: row.subject.clone(),
                step: row.step,
                ..Row::default()
            };
            for (name, _) in &row.metrics {
                let values: Vec<f64> = same.iter().filter_map(|r| r.get(name)).collect();
                out.metrics.push((name, median(values)));
            }
            for name in row.server.keys() {
                let values: Vec<f64> = same
                    .iter()
                    .filter_map(|r| r.server.get(name).copied())
                    .collect();
                out.server.insert(name.clone(), median(values));
            }
            out.percentiles_us = (0..row.percentiles_us.len())
                .map(|i| {
                    median(
                        same.iter()
                            .filter_map(|r| r.percentiles_us.get(i).copied())
                            .collect(),
                    )
                })
                .collect();
            merged.add(out);
        }
        let mut pairs: Vec<(&'static str, &'static str)> = Vec::new();
        for (case, metric, _, _) in &first.ratios {
            let case = CASES.iter().find(|c| **c == case.as_str());
            let metric = RATIO_METRICS.iter().find(|m| **m == metric.as_str());
            if let (Some(case), Some(metric)) = (case, metric) {
                if !pairs.contains(&(case, metric)) {
                    pairs.push((case, metric));
                }
            }
        }
        for (case, metric) in pairs {
            merged.ratio(case, metric);
        }
        for run in &runs {
            for note in &run.notes {
                if !merged.notes.contains(note) {
                    merged.notes.push(note.clone());
                }
            }
        }
        merged
    }

    pub(crate) fn json(&self, header: Value) -> Value {
        json!({
            "bench": header,
            "rows": self.rows.iter().map(Row::json).collect::<Vec<_>>(),
            "ratios": self.ratios.iter().map(|(case, metric, reference, ratio)| json!({
                "case": case, "metric": metric, "reference": reference, "distlock_over_reference": ratio,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_runs() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        let run = |v: f64| Report {
            rows: vec![Row::new("uncontended", "distlock").metric("cycles_per_s", v)],
            ..Report::default()
        };
        let merged = Report::median(vec![run(10.0), run(30.0), run(20.0)]);
        assert_eq!(merged.rows[0].get("cycles_per_s"), Some(20.0));
    }
}
