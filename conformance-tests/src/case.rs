//! The list of cases and their outcome.

use std::fmt;

/// A sub-check of a case that did not run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedCheck {
    /// The case it belongs to.
    pub case: Case,
    /// The sub-check's name (see [`Case::checks`]).
    pub check: &'static str,
    /// What the harness or the backend lacks for it.
    pub reason: String,
}

impl fmt::Display for SkippedCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}: {}", self.case, self.check, self.reason)
    }
}

/// How a case ended, when it did not fail (a failure is a panic with the reason). Every
/// sub-check of the case (see [`Case::checks`]) is either in `passed` or in `skipped`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// The sub-checks that ran and held.
    pub passed: Vec<&'static str>,
    /// The sub-checks that could not run: a capability the backend does not claim, or a
    /// [`Faults`](crate::Faults) method the harness does not offer.
    pub skipped: Vec<SkippedCheck>,
}

impl Outcome {
    /// Whether no sub-check ran at all.
    pub fn is_skipped(&self) -> bool {
        self.passed.is_empty()
    }

    /// Whether every sub-check ran and held.
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty()
    }
}

macro_rules! cases {
    ($($(#[$doc:meta])* $variant:ident => $name:ident [$($check:literal),+],)*) => {
        /// One conformance case.
        #[non_exhaustive]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Case {
            $($(#[$doc])* $variant,)*
        }

        impl Case {
            /// Every case, in the order the suite runs them.
            pub const ALL: &'static [Case] = &[$(Case::$variant,)*];

            /// The case's name, which is also its test function's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Case::$variant => stringify!($name),)*
                }
            }

            /// The case's sub-checks, by name. Each one passes or is reported skipped
            /// (`SKIPPED <case>/<check>: <reason>`) on its own.
            pub fn checks(self) -> &'static [&'static str] {
                match self {
                    $(Case::$variant => &[$($check),+],)*
                }
            }
        }

        /// Expands to one `#[test]` per case, each building the harness with the given
        /// expression. See the crate docs.
        #[macro_export]
        macro_rules! conformance_tests {
            ($harness:expr) => {
                $(
                    #[test]
                    fn $name() {
                        $crate::run_test(stringify!($name), module_path!(), || $harness);
                    }
                )*
            };
        }
    };
}

cases! {
    /// Acquire, release, acquire again; wait-forever on a free lock.
    AcquireReleaseReacquire => acquire_release_reacquire ["main"],
    /// Different names are different locks.
    NamesIndependent => names_independent ["main"],
    /// `try_acquire` on a held lock returns `Ok(None)` at once, and the hold is intact.
    TryLockUnderContention => try_lock_under_contention ["main"],
    /// A limited wait ends with `Timeout` no earlier than the limit, within slack after it.
    WaitTimeoutBounds => wait_timeout_bounds ["main"],
    /// A waiter gets the lock when the holder releases.
    WaitForeverAcquiresAfterRelease => wait_forever_acquires_after_release ["main"],
    /// 8 clients with their own connections hammer one lock: no overlap, no lost update.
    MutualExclusionStress => mutual_exclusion_stress ["main"],
    /// Several OS processes share one lock: no overlap, no lost update.
    MutualExclusionAcrossProcesses => mutual_exclusion_across_processes ["main"],
    /// After `release` returns, another client's `try_acquire` succeeds.
    ReleaseIsImmediate => release_is_immediate ["main"],
    /// A guard dropped without release frees the lock promptly.
    DroppedGuardFreesPromptly => dropped_guard_frees_promptly ["main"],
    /// A guard whose hold expired or was lost cannot release or extend someone else's hold.
    StaleGuardCannotReleaseOrExtend => stale_guard_cannot_release_or_extend ["stale_release_and_extend", "renewal_of_a_stale_hold"],
    /// Fencing tokens strictly increase across holders.
    FencingStrictlyIncreasing => fencing_strictly_increasing ["main"],
    /// Acquires cancelled at random points leave no hold behind.
    CancellationLeavesNoHold => cancellation_leaves_no_hold ["free_acquire", "free_try_acquire", "queued_waiter", "hand_off"],
    /// A holder process killed with SIGKILL frees the lock within the backstop.
    KilledHolderFreesWithinBackstop => killed_holder_frees_within_backstop ["main"],
    /// The lost signal fires on an injected fault and never on a normal release.
    LostSignalOnFaultNotOnRelease => lost_signal_on_fault_not_on_release ["not_on_release", "on_fault"],
    /// Renewal keeps a hold past its TTL; without renewal it lapses and is reported lost.
    RenewalKeepsHoldPastTtl => renewal_keeps_hold_past_ttl ["renewal", "unrenewed_lapse"],
    /// Odd and hostile names work and stay distinct; the empty name is an error.
    OddAndHostileNames => odd_and_hostile_names ["main"],
    /// A second acquire by the holding client has the documented outcome, never a deadlock.
    ReentrancyOutcome => reentrancy_outcome ["main"],
    /// Waiters get the lock in arrival order, where FIFO is claimed.
    FifoOrder => fifo_order ["main"],
    /// After the store restarts, the same client can lock again.
    RecoversAfterServerRestart => recovers_after_server_restart ["main"],
    /// A store frozen past the backstop: the holder is told its hold is lost, and after
    /// the thaw another client gets the lock and the stale guard changes nothing.
    ServerPausePastBackstop => server_pause_past_backstop ["main"],
    /// A lease taken without renewal excludes everyone else for its whole local validity:
    /// nobody gets the lock before the guard's `valid_until`.
    UnrenewedLeaseExcludesUntilValidUntil => unrenewed_lease_excludes_until_valid_until ["main"],
    /// `extend(d)` keeps the hold for `d`, for a `d` longer and shorter than the acquire
    /// TTL; without leases it succeeds while the hold is ours.
    ExtendKeepsHoldForItsDuration => extend_keeps_hold_for_its_duration ["longer_than_ttl", "shorter_than_ttl"],
    /// After the store lost a hold behind the guard's back (an injected lapse), the guard's
    /// `release` and `extend` report the loss, never `Ok`.
    StoreSideLossIsReported => store_side_loss_is_reported ["release", "extend"],
    /// Thousands of generated names (mixed case, long shared prefixes, unicode): distinct
    /// names never block each other.
    GeneratedNamesNeverCollide => generated_names_never_collide ["main"],
    /// A waiting acquire outlives a store restart or freeze shorter than its wait.
    WaitingAcquireOutlivesOutage => waiting_acquire_outlives_outage ["restart", "pause"],
}

impl Case {
    /// Whether the case disturbs the whole store, so it must run with no other case.
    pub fn disturbs_store(self) -> bool {
        matches!(
            self,
            Case::RecoversAfterServerRestart
                | Case::ServerPausePastBackstop
                | Case::WaitingAcquireOutlivesOutage
        )
    }

    /// The case with this name.
    pub fn from_name(name: &str) -> Option<Case> {
        Case::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
