//! Misuse of `#[distlock::locked]` fails to compile with a message that says why.
//! One trybuild run for every case: it builds the facade once for all of them.

#[test]
fn misuse_is_a_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
