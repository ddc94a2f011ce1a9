//! The cases, one file each. Every case runs each subject (distlock, the raw primitive, the
//! peer library) the same way, one after the other, in the same run.

pub(crate) mod contended;
pub(crate) mod handoff;
pub(crate) mod holds;
pub(crate) mod processes;
pub(crate) mod uncontended;
pub(crate) mod waiters;
