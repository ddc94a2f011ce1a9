//! Running one case as one test.

use std::sync::Arc;
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
/// prints `SKIPPED <case>: <reason>` when the backend does not claim what it tests.
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
                Ok(Outcome::Passed) => {}
                Ok(Outcome::Skipped(why)) => {
                    // Written to the real stderr, past libtest's capture, so a skip shows by name
                    // in every run instead of reading as a plain pass.
                    use std::io::Write;
                    let _ = writeln!(std::io::stderr(), "SKIPPED {case}: {why}");
                }
                Err(_) => panic!("{case} did not finish within {CASE_LIMIT:?}"),
            }
        })
    });
    let outcome = std::panic::catch_unwind(run);
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
