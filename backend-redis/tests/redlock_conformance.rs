//! The conformance suite against Redlock over three throwaway servers (fencing is not
//! claimed, so its case reports itself skipped).

mod common;

distlock_conformance::conformance_tests!(common::RedlockHarness::new());
