//! What a campaign runs against: the backend's URL, its kind, its backstop, and (for a
//! throwaway server) the handle the nemesis uses for server faults.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

use super::args::Fault;

/// The store behind a URL, as far as the checker's explanations go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `file://`: `flock` on one host.
    File,
    /// `redis://`: a leased key.
    Redis,
    /// `zk://`: an ephemeral node of a session.
    Zookeeper,
    /// `mysql://`: a `GET_LOCK` of a session.
    Mysql,
    /// Anything else (`memory://`, other schemes): nothing is documented as unsafe.
    Other,
}

impl Kind {
    /// The kind a URL names.
    pub fn of(url: &str) -> Kind {
        match url.split_once("://").map_or("", |(s, _)| s) {
            "file" => Kind::File,
            s if s.starts_with("redis") => Kind::Redis,
            "zk" | "zookeeper" => Kind::Zookeeper,
            "mysql" | "mariadb" => Kind::Mysql,
            _ => Kind::Other,
        }
    }

    /// The faults this backend documents as able to give two holders at once for a while,
    /// with the name the report gives them. Only these explain an overlap that began before
    /// the earlier holder's lost signal.
    pub fn unsafe_fault(self, fault: Fault) -> Option<&'static str> {
        match (self, fault) {
            (Kind::Redis | Kind::Zookeeper, Fault::HolderStop) => {
                Some("frozen holder past its lease/session (only fencing protects)")
            }
            (Kind::Redis, Fault::ServerRestart) => Some("Redis restart without persistence"),
            (Kind::Mysql, Fault::SessionKill) => Some("MySQL KILL, within one probe interval"),
            (Kind::Mysql, Fault::ConnCut) => {
                Some("MySQL connection loss drops GET_LOCK, within one probe interval")
            }
            (Kind::Mysql, Fault::ServerRestart) => {
                Some("MySQL restart drops GET_LOCK, within one probe interval")
            }
            _ => None,
        }
    }
}

/// Server faults on a server the campaign started itself.
pub trait ServerControl: Send + Sync + std::fmt::Debug {
    /// SIGSTOP the server.
    fn pause(&self);
    /// SIGCONT the server.
    fn resume(&self);
    /// SIGKILL it and start it again on the same port; returns once it serves.
    fn restart(&self) -> io::Result<()>;
    /// Kills every client session; says how many, or why it cannot.
    fn kill_sessions(&self) -> io::Result<String>;
}

