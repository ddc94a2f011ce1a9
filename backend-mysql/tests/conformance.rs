//! The conformance suite in both modes against a throwaway MariaDB.

mod common;

mod get_lock {
    use super::common::MySqlHarness;
    use distlock_mysql::Mode;
    distlock_conformance::conformance_tests!(MySqlHarness::new(Mode::GetLock));
}

mod row_lock {
    use super::common::MySqlHarness;
    use distlock_mysql::Mode;
    distlock_conformance::conformance_tests!(MySqlHarness::new(Mode::RowLock));
}
