//! The raw store primitive each backend is built on, one connection per contender, without
//! distlock: the baseline every case compares against, in the same run.

mod file;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "zookeeper")]
mod zk;

use super::subject::Subject;
use super::target::{Kind, Target};

/// The raw primitive of the target's store; `None` where there is none (memory://, or a
/// backend left out of this build).
pub(crate) fn subject(target: &Target) -> Option<Box<dyn Subject>> {
    match target.kind {
        Kind::File => Some(Box::new(file::RawFlock {
            dir: target.dir().ok()?,
        })),
        Kind::Memory => None,
        #[cfg(feature = "redis")]
        Kind::Redis => Some(Box::new(redis::RawRedis::new(target))),
        #[cfg(feature = "zookeeper")]
        Kind::ZooKeeper => Some(Box::new(zk::RawZk::new(target))),
        #[cfg(feature = "mysql")]
        Kind::MySqlGetLock => Some(Box::new(mysql::RawMySql::new(target, false))),
        #[cfg(feature = "mysql")]
        Kind::MySqlRowLock => Some(Box::new(mysql::RawMySql::new(target, true))),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// A raw key, node or row name for lock `name` (the bench's names hold `/`).
pub(crate) fn flat(name: &str) -> String {
    name.replace('/', "_")
}

#[cfg(feature = "mysql")]
pub(crate) use mysql::{connect as mysql_connect, fail as mysql_fail};
#[cfg(feature = "redis")]
pub(crate) use redis::fail as redis_fail;
#[cfg(feature = "zookeeper")]
pub(crate) use zk::{ensure as zk_ensure, fail as zk_fail, hosts as zk_hosts};

/// A ZooKeeper session on the hosts of `url`.
#[cfg(feature = "zookeeper")]
pub(crate) async fn zk_session(url: &str) -> distlock::Result<zookeeper_client::Client> {
    zk::session(&zk_hosts(url)).await
}
