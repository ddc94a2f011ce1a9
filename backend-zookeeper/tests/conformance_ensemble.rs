//! The conformance suite against a throwaway three-node ZooKeeper ensemble.

mod common;

distlock_conformance::conformance_tests!(common::ZkHarness::ensemble());
