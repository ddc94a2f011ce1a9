//! Starts one throwaway server, prints its lock URL on stdout, and keeps it until stdin
//! closes (then the server stops with this process). scripts/bench.sh runs the benchmark
//! against it: `serve redis|zookeeper|mariadb`.

use std::io::{Read, Write};

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_default();
    let result = match kind.as_str() {
        "redis" => distlock_testkit::redis::RedisServer::start().map(|s| {
            let url = s.url();
            (Box::new(s) as Box<dyn std::any::Any>, url)
        }),
        "zookeeper" => distlock_testkit::zookeeper::ZkServer::start().map(|s| {
            let url = s.url();
            (Box::new(s) as Box<dyn std::any::Any>, url)
        }),
        "mariadb" => distlock_testkit::mariadb::MariaDbServer::start().and_then(|s| {
            // The locks' own database, not the server's `mysql` schema.
            s.sql("CREATE DATABASE IF NOT EXISTS distlock")?;
            let url = format!("mysql://root@127.0.0.1:{}/distlock", s.port());
            Ok((Box::new(s) as Box<dyn std::any::Any>, url))
        }),
        _ => {
            eprintln!("usage: serve redis|zookeeper|mariadb");
            std::process::exit(2);
        }
    };
    let (server, url) = match result {
        Ok(started) => started,
        Err(e) => {
            eprintln!("serve: cannot start {kind}: {e}");
            std::process::exit(1);
        }
    };
    println!("{url}");
    let _ = std::io::stdout().flush();
    // Holds the server until whoever started us closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(server);
}
