//! Telling "nothing listens at any address" from "the ensemble is slow".
//!
//! The client crate retries a refused connection until the connect timeout ends and then
//! reports a bare `timeout`. A plain TCP connect to every host, run beside the session's
//! connect, turns the common mistake (wrong port, server down) into an immediate error
//! that names the addresses and the refusal.

use std::io::ErrorKind as IoKind;
use std::time::Duration;

use distlock_core::LockError;
use tokio::net::TcpStream;

/// How long one probe may take; a probe that neither connects nor is refused in this time
/// proves nothing, and the session's own connect decides.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// How long the session's connect runs alone before the probes start.
const PROBE_DELAY: Duration = Duration::from_millis(100);

/// Resolves to an error of kind `Connection` once every host in `hosts`
/// (`h1:p1,h2:p2[/chroot]`) refused a TCP connection; never resolves otherwise (at least
/// one host may be reachable, so the session's connect must decide).
///
/// # Cancel safety
/// Cancel safe: it only opens and drops probe sockets.
pub(crate) async fn all_refused(hosts: &str) -> LockError {
    // A session that comes up at once (the usual case) costs the ensemble no probe.
    tokio::time::sleep(PROBE_DELAY).await;
    let addresses: Vec<String> = hosts
        .split('/')
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|h| {
            if h.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                h.to_string()
            } else {
                format!("{h}:2181")
            }
        })
        .collect();
    let probes = addresses.iter().map(|address| async move {
        match tokio::time::timeout(PROBE_LIMIT, TcpStream::connect(address.as_str())).await {
            Ok(Err(e)) if e.kind() == IoKind::ConnectionRefused => Some(e),
            _ => None,
        }
    });
    let outcomes = futures::future::join_all(probes).await;
    if outcomes.iter().all(Option::is_some) && !outcomes.is_empty() {
        return LockError::connection(format!(
            "connecting to ZooKeeper: connection refused at {} (is a server listening there?)",
            addresses.join(", ")
        ));
    }
    std::future::pending().await
}
