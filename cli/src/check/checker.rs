//! The checker: pure functions from a campaign's histories to its findings. No I/O, so
//! every rule is unit-tested on synthetic histories (below).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::args::Fault;
use super::history::{NemesisEvent, RegisterEntry, Release, WorkerEvent};
use super::target::Kind;

/// How late a lost signal may be logged after another holder's start and still count as
/// having fired first: the worker logs it after its task wakes, which a loaded machine
/// delays. Reported under its own explanation, never mixed with the strict one.
pub const LOST_TOLERANCE: Duration = Duration::from_millis(100);
/// Slack on top of the backstop for a holder to notice a documented unsafe fault.
pub const NOTICE_SLACK: Duration = Duration::from_secs(2);

/// Explanation of an overlap that began after the earlier holder's lost signal.
pub const AFTER_LOST: &str = "began after the earlier holder's lost signal";
/// Explanation of an overlap that began just before the lost signal was logged.
pub const NEAR_LOST: &str =
    "began within 100 ms before the earlier holder's lost signal was logged";

/// One hold, from a worker's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// The worker (`slot.generation`).
    pub holder: String,
    /// Its fencing token.
    pub token: Option<u64>,
    /// When the acquire was called (monotonic ns): faults from then on can hit the hold.
    pub requested: u64,
    /// When the acquire returned (monotonic ns).
    pub start: u64,
    /// When the release was called: the end of the critical section.
    pub end: Option<u64>,
    /// When the lost signal was logged.
    pub lost: Option<u64>,
    /// What the release said.
    pub release: Option<Release>,
    /// When the nemesis sent SIGKILL to the worker during this hold (it acts no more).
    pub killed: Option<u64>,
}

impl Hold {
    /// Until when the holder may have acted: its release, its death, or the campaign's end.
    fn until(&self, campaign_end: u64) -> u64 {
        self.end.or(self.killed).unwrap_or(campaign_end)
    }

    /// When the holder stopped believing it held the lock.
    fn noticed(&self, campaign_end: u64) -> u64 {
        self.lost.map_or(self.until(campaign_end), |l| {
            l.min(self.until(campaign_end))
        })
    }
}

/// One fault the nemesis injected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// Its kind.
    pub fault: Fault,
    /// Start and end (monotonic ns); equal for instant faults.
    pub start: u64,
    /// See `start`.
    pub end: u64,
    /// The worker it hit, for holder faults.
    pub target: Option<String>,
}

/// Everything the checker reads.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// The backend kind (which faults it documents as unsafe).
    pub kind: Option<Kind>,
    /// Its backstop.
    pub backstop: Duration,
    /// Every hold of every worker.
    pub holds: Vec<Hold>,
    /// The fenced register's decisions, in its order.
    pub register: Vec<RegisterEntry>,
    /// The injected faults.
    pub faults: Vec<FaultRecord>,
    /// Phases: (fault kind, start); each runs until the next one or `end`.
    pub phases: Vec<(Fault, u64)>,
    /// When the workers were asked to stop.
    pub end: u64,
    /// Why the lock was still held after every worker stopped (the final probe), if it was.
    pub held_at_end: Option<String>,
}

/// Builds holds from one worker's events; a hold left open is closed by a kill aimed at
/// this worker, or stays open (a leaked hold).
pub fn holds_of(holder: &str, events: &[WorkerEvent], faults: &[FaultRecord]) -> Vec<Hold> {
    let mut holds: Vec<Hold> = Vec::new();
    let mut open: Option<Hold> = None;
    for event in events {
        match event {
            WorkerEvent::Acquired {
                called,
                mono,
                token,
                ..
            } => {
                if let Some(mut previous) = open.take() {
                    previous.end = Some(*mono);
                    holds.push(previous);
                }
                open = Some(Hold {
                    holder: holder.to_string(),
                    token: *token,
                    requested: if *called > 0 { *called } else { *mono },
                    start: *mono,
                    end: None,
                    lost: None,
                    release: None,
                    killed: None,
                });
            }
            WorkerEvent::Lost { mono, .. } => {
                if let Some(h) = open.as_mut() {
                    h.lost.get_or_insert(*mono);
                }
            }
            WorkerEvent::Released { called, result, .. } => {
                if let Some(mut h) = open.take() {
                    h.end = Some(*called);
                    h.release = Some(result.clone());
                    holds.push(h);
                }
            }
            _ => {}
        }
    }
    if let Some(mut h) = open {
        h.killed = faults
            .iter()
            .filter(|f| f.fault == Fault::HolderKill && f.target.as_deref() == Some(holder))
            .map(|f| f.start)
            .find(|&t| t >= h.start);
        holds.push(h);
    }
    holds
}

