//! The report: the checker's findings as a table per fault phase, the smallest history
//! excerpt for each violation, the verdict; and the same as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::checker::{ms, Findings, Hold, Input, PhaseStats};
use super::target::Kind;

/// How many excerpts of each kind of violation are printed.
const EXCERPTS: usize = 3;

/// One backend's report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The backend's label.
    pub backend: String,
    /// Its kind.
    pub kind: Option<Kind>,
    /// Its backstop (ms).
    pub backstop_ms: f64,
    /// Worker processes.
    pub processes: usize,
    /// Campaign length (s).
    pub duration_s: f64,
    /// Per fault phase.
    pub phases: Vec<PhaseStats>,
    /// Phases that could not run here, and why.
    pub skipped: Vec<(String, String)>,
    /// Holds left at the end (never released by a live worker, or found by the final probe).
    pub leaked: usize,
    /// Smallest history excerpts that show each violation.
    pub excerpts: Vec<String>,
    /// Violations in all: the run fails unless 0.
    pub violations: usize,
    /// "PASS" or "FAIL".
    pub verdict: &'static str,
    /// Where the histories are.
    pub histories: String,
}

/// Builds the report.
pub fn report(
    backend: &str,
    input: &Input,
    findings: &Findings,
    processes: usize,
    duration: Duration,
    skipped: Vec<(String, String)>,
    histories: String,
) -> Report {
    let violations = findings.violations();
    Report {
        backend: backend.to_string(),
        kind: input.kind,
        backstop_ms: input.backstop.as_secs_f64() * 1000.0,
        processes,
        duration_s: duration.as_secs_f64(),
        phases: findings.phases.clone(),
        skipped,
        leaked: findings.leaked.len() + usize::from(findings.held_at_end.is_some()),
        excerpts: excerpts(input, findings),
        violations,
        verdict: if violations == 0 { "PASS" } else { "FAIL" },
        histories,
    }
}

fn excerpts(input: &Input, findings: &Findings) -> Vec<String> {
    let t0 = input
        .holds
        .iter()
        .map(|h| h.requested)
        .chain(input.phases.first().map(|&(_, s)| s))
        .min()
        .unwrap_or(0);
    let at = |t: u64| format!("{:.1}ms", ms(t.saturating_sub(t0)));
    let hold = |h: &Hold| {
        format!(
            "  hold by worker {} token {}: acquire called at {}, held from {} to {}, lost signal {}, release {}{}",
            h.holder,
            h.token.map_or("none".into(), |t| t.to_string()),
            at(h.requested),
            at(h.start),
            h.end.map_or("(never released)".into(), at),
            h.lost.map_or("never".into(), at),
            h.release
                .as_ref()
                .map_or("none".into(), |r| format!("{r:?}").to_lowercase()),
            h.killed
                .map_or(String::new(), |k| format!(", killed at {}", at(k))),
        )
    };
    let faults_between = |from: u64, to: u64| {
        input
            .faults
            .iter()
            .filter(|f| f.end >= from && f.start <= to)
            .map(|f| {
                format!(
                    "  fault {} from {} to {}{}",
                    f.fault.name(),
                    at(f.start),
                    at(f.end),
                    f.target
                        .as_ref()
                        .map_or(String::new(), |t| format!(" on worker {t}"))
                )
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for o in findings
        .overlaps
        .iter()
        .filter(|o| o.explanation.is_none())
        .take(EXCERPTS)
    {
        let (a, b) = (&input.holds[o.earlier], &input.holds[o.later]);
        let mut text = format!("unexplained overlap of {:.1} ms:\n", ms(o.length));
        let _ = writeln!(text, "{}\n{}", hold(a), hold(b));
        for line in faults_between(a.requested, b.end.unwrap_or(input.end)) {
            let _ = writeln!(text, "{line}");
        }
        out.push(text);
    }
    for &(newer, offender) in findings.out_of_order.iter().take(EXCERPTS) {
        let (n, o) = (&input.register[newer], &input.register[offender]);
        out.push(format!(
            "fenced write accepted out of order:\n  at {} worker {} wrote with token {} (accepted)\n  at {} worker {} wrote with token {} (accepted)\n",
            at(n.mono), n.holder, n.token, at(o.mono), o.holder, o.token
        ));
    }
    for &i in findings.silent.iter().take(EXCERPTS) {
        let a = &input.holds[i];
        let mut text =
            "hold lost silently (another worker held the lock meanwhile; no lost signal, release said Ok):\n"
                .to_string();
        let _ = writeln!(text, "{}", hold(a));
        for o in findings.overlaps.iter().filter(|o| o.earlier == i).take(1) {
            let _ = writeln!(text, "{}", hold(&input.holds[o.later]));
        }
        out.push(text);
    }
    for &i in findings.leaked.iter().take(EXCERPTS) {
        out.push(format!(
            "hold never released by a live worker:\n{}\n",
            hold(&input.holds[i])
        ));
    }
    if let Some(why) = &findings.held_at_end {
        out.push(format!(
            "lock still held after every worker stopped: {why}\n"
        ));
    }
    out
}

/// The report as text.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n== {} — {} workers, {:.0} s, backstop {:.0} ms",
        r.backend, r.processes, r.duration_s, r.backstop_ms
    );
    let _ = writeln!(
        s,
        "{:<15}{:>7}{:>7}{:>10}{:>9}{:>9}{:>9}{:>8}{:>9}{:>7}{:>12}",
        "fault",
        "holds",
        "faults",
        "explained",
        "unexpl.",
        "ooo-wr",
        "stale-wr",
        "silent",
        "at-rel.",
        "lost",
        "unavail.ms"
    );
    for p in &r.phases {
        let explained: usize = p.explained.values().sum();
        let _ = writeln!(
            s,
            "{:<15}{:>7}{:>7}{:>10}{:>9}{:>9}{:>9}{:>8}{:>9}{:>7}{:>12.0}",
            p.fault,
            p.holds,
            p.faults,
            explained,
            p.unexplained,
            p.out_of_order_writes,
            p.stale_writes_refused,
            p.silent_losses,
            p.losses_reported_at_release,
            p.lost_signals,
            p.max_unavailability_ms
        );
    }
    for (fault, why) in &r.skipped {
        let _ = writeln!(s, "{fault:<15} skipped: {why}");
    }
    for p in r.phases.iter().filter(|p| !p.explained.is_empty()) {
        for (why, n) in &p.explained {
            let _ = writeln!(s, "  {}: {n} overlap(s) explained: {why}", p.fault);
        }
        let _ = writeln!(
            s,
            "  {}: longest explained overlap {:.1} ms",
            p.fault, p.max_explained_overlap_ms
        );
    }
    let _ = writeln!(s, "holds left at the end: {}", r.leaked);
    for e in &r.excerpts {
        let _ = write!(s, "{e}");
    }
    let _ = writeln!(
        s,
        "verdict: {} ({} violation(s)); histories: {}",
        r.verdict, r.violations, r.histories
    );
    s
}

/// The legend printed once under the tables.
pub const LEGEND: &str = "\
columns: explained/unexpl. = overlapping holds with/without a documented reason; ooo-wr = \
fenced writes accepted out of order; stale-wr = stale writes the fence refused; silent = \
holds lost with neither a lost signal nor an error from release; at-rel. = losses reported \
only by release() (NotHeld); lost = lost signals; unavail.ms = longest time from a fault's \
end to the next hold. Violations (fail the run): unexplained, ooo-wr, silent, holds left.";
