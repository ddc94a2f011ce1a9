//! How much each case measures: the full run, `--quick`, and the overrides.

use std::time::Duration;

use distlock::{LockError, Result};
use serde_json::{json, Value};

use super::target::Kind;
use super::BenchArgs;

#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) warmup: usize,
    pub(crate) rounds: usize,
    pub(crate) clients: usize,
    pub(crate) contended: Duration,
    pub(crate) handoffs: usize,
    pub(crate) holds: Vec<usize>,
    pub(crate) waiters: Vec<usize>,
    only: Vec<String>,
    /// The cross-process cases exist for lock files only.
    processes: bool,
}

impl Plan {
    pub(crate) fn new(args: &BenchArgs, kind: Kind) -> Result<Plan> {
        let local = matches!(kind, Kind::File | Kind::Memory);
        let mut plan = if args.quick {
            Plan {
                warmup: 50,
                rounds: 300,
                clients: 8,
                contended: Duration::from_secs(if local { 1 } else { 3 }),
                handoffs: if local { 8 } else { 15 },
                holds: vec![1, 10, 100, 1000],
                waiters: vec![1, 8, 32],
                only: Vec::new(),
                processes: false,
            }
        } else {
            Plan {
                warmup: 200,
                rounds: 2000,
                clients: 8,
                contended: Duration::from_secs(5),
                handoffs: 60,
                holds: vec![1, 10, 100, 1000, 10_000, 100_000],
                waiters: vec![1, 4, 16, 64, 256],
                only: Vec::new(),
                processes: false,
            }
        };
        if let Some(rounds) = args.iterations {
            plan.rounds = rounds.max(1);
        }
        if let Some(clients) = args.clients {
            plan.clients = usize::from(clients);
        }
        if let Some(seconds) = args.seconds {
            plan.contended = Duration::try_from_secs_f64(seconds)
                .ok()
                .filter(|d| !d.is_zero() && d.as_secs() <= 3600)
                .ok_or_else(|| {
                    LockError::config(format!(
                        "--seconds must be more than 0 and at most 3600, not {seconds}"
                    ))
                })?;
        }
        plan.only = args.only.clone();
        plan.processes = kind == Kind::File;
        Ok(plan)
    }

    /// Whether `case` is measured in this run.
    pub(crate) fn runs(&self, case: &str) -> bool {
        (case != "processes" || self.processes)
            && (self.only.is_empty() || self.only.iter().any(|c| c == case))
    }

    /// Progress-bar steps: one per subject of each case, one per growth step.
    pub(crate) fn steps(&self, subjects: usize, growth: usize) -> u64 {
        let mut steps = 0;
        for case in ["uncontended", "contended", "handoff"] {
            if self.runs(case) {
                steps += subjects;
            }
        }
        if self.runs("holds") {
            steps += self.holds.len();
        }
        if self.runs("waiters") {
            steps += self.waiters.len() * growth;
        }
        if self.runs("processes") {
            steps += 2;
        }
        steps as u64
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "warmup": self.warmup,
            "rounds": self.rounds,
            "clients": self.clients,
            "contended_s": self.contended.as_secs_f64(),
            "handoffs": self.handoffs,
            "holds": self.holds,
            "waiters": self.waiters,
        })
    }
}
