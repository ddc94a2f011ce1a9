//! Running one case as one test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::case::{Case, Outcome};
use crate::cases::process::{run_child, CHILD_ROLE};
use crate::cases::run_case_in;
use crate::harness::Harness;

/// No case may run longer than this.
pub const CASE_LIMIT: Duration = Duration::from_secs(240);

/// The body of every test the [`conformance_tests!`](crate::conformance_tests) macro writes:
/// builds a multi-threaded runtime and the harness, then runs the case (or, in a child
/// process started by a cross-process case, the child's role). Panics when the case fails;
/// prints `SKIPPED <case>/<check>: <reason>` for each sub-check that could not run. When
/// the last case of the suite in `module_path` ends (all of [`Case::ALL`] ran in this
/// process), prints a summary: passed and skipped sub-checks per case.
pub fn run_test<H: Harness>(case: &str, module_path: &str, make: impl FnOnce() -> H) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    // libtest names tests by their path without the crate name.
    let test_path = match module_path.split_once("::") {
        Some((_krate, rest)) => format!("{rest}::{case}"),
        None => case.to_string(),
    };
    let harness: Arc<dyn Harness> = Arc::new(make());
    // Catch a failing case's panic so the runtime still shuts down with a time limit:
    // dropping it while unwinding would wait for a stuck blocking task forever.
    let run = std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async move {
            if let Ok(role) = std::env::var(CHILD_ROLE) {
                run_child(&role, harness.as_ref()).await;
                return;
            }
            let Some(case) = Case::from_name(case) else {
                panic!("unknown conformance case {case}");
            };
            match tokio::time::timeout(CASE_LIMIT, run_case_in(case, harness, Some(test_path)))
                .await
            {
                Ok(outcome) => record(module_path, case, Some(outcome)),
                Err(_) => panic!("{case} did not finish within {CASE_LIMIT:?}"),
            }
        })
    });
    let outcome = std::panic::catch_unwind(run);
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Err(panic) = outcome {
        if std::env::var(CHILD_ROLE).is_err() {
            if let Some(case) = Case::from_name(case) {
                record(module_path, case, None);
            }
        }
        std::panic::resume_unwind(panic);
    }
}

/// The outcomes of one suite (one `conformance_tests!` expansion) in this process so far;
/// `None` for a case that failed.
type Results = BTreeMap<String, Vec<(Case, Option<Outcome>)>>;

fn record(suite: &str, case: Case, outcome: Option<Outcome>) {
    static RESULTS: Mutex<Results> = Mutex::new(BTreeMap::new());
    let mut results = RESULTS.lock().unwrap_or_else(|p| p.into_inner());
    let done = results.entry(suite.to_string()).or_default();
    done.push((case, outcome));
    if done.len() == Case::ALL.len() {
        let summary = summary(suite, done);
        // Past libtest's capture, like the skips, so it shows in every run.
        use std::io::Write;
        let _ = std::io::stderr().write_all(summary.as_bytes());
    }
}

/// One line for the suite, then one per case in [`Case::ALL`] order.
pub(crate) fn summary(suite: &str, done: &[(Case, Option<Outcome>)]) -> String {
    let count = |f: fn(&Option<Outcome>) -> bool| done.iter().filter(|(_, o)| f(o)).count();
    let failed = count(|o| o.is_none());
    let skipped = count(|o| o.as_ref().is_some_and(Outcome::is_skipped));
    let partial = count(|o| {
        o.as_ref()
            .is_some_and(|o| !o.is_skipped() && !o.is_complete())
    });
    let checks = |f: fn(&Outcome) -> usize| -> usize {
        done.iter().filter_map(|(_, o)| o.as_ref()).map(f).sum()
    };
    let mut out = format!(
        "conformance summary ({suite}): {} cases: {} passed ({partial} with skipped checks), \
         {skipped} skipped, {failed} failed; sub-checks: {} passed, {} skipped\n",
        done.len(),
        done.len() - failed - skipped,
        checks(|o| o.passed.len()),
        checks(|o| o.skipped.len()),
    );
    let mut sorted: Vec<_> = done.iter().collect();
    sorted.sort_by_key(|(case, _)| Case::ALL.iter().position(|c| c == case));
    for (case, outcome) in sorted {
        let _ = match outcome {
            None => writeln!(out, "  {case}: FAILED"),
            Some(o) => writeln!(
                out,
                "  {case}: {} passed, {} skipped{}",
                o.passed.len(),
                o.skipped.len(),
                o.skipped
                    .iter()
                    .map(|s| format!(" [{}: {}]", s.check, s.reason))
                    .collect::<String>()
            ),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::SkippedCheck;

    #[test]
    fn the_summary_counts_passed_and_skipped_checks_per_case() {
        let stale = Case::StaleGuardCannotReleaseOrExtend;
        let done = vec![
            (
                stale,
                Some(Outcome {
                    case: stale,
                    passed: vec!["stale_release_and_extend"],
                    skipped: vec![SkippedCheck {
                        case: stale,
                        check: "renewal_of_a_stale_hold",
                        reason: "no faults".into(),
                    }],
                }),
            ),
            (Case::FifoOrder, None),
            (
                Case::AcquireReleaseReacquire,
                Some(Outcome {
                    case: Case::AcquireReleaseReacquire,
                    passed: vec!["main"],
                    skipped: vec![],
                }),
            ),
        ];
        let text = summary("mine", &done);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "conformance summary (mine): 3 cases: 2 passed (1 with skipped checks), 0 skipped, \
             1 failed; sub-checks: 2 passed, 1 skipped"
        );
        // In suite order, whatever order the cases ended in.
        assert_eq!(lines[1], "  acquire_release_reacquire: 1 passed, 0 skipped");
        assert_eq!(
            lines[2],
            "  stale_guard_cannot_release_or_extend: 1 passed, 1 skipped \
             [renewal_of_a_stale_hold: no faults]"
        );
        assert_eq!(lines[3], "  fifo_order: FAILED");
    }
}