/// Reads the nemesis' history into faults, phases and the campaign's end.
pub fn nemesis_of(events: &[NemesisEvent]) -> (Vec<FaultRecord>, Vec<(Fault, u64)>, Option<u64>) {
    let mut faults = Vec::new();
    let mut phases = Vec::new();
    let mut end = None;
    for event in events {
        match event {
            NemesisEvent::Phase { fault, mono, .. } => phases.push((*fault, *mono)),
            NemesisEvent::Fault {
                fault,
                start,
                end,
                target,
                ..
            } => faults.push(FaultRecord {
                fault: *fault,
                start: *start,
                end: *end,
                target: target.clone(),
            }),
            NemesisEvent::End { mono } => end = Some(*mono),
        }
    }
    (faults, phases, end)
}

/// Two holds at once: `earlier` began first, `later` began while it was still held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// Index into `Input::holds`.
    pub earlier: usize,
    /// Index into `Input::holds`.
    pub later: usize,
    /// How long both were held (ns).
    pub length: u64,
    /// Why it is allowed, or `None`: a violation.
    pub explanation: Option<String>,
}

/// What one phase showed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseStats {
    /// The phase's fault kind.
    pub fault: String,
    /// Holds that began in it.
    pub holds: usize,
    /// Faults injected.
    pub faults: usize,
    /// Overlaps with an explanation, by explanation.
    pub explained: BTreeMap<String, usize>,
    /// The longest time two workers believed they held the lock, over explained overlaps:
    /// from the first later hold's start to the earlier holder's end (ms).
    pub max_explained_overlap_ms: f64,
    /// Overlaps without one: violations.
    pub unexplained: usize,
    /// Writes the register accepted out of order (older token, or another holder's equal
    /// token): violations.
    pub out_of_order_writes: usize,
    /// Stale writes the register refused (the fence doing its job).
    pub stale_writes_refused: usize,
    /// Holds lost (another holder got the lock) that neither the lost signal nor the
    /// release reported: violations.
    pub silent_losses: usize,
    /// Holds whose loss only `release()` reported (`NotHeld`), never the lost signal.
    pub losses_reported_at_release: usize,
    /// Holds whose lost signal fired.
    pub lost_signals: usize,
    /// The longest time from a fault's end to the next hold's start (ms).
    pub max_unavailability_ms: f64,
}

/// The checker's findings.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Findings {
    /// Per phase, in campaign order.
    pub phases: Vec<PhaseStats>,
    /// Every overlap found.
    pub overlaps: Vec<Overlap>,
    /// Register entries accepted out of order: (index of the newer accepted entry, index
    /// of the offending one).
    pub out_of_order: Vec<(usize, usize)>,
    /// Holds (indices) lost silently.
    pub silent: Vec<usize>,
    /// Holds (indices) never released by a live worker.
    pub leaked: Vec<usize>,
    /// The final probe's complaint, if the lock stayed held after every worker stopped.
    pub held_at_end: Option<String>,
}

impl Findings {
    /// Whether anything must fail the run.
    pub fn violations(&self) -> usize {
        self.overlaps
            .iter()
            .filter(|o| o.explanation.is_none())
            .count()
            + self.out_of_order.len()
            + self.silent.len()
            + self.leaked.len()
            + usize::from(self.held_at_end.is_some())
    }
}

/// Every overlap between holds, explained where the rules allow.
pub fn overlaps(input: &Input) -> Vec<Overlap> {
    let mut order: Vec<usize> = (0..input.holds.len()).collect();
    order.sort_by_key(|&i| input.holds[i].start);
    let mut found = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    for &b in &order {
        let later = &input.holds[b];
        active.retain(|&a| input.holds[a].until(input.end) > later.start);
        for &a in &active {
            let earlier = &input.holds[a];
            let length = earlier.until(input.end).min(later.until(input.end)) - later.start;
            found.push(Overlap {
                earlier: a,
                later: b,
                length,
                explanation: explain(input, earlier, later),
            });
        }
        active.push(b);
    }
    found
}

