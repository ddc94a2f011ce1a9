//! The conformance suite against a throwaway single `redis-server`.

mod common;

distlock_conformance::conformance_tests!(common::SingleHarness::new());
