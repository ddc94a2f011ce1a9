//! Owner tokens.

/// A fresh random owner token (a v4 UUID, 122 random bits) in simple hex form, so it is
/// safe in keys, node names and SQL parameters. Generated before anything is sent, so a
/// cancelled acquire can always be cleaned up by token.
pub fn new_owner_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
