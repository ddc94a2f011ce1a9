//! Loopback ports for throwaway servers.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

/// A port that was free on 127.0.0.1 a moment ago. Ports are handed out at most once per
/// process, so two servers started together never race for the same one.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<Vec<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    for _ in 0..10_000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        if port == 0 {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut given = given.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    // Test support: failing loudly beats spinning forever without a loopback interface.
    #[allow(clippy::panic)]
    {
        panic!("no free TCP port on 127.0.0.1 (is the loopback interface up?)")
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
