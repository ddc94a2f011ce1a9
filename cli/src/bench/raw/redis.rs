//! Raw Redis: `SET key token NX PX` and a compare-and-delete script on one multiplexed
//! connection per contender. A waiter retries every millisecond: the plain loop users
//! write around `SET NX`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use distlock::{LockError, Result};

use crate::bench::subject::{Contender, Subject};
use crate::bench::target::{without_query, Target};

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

pub(crate) struct RawRedis {
    url: String,
    prefix: String,
}

impl RawRedis {
    pub(crate) fn new(target: &Target) -> Self {
        RawRedis {
            url: without_query(&target.url).to_string(),
            prefix: format!("{}raw:", target.redis_prefix()),
        }
    }
}

pub(crate) fn fail(e: redis::RedisError) -> LockError {
    LockError::connection(format!("raw redis: {:?}", e.kind()))
}

#[async_trait]
impl Subject for RawRedis {
    fn label(&self) -> &'static str {
        "raw"
    }

    fn describe(&self) -> String {
        "SET NX PX + compare-and-delete EVALSHA on one connection; waiters retry every 1 ms".into()
    }

    async fn contender(&self, name: &str) -> Result<Box<dyn Contender>> {
        let client = redis::Client::open(self.url.as_str()).map_err(fail)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(fail)?;
        Ok(Box::new(RedisContender {
            conn,
            key: format!("{}{}", self.prefix, super::flat(name)),
            token: uuid::Uuid::new_v4().simple().to_string(),
            release: redis::Script::new(RELEASE),
        }))
    }
}

struct RedisContender {
    conn: redis::aio::MultiplexedConnection,
    key: String,
    token: String,
    release: redis::Script,
}

#[async_trait]
impl Contender for RedisContender {
    async fn acquire(&mut self, limit: Duration) -> Result<()> {
        let until = Instant::now() + limit;
        loop {
            if self.try_acquire().await? {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(LockError::timeout("raw SET NX stayed refused"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn try_acquire(&mut self) -> Result<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.token)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut self.conn)
            .await
            .map_err(fail)?;
        Ok(set.is_some())
    }

    async fn release(&mut self) -> Result<()> {
        let deleted: i64 = self
            .release
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut self.conn)
            .await
            .map_err(fail)?;
        if deleted == 1 {
            Ok(())
        } else {
            Err(LockError::not_held("the raw Redis key was not ours"))
        }
    }
}
