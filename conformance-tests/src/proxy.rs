//! A TCP proxy to put between a backend's clients and its store, so a harness can inject
//! network faults into any networked backend without writing its own.
//!
//! Give each client its own proxy (point the client's address at [`TcpProxy::hosts`]); a
//! fault on that proxy then hits that client alone, as a partition of one host would:
//!
//! - [`TcpProxy::cut`] closes every connection and refuses new ones (a crashed link, a
//!   firewall reset): the store sees the client gone (a MySQL session ends, its locks with it;
//!   a ZooKeeper session starts its timeout);
//! - [`TcpProxy::freeze`] keeps connections open but lets nothing through (a silent
//!   partition): the client notices only by its own timeouts;
//! - [`TcpProxy::mute_replies`] drops the store's replies on the connections open now (a
//!   request that took effect whose answer never came);
//! - [`TcpProxy::restore`] lets connections through again.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use distlock_conformance::proxy::TcpProxy;
//!
//! let proxy = TcpProxy::start("127.0.0.1:6379").await?;
//! let url = format!("redis://{}/", proxy.hosts()); // give this to the client under test
//! proxy.cut(); // the client's connections drop, and it cannot reconnect
//! proxy.restore();
//! # let _ = url; Ok(()) }
//! ```
//!
//! In [`Faults::lose_hold`](crate::Faults::lose_hold), find which client's proxy to cut from
//! what the store records with the hold (a session id, a connection id), reached through the
//! guard's name and owner token.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards one local port per upstream server. While cut, every connection is closed
/// and new ones are dropped at once. While frozen, open connections stay open but carry
/// nothing either way (a silent network partition; bytes sent meanwhile are lost, as when
/// a partition outlasts TCP's retransmissions) and new ones are dropped. Clones share the
/// proxy; its listeners live as long as the runtime that started it.
#[derive(Clone, Debug)]
pub struct TcpProxy {
    ports: Vec<u16>,
    cut: Arc<watch::Sender<bool>>,
    muted: Arc<Mute>,
    silent: Arc<AtomicBool>,
}

/// Connections numbered below `below` have their server-to-client bytes dropped.
#[derive(Debug, Default)]
struct Mute {
    next: AtomicU64,
    below: AtomicU64,
}

impl TcpProxy {
    /// Starts forwarding a fresh loopback port to each of `upstreams` (comma-separated
    /// `host:port`, as ZooKeeper's connect strings are).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped midway, the ports already opened keep forwarding until the
    /// runtime ends, with no handle to fault them.
    pub async fn start(upstreams: &str) -> std::io::Result<TcpProxy> {
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let muted = Arc::new(Mute::default());
        let silent = Arc::new(AtomicBool::new(false));
        let mut ports = Vec::new();
        for upstream in upstreams.split(',') {
            let upstream = upstream.trim().to_string();
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            ports.push(listener.local_addr()?.port());
            let (cut, muted, silent) = (cut.clone(), muted.clone(), silent.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if *cut.borrow() || silent.load(Ordering::SeqCst) {
                        continue;
                    }
                    let mut cut_rx = cut.subscribe();
                    let id = muted.next.fetch_add(1, Ordering::SeqCst);
                    let (muted, silent, upstream) =
                        (muted.clone(), silent.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(upstream.as_str()).await else {
                            return;
                        };
                        let (mut cr, mut cw) = client.into_split();
                        let (mut sr, mut sw) = server.into_split();
                        let up = async {
                            let mut buf = vec![0u8; 64 * 1024];
                            loop {
                                let n = match cr.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                if silent.load(Ordering::SeqCst) {
                                    continue;
                                }
                                if sw.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        };
                        let down = async {
                            let mut buf = vec![0u8; 64 * 1024];
                            loop {
                                let n = match sr.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                if id < muted.below.load(Ordering::SeqCst)
                                    || silent.load(Ordering::SeqCst)
                                {
                                    continue;
                                }
                                if cw.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        };
                        tokio::select! {
                            _ = up => {}
                            _ = down => {}
                            _ = cut_rx.wait_for(|c| *c) => {}
                        }
                    });
                }
            });
        }
        Ok(TcpProxy {
            ports,
            cut,
            muted,
            silent,
        })
    }

    /// The proxy's addresses, one per upstream, comma-separated: `127.0.0.1:PORT,…`.
    pub fn hosts(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// From now on, drops every reply on the connections open now (requests still reach
    /// the server): the client sees its connection go silent and reconnects; new
    /// connections work normally.
    pub fn mute_replies(&self) {
        let next = self.muted.next.load(Ordering::SeqCst);
        self.muted.below.store(next, Ordering::SeqCst);
    }

    /// A silent partition: open connections carry nothing either way (no reset, no close),
    /// new ones are dropped. The client notices only by its own read timeout.
    pub fn freeze(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Ends a [`TcpProxy::cut`] or a [`TcpProxy::freeze`]: connections go through again.
    pub fn restore(&self) {
        self.silent.store(false, Ordering::SeqCst);
        self.cut.send_replace(false);
    }
}
