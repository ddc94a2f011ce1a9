//! The checker's rules on synthetic histories (times in ms, made ns).
#![allow(clippy::unwrap_used)]

use super::*;

const MS: u64 = 1_000_000;

fn hold(holder: &str, token: u64, start: u64, end: u64) -> Hold {
    Hold {
        holder: holder.into(),
        token: Some(token),
        requested: start * MS,
        start: start * MS,
        end: Some(end * MS),
        lost: None,
        release: Some(Release::Ok),
        killed: None,
    }
}

fn input(kind: Kind, holds: Vec<Hold>) -> Input {
    Input {
        kind: Some(kind),
        backstop: Duration::from_secs(1),
        holds,
        phases: vec![(Fault::None, 0)],
        end: 100_000 * MS,
        ..Input::default()
    }
}

fn fault(fault: Fault, start: u64, end: u64, target: Option<&str>) -> FaultRecord {
    FaultRecord {
        fault,
        start: start * MS,
        end: end * MS,
        target: target.map(String::from),
    }
}

fn write(holder: &str, token: u64, accepted: bool) -> RegisterEntry {
    RegisterEntry {
        mono: 0,
        holder: holder.into(),
        token,
        previous: None,
        accepted,
    }
}

#[test]
fn back_to_back_holds_pass() {
    let f = check(&input(
        Kind::Redis,
        vec![
            hold("a", 1, 0, 10),
            hold("b", 2, 10, 20),
            hold("a", 3, 25, 30),
        ],
    ));
    assert!(f.overlaps.is_empty());
    assert_eq!(f.violations(), 0);
    assert_eq!(f.phases[0].holds, 3);
}

#[test]
fn an_overlap_without_a_reason_is_a_violation_and_a_silent_loss() {
    let f = check(&input(
        Kind::Redis,
        vec![hold("a", 1, 0, 50), hold("b", 2, 20, 30)],
    ));
    assert_eq!(f.overlaps.len(), 1);
    assert_eq!(f.overlaps[0].explanation, None);
    assert_eq!(f.overlaps[0].length, 10 * MS);
    assert_eq!(f.silent, vec![0]);
    assert_eq!(f.phases[0].unexplained, 1);
    assert_eq!(f.phases[0].silent_losses, 1);
    assert_eq!(f.violations(), 2);
}

#[test]
fn an_overlap_after_the_lost_signal_is_explained() {
    let mut a = hold("a", 1, 0, 50);
    a.lost = Some(15 * MS);
    a.release = Some(Release::NotHeld);
    let f = check(&input(Kind::Redis, vec![a, hold("b", 2, 20, 30)]));
    assert_eq!(f.overlaps[0].explanation.as_deref(), Some(AFTER_LOST));
    assert_eq!(f.violations(), 0);
    assert_eq!(f.phases[0].lost_signals, 1);
}

#[test]
fn a_lost_signal_logged_just_after_is_explained_apart_but_not_much_later() {
    let mut a = hold("a", 1, 0, 500);
    a.lost = Some(60 * MS);
    let near = check(&input(Kind::Redis, vec![a.clone(), hold("b", 2, 20, 30)]));
    assert_eq!(near.overlaps[0].explanation.as_deref(), Some(NEAR_LOST));
    a.lost = Some(300 * MS);
    let late = check(&input(Kind::Redis, vec![a, hold("b", 2, 20, 30)]));
    assert_eq!(late.overlaps[0].explanation, None);
}

#[test]
fn a_frozen_holder_explains_an_overlap_only_on_backends_that_document_it() {
    let holds = vec![hold("a", 1, 0, 2600), hold("b", 2, 1200, 1300)];
    let stop = fault(Fault::HolderStop, 10, 2500, Some("a"));
    let mut redis = input(Kind::Redis, holds.clone());
    redis.faults = vec![stop.clone()];
    let f = check(&redis);
    assert!(f.overlaps[0]
        .explanation
        .as_deref()
        .unwrap()
        .contains("frozen holder"));
    // The release said Ok: the stale holder was not told. That is a silent loss even
    // though the overlap itself is documented.
    assert_eq!(f.silent, vec![0]);

    let mut mysql = input(Kind::Mysql, holds.clone());
    mysql.faults = vec![stop.clone()];
    assert_eq!(check(&mysql).overlaps[0].explanation, None);

    // Another worker frozen explains nothing.
    let mut other = input(Kind::Redis, holds);
    other.faults = vec![fault(Fault::HolderStop, 10, 2500, Some("c"))];
    assert_eq!(check(&other).overlaps[0].explanation, None);
}

