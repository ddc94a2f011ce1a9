//! The conformance suite against one throwaway ZooKeeper server.

mod common;

distlock_conformance::conformance_tests!(common::ZkHarness::single());