/// One backend under test.
#[derive(Debug)]
pub struct Target {
    /// A label for the report ("redis", "zookeeper", or the URL without credentials).
    pub label: String,
    /// The URL the final probe uses (directly, not through the proxy).
    pub url: String,
    /// The backend kind.
    pub kind: Kind,
    /// How long a dead or frozen holder keeps the lock: the lease (Redis), the session
    /// timeout (ZooKeeper), the probe timeout (MySQL), nothing (file: the kernel frees it).
    pub backstop: Duration,
    /// Set for throwaway servers: the nemesis' handle for server faults.
    pub server: Option<Box<dyn ServerControl>>,
    /// A scratch directory of the campaign's own (throwaway lock files), removed on drop.
    pub scratch: Option<std::path::PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Target {
    /// A user's deployment, from its URL.
    pub fn from_url(url: &str, ttl: Duration) -> Target {
        let kind = Kind::of(url);
        Target {
            label: redact(url),
            url: url.to_string(),
            kind,
            backstop: backstop(kind, url, ttl),
            server: None,
            scratch: None,
        }
    }

    /// Whether this setup can inject `fault`; `Err` says why not.
    pub fn supports(&self, fault: Fault, server_faults: bool) -> Result<(), &'static str> {
        match fault {
            Fault::None | Fault::HolderStop | Fault::HolderKill => Ok(()),
            Fault::ConnCut | Fault::ConnFreeze => match self.kind {
                Kind::File | Kind::Other => Err("no network connection to cut"),
                _ => Ok(()),
            },
            Fault::ServerPause | Fault::ServerRestart | Fault::SessionKill => {
                if matches!(self.kind, Kind::File | Kind::Other) {
                    Err("no server")
                } else if self.server.is_none() {
                    Err("needs a throwaway server (no --url)")
                } else if !server_faults {
                    Err("needs --server-faults")
                } else if fault == Fault::SessionKill && self.kind == Kind::Zookeeper {
                    Err("ZooKeeper has no session kill command")
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The URL without its password, for reports.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) => {
            let userinfo = &rest[..at - scheme.len() - 3];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{}", &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The value of query parameter `key` in `url`.
fn param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.replace('-', "_") == key)
        .map(|(_, v)| v)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (n, scale) = match text.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    Duration::try_from_secs_f64(n.parse::<f64>().ok()? * scale).ok()
}

fn backstop(kind: Kind, url: &str, ttl: Duration) -> Duration {
    match kind {
        Kind::File | Kind::Other => Duration::ZERO,
        Kind::Redis => ttl,
        Kind::Zookeeper => param(url, "session_timeout")
            .and_then(parse_duration)
            .unwrap_or(Duration::from_secs(10)),
        Kind::Mysql => {
            let interval = param(url, "probe_interval")
                .and_then(parse_duration)
                .unwrap_or(Duration::from_secs(3));
            param(url, "probe_timeout")
                .and_then(parse_duration)
                .unwrap_or((interval * 2).max(Duration::from_secs(5)))
                .max(interval)
        }
    }
}

/// A network URL split around its `host:port` list, so it can point at a proxy instead.
#[derive(Debug)]
pub struct HostsOfUrl {
    /// The resolved addresses of every host in the URL.
    pub upstreams: Vec<SocketAddr>,
    prefix: String,
    tail: String,
}

impl HostsOfUrl {
    /// `None` for URLs without a network address (`file://`, `memory://`).
    pub fn parse(url: &str) -> io::Result<Option<HostsOfUrl>> {
        if matches!(Kind::of(url), Kind::File | Kind::Other) {
            return Ok(None);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(None);
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (prefix, hosts) = match authority.rfind('@') {
            Some(at) => (
                format!("{scheme}://{}@", &authority[..at]),
                &authority[at + 1..],
            ),
            None => (format!("{scheme}://"), authority),
        };
        let mut upstreams = Vec::new();
        for host in hosts.split(',').filter(|h| !h.is_empty()) {
            upstreams.extend(host.to_socket_addrs()?.take(1));
        }
        if upstreams.is_empty() {
            return Ok(None);
        }
        Ok(Some(HostsOfUrl {
            upstreams,
            prefix,
            tail: tail.to_string(),
        }))
    }

    /// The URL with its hosts replaced by `addr` (the proxy, which forwards to them all).
    pub fn with_host(&self, addr: SocketAddr) -> String {
        format!("{}{addr}{}", self.prefix, self.tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_point_at_the_proxy_and_keep_credentials_and_parameters() {
        let h = HostsOfUrl::parse("mysql://u:p@127.0.0.1:3306/db?probe_interval=1s")
            .unwrap()
            .unwrap();
        assert_eq!(h.upstreams, vec!["127.0.0.1:3306".parse().unwrap()]);
        let proxy = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            h.with_host(proxy),
            "mysql://u:p@127.0.0.1:9/db?probe_interval=1s"
        );
        assert!(HostsOfUrl::parse("file:///tmp/x").unwrap().is_none());
    }

    #[test]
    fn backstops_follow_the_url() {
        let ttl = Duration::from_secs(2);
        let zk = Target::from_url("zk://127.0.0.1:1?session_timeout=1500ms", ttl);
        assert_eq!(zk.backstop, Duration::from_millis(1500));
        let my = Target::from_url("mysql://r@h:1/d?probe_interval=250ms&probe_timeout=1s", ttl);
        assert_eq!(my.backstop, Duration::from_secs(1));
        assert_eq!(Target::from_url("redis://h:1/", ttl).backstop, ttl);
    }

    #[test]
    fn reports_never_show_the_password() {
        assert_eq!(redact("redis://u:s3cret@h:1/"), "redis://u:***@h:1/");
        assert_eq!(redact("redis://h:1/"), "redis://h:1/");
    }
}
