//! A TCP proxy per test client, so a test can cut one client off the ensemble (a network
//! partition of that client alone) and heal it again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards one local port per upstream server. While cut, every connection is closed
/// and new ones are dropped at once. While silenced, open connections stay open but carry
/// nothing either way (a silent network partition) and new ones are dropped.
#[derive(Clone, Debug)]
pub struct Proxy {
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

impl Proxy {
    pub async fn start(upstreams: &str) -> std::io::Result<Proxy> {
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let muted = Arc::new(Mute::default());
        let silent = Arc::new(AtomicBool::new(false));
        let mut ports = Vec::new();
        for upstream in upstreams.split(',') {
            let upstream: SocketAddr = upstream.parse().map_err(std::io::Error::other)?;
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
                    let (muted, silent) = (muted.clone(), silent.clone());
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(upstream).await else {
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
        Ok(Proxy {
            ports,
            cut,
            muted,
            silent,
        })
    }

    /// The connect string through the proxy.
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
    pub fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.silent.store(false, Ordering::SeqCst);
        self.cut.send_replace(false);
    }
}