fn explain(input: &Input, earlier: &Hold, later: &Hold) -> Option<String> {
    if let Some(lost) = earlier.lost {
        if lost <= later.start {
            return Some(AFTER_LOST.to_string());
        }
        if lost <= later.start + nanos(LOST_TOLERANCE) {
            return Some(NEAR_LOST.to_string());
        }
    }
    let kind = input.kind?;
    let noticed = earlier.noticed(input.end);
    input.faults.iter().find_map(|f| {
        let name = kind.unsafe_fault(f.fault)?;
        let hit = f.start <= later.start
            && f.end >= earlier.requested
            && (f.fault != Fault::HolderStop || f.target.as_deref() == Some(&earlier.holder))
            && noticed <= f.end + nanos(input.backstop + NOTICE_SLACK);
        hit.then(|| name.to_string())
    })
}

/// Accepted register writes out of order: (newest accepted so far, offender).
pub fn out_of_order(register: &[RegisterEntry]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut newest: Option<usize> = None;
    for (i, entry) in register.iter().enumerate().filter(|(_, e)| e.accepted) {
        match newest {
            Some(n) if entry.token < register[n].token => found.push((n, i)),
            Some(n) if entry.token == register[n].token && entry.holder != register[n].holder => {
                found.push((n, i));
            }
            Some(n) if entry.token == register[n].token => {}
            _ => newest = Some(i),
        }
    }
    found
}

/// The checker's whole verdict on a campaign.
pub fn check(input: &Input) -> Findings {
    let overlaps = overlaps(input);
    let out_of_order = out_of_order(&input.register);
    let overlapped: BTreeSet<usize> = overlaps.iter().map(|o| o.earlier).collect();
    let silent: Vec<usize> = overlapped
        .into_iter()
        .filter(|&i| {
            let h = &input.holds[i];
            h.lost.is_none() && h.release == Some(Release::Ok)
        })
        .collect();
    let leaked: Vec<usize> = (0..input.holds.len())
        .filter(|&i| input.holds[i].end.is_none() && input.holds[i].killed.is_none())
        .collect();

    let phase_of = |t: u64| -> usize {
        input
            .phases
            .iter()
            .rposition(|&(_, start)| start <= t)
            .unwrap_or(0)
    };
    let mut phases: Vec<PhaseStats> = input
        .phases
        .iter()
        .map(|(f, _)| PhaseStats {
            fault: f.name().to_string(),
            ..PhaseStats::default()
        })
        .collect();
    if phases.is_empty() {
        phases.push(PhaseStats {
            fault: Fault::None.name().to_string(),
            ..PhaseStats::default()
        });
    }
    for h in &input.holds {
        let p = &mut phases[phase_of(h.start)];
        p.holds += 1;
        p.lost_signals += usize::from(h.lost.is_some());
        p.losses_reported_at_release +=
            usize::from(h.lost.is_none() && h.release == Some(Release::NotHeld));
    }
    let mut first_later: BTreeMap<usize, u64> = BTreeMap::new();
    for o in &overlaps {
        let p = &mut phases[phase_of(input.holds[o.later].start)];
        match &o.explanation {
            Some(why) => {
                *p.explained.entry(why.clone()).or_default() += 1;
                let first = first_later.entry(o.earlier).or_insert(u64::MAX);
                *first = (*first).min(input.holds[o.later].start);
            }
            None => p.unexplained += 1,
        }
    }
    for (&earlier, &first) in &first_later {
        let window = input.holds[earlier].until(input.end).saturating_sub(first);
        let p = &mut phases[phase_of(first)];
        p.max_explained_overlap_ms = p.max_explained_overlap_ms.max(ms(window));
    }
    for &(_, i) in &out_of_order {
        phases[phase_of(input.register[i].mono)].out_of_order_writes += 1;
    }
    for e in input.register.iter().filter(|e| !e.accepted) {
        phases[phase_of(e.mono)].stale_writes_refused += 1;
    }
    for &i in &silent {
        phases[phase_of(input.holds[i].start)].silent_losses += 1;
    }
    for f in &input.faults {
        let p = phase_of(f.start);
        let phase_end = input.phases.get(p + 1).map_or(input.end, |&(_, s)| s);
        let next = input
            .holds
            .iter()
            .map(|h| h.start)
            .filter(|&s| s >= f.start)
            .min()
            .unwrap_or(phase_end.max(f.end));
        let stats = &mut phases[p];
        stats.faults += 1;
        stats.max_unavailability_ms = stats
            .max_unavailability_ms
            .max(ms(next.saturating_sub(f.end)));
    }
    Findings {
        phases,
        overlaps,
        out_of_order,
        silent,
        leaked,
        held_at_end: input.held_at_end.clone(),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds as milliseconds, for reports.
pub fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e6 * 10.0).round() / 10.0
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;
