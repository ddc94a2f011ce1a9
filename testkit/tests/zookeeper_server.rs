use std::time::{Duration, Instant};

use distlock_testkit::zookeeper::{four_letter, ZkEnsemble, ZkServer};

fn gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

#[test]
fn standalone_serves_pauses_restarts_and_dies_with_its_handle() {
    let server = ZkServer::start().unwrap();
    let port = server.port();
    assert_eq!(server.mode().as_deref(), Some("standalone"));
    assert!(four_letter(port, "ruok").unwrap().contains("imok"));

    server.pause();
    assert_eq!(server.mode(), None, "a paused server must not answer");
    server.resume();
    assert_eq!(server.mode().as_deref(), Some("standalone"));

    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(server.mode().as_deref(), Some("standalone"));

    let pid = server.pid().unwrap();
    drop(server);
    assert!(gone(pid), "zookeeper {pid} survived its handle");
}

#[test]
fn ensemble_elects_a_leader_and_survives_losing_it() {
    let ensemble = ZkEnsemble::start().unwrap();
    let modes: Vec<_> = (0..3).map(|i| ensemble.mode(i).unwrap()).collect();
    assert_eq!(
        modes.iter().filter(|m| *m == "leader").count(),
        1,
        "{modes:?}"
    );
    assert_eq!(
        modes.iter().filter(|m| *m == "follower").count(),
        2,
        "{modes:?}"
    );
    assert_eq!(ensemble.connect_string().split(',').count(), 3);

    let leader = ensemble.leader().unwrap();
    ensemble.kill(leader);
    assert!(!ensemble.is_running(leader));
    let start = Instant::now();
    let next = ensemble.wait_leader(Duration::from_secs(20)).unwrap();
    assert_ne!(next, leader);
    eprintln!("new leader after {:?}", start.elapsed());

    ensemble.restart(leader).unwrap();
    assert_eq!(ensemble.mode(leader).as_deref(), Some("follower"));

    // A whole-ensemble freeze past the sync limit: once `wait_quorum` returns, the thawed
    // ensemble keeps serving (it does not fall into an election a moment later).
    for round in 0..2 {
        (0..3).for_each(|i| ensemble.pause(i));
        std::thread::sleep(Duration::from_secs(2));
        (0..3).for_each(|i| ensemble.resume(i));
        let start = Instant::now();
        ensemble.wait_quorum(Duration::from_secs(30)).unwrap();
        eprintln!("round {round}: stable quorum after {:?}", start.elapsed());
        let watch = Instant::now();
        while watch.elapsed() < Duration::from_millis(1500) {
            let modes: Vec<_> = (0..3).map(|i| ensemble.mode(i)).collect();
            assert!(
                modes.iter().all(|m| m.is_some()),
                "round {round}: a node stopped serving {:?} after wait_quorum: {modes:?}",
                watch.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let before: Vec<u32> = (0..3).map(|i| ensemble.pid(i).unwrap()).collect();
    ensemble.restart_all().unwrap();
    assert!(ensemble.leader().is_some());
    for (i, pid) in before.into_iter().enumerate() {
        assert_ne!(ensemble.pid(i), Some(pid), "node {i} was not restarted");
    }

    let pids: Vec<u32> = (0..3).map(|i| ensemble.pid(i).unwrap()).collect();
    drop(ensemble);
    for pid in pids {
        assert!(gone(pid), "zookeeper {pid} survived its handle");
    }
}
