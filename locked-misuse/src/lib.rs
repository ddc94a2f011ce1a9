//! Holds no code: its tests check that misuse of `#[distlock::locked]` fails to compile with
//! a message that says why (see `tests/locked_compile_fail.rs`).