#[test]
fn a_documented_fault_explains_only_until_the_holder_could_notice() {
    let mut a = hold("a", 1, 0, 100);
    a.release = Some(Release::NotHeld);
    let mut i = input(Kind::Mysql, vec![a.clone(), hold("b", 2, 60, 70)]);
    i.faults = vec![fault(Fault::SessionKill, 50, 50, None)];
    assert!(check(&i).overlaps[0].explanation.is_some());
    assert_eq!(check(&i).phases[0].losses_reported_at_release, 1);
    // Held on for far longer than backstop + slack after the kill: not explained.
    a.end = Some(10_000 * MS);
    let mut i = input(Kind::Mysql, vec![a, hold("b", 2, 60, 70)]);
    i.faults = vec![fault(Fault::SessionKill, 50, 50, None)];
    assert_eq!(check(&i).overlaps[0].explanation, None);
}

#[test]
fn a_killed_holder_ends_at_its_death_and_an_open_live_hold_is_leaked() {
    let events = vec![WorkerEvent::Acquired {
        called: 4 * MS,
        mono: 5 * MS,
        wall: 0,
        token: Some(1),
    }];
    // SIGKILL sent at 8, reaped at 9: the worker acted no more after 8.
    let kills = vec![fault(Fault::HolderKill, 8, 9, Some("a"))];
    let killed = holds_of("a", &events, &kills);
    assert_eq!(killed[0].killed, Some(8 * MS));
    let mut i = input(Kind::Redis, killed);
    i.holds.push(hold("b", 2, 10, 12));
    i.faults = kills;
    let f = check(&i);
    assert!(f.overlaps.is_empty());
    assert_eq!(f.violations(), 0);
    assert_eq!(f.phases[0].max_unavailability_ms, 1.0);

    let open = holds_of("a", &events, &[]);
    let f = check(&input(Kind::Redis, open));
    assert_eq!(f.leaked, vec![0]);
    assert_eq!(f.violations(), 1);
}

#[test]
fn the_register_catches_writes_accepted_out_of_order() {
    let ok = [
        write("a", 1, true),
        write("a", 1, true),
        write("b", 2, true),
        write("a", 1, false),
    ];
    assert!(out_of_order(&ok).is_empty());
    let older = [write("a", 2, true), write("b", 1, true)];
    assert_eq!(out_of_order(&older), vec![(0, 1)]);
    let same_token_two_holders = [write("a", 2, true), write("b", 2, true)];
    assert_eq!(out_of_order(&same_token_two_holders), vec![(0, 1)]);
    let mut i = input(Kind::File, vec![]);
    i.register = older.to_vec();
    assert_eq!(check(&i).violations(), 1);
    i.register = ok.to_vec();
    assert_eq!(check(&i).phases[0].stale_writes_refused, 1);
}

#[test]
fn a_hold_left_at_the_end_fails_the_run() {
    let mut i = input(Kind::Zookeeper, vec![]);
    i.held_at_end = Some("still held 5 s after every worker stopped".into());
    assert_eq!(check(&i).violations(), 1);
}

#[test]
fn holds_and_faults_count_in_the_phase_they_began_in() {
    let mut i = input(
        Kind::Redis,
        vec![
            hold("a", 1, 0, 10),
            hold("b", 2, 1000, 1010),
            hold("a", 3, 1020, 1030),
        ],
    );
    i.phases = vec![(Fault::None, 0), (Fault::ConnCut, 500 * MS)];
    i.faults = vec![fault(Fault::ConnCut, 600, 600, None)];
    let f = check(&i);
    assert_eq!(f.phases[0].holds, 1);
    assert_eq!(f.phases[1].holds, 2);
    assert_eq!(f.phases[1].faults, 1);
    assert_eq!(f.phases[1].max_unavailability_ms, 400.0);
}

#[test]
fn a_fault_during_the_acquire_call_can_explain_the_hold_s_loss() {
    // The connection was cut after the server granted the lock but before the acquire
    // returned: the hold was gone from its first moment.
    let mut a = hold("a", 1, 100, 130);
    a.requested = 90 * MS;
    a.release = Some(Release::NotHeld);
    let mut i = input(Kind::Mysql, vec![a.clone(), hold("b", 2, 108, 140)]);
    i.faults = vec![fault(Fault::ConnCut, 99, 99, None)];
    assert!(check(&i).overlaps[0].explanation.is_some());
    // A cut before the acquire was even called explains nothing.
    a.requested = 99 * MS + 1;
    let mut i = input(Kind::Mysql, vec![a, hold("b", 2, 108, 140)]);
    i.faults = vec![fault(Fault::ConnCut, 99, 99, None)];
    assert_eq!(check(&i).overlaps[0].explanation, None);
}
