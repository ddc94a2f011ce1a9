//! The list of cases and their outcome.

use std::fmt;

/// How a case ended, when it did not fail (a failure is a panic with the reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion held.
    Passed,
    /// The backend does not claim what the case tests; the reason names it.
    Skipped(String),
}

macro_rules! cases {
    ($($(#[$doc:meta])* $variant:ident => $name:ident,)*) => {
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
    AcquireReleaseReacquire => acquire_release_reacquire,
    /// Different names are different locks.
    NamesIndependent => names_independent,
    /// `try_acquire` on a held lock returns `Ok(None)` at once, and the hold is intact.
    TryLockUnderContention => try_lock_under_contention,
    /// A limited wait ends with `Timeout` no earlier than the limit, within slack after it.
    WaitTimeoutBounds => wait_timeout_bounds,
    /// A waiter gets the lock when the holder releases.
    WaitForeverAcquiresAfterRelease => wait_forever_acquires_after_release,
    /// 8 clients with their own connections hammer one lock: no overlap, no lost update.
    MutualExclusionStress => mutual_exclusion_stress,
    /// Several OS processes share one lock: no overlap, no lost update.
    MutualExclusionAcrossProcesses => mutual_exclusion_across_processes,
    /// After `release` returns, another client's `try_acquire` succeeds.
    ReleaseIsImmediate => release_is_immediate,
    /// A guard dropped without release frees the lock promptly.
    DroppedGuardFreesPromptly => dropped_guard_frees_promptly,
    /// A guard whose hold expired or was lost cannot release or extend someone else's hold.
    StaleGuardCannotReleaseOrExtend => stale_guard_cannot_release_or_extend,
    /// Fencing tokens strictly increase across holders.
    FencingStrictlyIncreasing => fencing_strictly_increasing,
    /// Acquires cancelled at random points leave no hold behind.
    CancellationLeavesNoHold => cancellation_leaves_no_hold,
    /// A holder process killed with SIGKILL frees the lock within the backstop.
    KilledHolderFreesWithinBackstop => killed_holder_frees_within_backstop,
    /// The lost signal fires on an injected fault and never on a normal release.
    LostSignalOnFaultNotOnRelease => lost_signal_on_fault_not_on_release,
    /// Renewal keeps a hold past its TTL; without renewal it lapses and is reported lost.
    RenewalKeepsHoldPastTtl => renewal_keeps_hold_past_ttl,
    /// Odd and hostile names work and stay distinct; the empty name is an error.
    OddAndHostileNames => odd_and_hostile_names,
    /// A second acquire by the holding client has the documented outcome, never a deadlock.
    ReentrancyOutcome => reentrancy_outcome,
    /// Waiters get the lock in arrival order, where FIFO is claimed.
    FifoOrder => fifo_order,
    /// After the store restarts, the same client can lock again.
    RecoversAfterServerRestart => recovers_after_server_restart,
    /// A store frozen past the backstop: the holder is told its hold is lost, and after
    /// the thaw another client gets the lock and the stale guard changes nothing.
    ServerPausePastBackstop => server_pause_past_backstop,
    /// A waiting acquire outlives a store restart or freeze shorter than its wait.
    WaitingAcquireOutlivesOutage => waiting_acquire_outlives_outage,
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
