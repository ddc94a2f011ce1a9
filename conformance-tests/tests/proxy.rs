//! The fault kit's TCP proxy: it forwards, cuts, freezes and restores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use distlock_conformance::proxy::TcpProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on a loopback port.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// What one read gives within `limit`: `Some(bytes)` (empty at end of stream or on a
/// reset), or `None` when nothing came.
async fn read_within(conn: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(limit, conn.read(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        Ok(Err(_)) => Some(Vec::new()),
        Err(_) => None,
    }
}

async fn round_trip(conn: &mut TcpStream, msg: &[u8]) -> Option<Vec<u8>> {
    conn.write_all(msg).await.ok()?;
    read_within(conn, Duration::from_secs(5)).await
}

#[tokio::test]
async fn forwards_cuts_freezes_and_restores() {
    let proxy = TcpProxy::start(&echo_server().await).await.unwrap();
    let connect = || TcpStream::connect(proxy.hosts());

    let mut open = connect().await.unwrap();
    assert_eq!(round_trip(&mut open, b"hello").await.unwrap(), b"hello");

    // Frozen: the open connection stays open and carries nothing; a new one is dropped.
    proxy.freeze();
    open.write_all(b"lost").await.unwrap();
    assert_eq!(
        read_within(&mut open, Duration::from_millis(300)).await,
        None,
        "bytes crossed a frozen proxy"
    );
    let mut refused = connect().await.unwrap();
    assert_eq!(
        read_within(&mut refused, Duration::from_secs(5)).await,
        Some(Vec::new()),
        "a new connection got through a frozen proxy"
    );

    // Restored: new connections work again.
    proxy.restore();
    let mut fresh = connect().await.unwrap();
    assert_eq!(round_trip(&mut fresh, b"again").await.unwrap(), b"again");

    // Cut: open connections end, new ones are dropped.
    proxy.cut();
    assert_eq!(
        read_within(&mut fresh, Duration::from_secs(5)).await,
        Some(Vec::new()),
        "an open connection survived a cut"
    );
    let mut refused = connect().await.unwrap();
    assert_eq!(
        read_within(&mut refused, Duration::from_secs(5)).await,
        Some(Vec::new()),
        "a new connection got through a cut proxy"
    );

    proxy.restore();
    let mut fresh = connect().await.unwrap();
    assert_eq!(round_trip(&mut fresh, b"back").await.unwrap(), b"back");
}

#[tokio::test]
async fn muted_replies_drop_only_on_connections_open_at_the_time() {
    let proxy = TcpProxy::start(&echo_server().await).await.unwrap();
    let mut old = TcpStream::connect(proxy.hosts()).await.unwrap();
    assert_eq!(round_trip(&mut old, b"1").await.unwrap(), b"1");
    proxy.mute_replies();
    old.write_all(b"2").await.unwrap();
    assert_eq!(
        read_within(&mut old, Duration::from_millis(300)).await,
        None,
        "a reply crossed a muted connection"
    );
    let mut new = TcpStream::connect(proxy.hosts()).await.unwrap();
    assert_eq!(round_trip(&mut new, b"3").await.unwrap(), b"3");
}
