//! A local TCP proxy the workers connect through, so the nemesis can cut or freeze their
//! connections without access to the server. With several upstreams it spreads new
//! connections round-robin (how tests model a load balancer in front of node-local locks).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy; stops (and drops every connection) when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    cuts: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstreams` (round-robin).
    pub async fn start(upstreams: Vec<SocketAddr>) -> io::Result<Proxy> {
        if upstreams.is_empty() {
            return Err(io::Error::other("a proxy needs an upstream"));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (frozen, _) = watch::channel(false);
        let (cuts, _) = watch::channel(0u64);
        let next = Arc::new(AtomicUsize::new(0));
        let (frozen_rx, cuts_rx) = (frozen.subscribe(), cuts.subscribe());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstreams[next.fetch_add(1, Ordering::Relaxed) % upstreams.len()];
                tokio::spawn(connection(
                    client,
                    upstream,
                    frozen_rx.clone(),
                    cuts_rx.clone(),
                ));
            }
        });
        Ok(Proxy {
            addr,
            frozen,
            cuts,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection (new ones are still accepted).
    pub fn cut_all(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Stops (true) or resumes (false) forwarding, on open and new connections alike.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.frozen.send_replace(false);
        self.cut_all();
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut frozen: watch::Receiver<bool>,
    mut cuts: watch::Receiver<u64>,
) {
    cuts.mark_unchanged();
    if frozen.wait_for(|f| !*f).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return; // the client sees its connection closed, as with a dead server
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pipe(client_read, server_write, frozen.clone()) => {}
        _ = pipe(server_read, client_write, frozen) => {}
        _ = cuts.changed() => {}
    }
    // Dropping both halves closes both sockets.
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    /// An echo server; returns its address.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, within: Duration) -> Option<usize> {
        s.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(n)) => Some(n),
            _ => None,
        }
    }

    #[tokio::test]
    async fn forwards_freezes_thaws_and_cuts() {
        let proxy = Proxy::start(vec![echo().await]).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let long = Duration::from_secs(5);
        assert_eq!(roundtrip(&mut s, long).await, Some(4));

        proxy.freeze(true);
        assert_eq!(roundtrip(&mut s, Duration::from_millis(200)).await, None);
        proxy.freeze(false);
        // The frozen ping and this one both come back once thawed.
        let mut buf = [0u8; 8];
        s.write_all(b"ping").await.unwrap();
        let mut got = 0;
        while got < 8 {
            got += tokio::time::timeout(long, s.read(&mut buf[got..]))
                .await
                .unwrap()
                .unwrap();
        }

        proxy.cut_all();
        let n = tokio::time::timeout(long, s.read(&mut buf)).await.unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "a cut connection ends: {n:?}");
        // New connections still work.
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut again, long).await, Some(4));
    }
}
