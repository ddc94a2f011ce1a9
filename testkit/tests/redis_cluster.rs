use std::time::Instant;

use distlock_testkit::redis::{raw_command, start_many, RedisCluster};

#[test]
fn three_master_cluster_forms_and_survives_a_restart() {
    let start = Instant::now();
    let cluster = RedisCluster::start().unwrap();
    eprintln!("cluster ready in {:?}", start.elapsed());
    assert_eq!(cluster.nodes().len(), 3);
    let nodes = raw_command(cluster.ports()[0], "CLUSTER NODES").unwrap();
    assert_eq!(nodes.matches("master").count(), 3, "{nodes}");
    let start = Instant::now();
    cluster.restart().unwrap();
    eprintln!("cluster restarted in {:?}", start.elapsed());
}

#[test]
fn independent_servers_are_independent() {
    let servers = start_many(3).unwrap();
    assert!(raw_command(servers[0].port(), "SET k v")
        .unwrap()
        .starts_with("+OK"));
    assert!(raw_command(servers[1].port(), "GET k")
        .unwrap()
        .starts_with("$-1"));
}
