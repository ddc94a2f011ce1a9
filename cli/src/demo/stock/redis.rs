//! The stock in a Redis key, with its fence token in the same hash slot.

use distlock::{fence, LockError, Result};
use redis::aio::MultiplexedConnection;

pub(crate) struct RedisStock {
    conn: MultiplexedConnection,
    key: String,
}

impl RedisStock {
    pub(crate) async fn open(url: &str, run: &str) -> Result<Self> {
        let client = redis::Client::open(super::without_query(url)).map_err(failure)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(failure)?;
        Ok(RedisStock {
            conn,
            key: format!("distlock-demo:{{{run}}}:stock"),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("Redis key {}", self.key)
    }

    pub(crate) async fn reset(&mut self, items: u64) -> Result<()> {
        self.write(items, None).await
    }

    pub(crate) async fn read(&mut self) -> Result<u64> {
        let value: Option<String> = redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut self.conn)
            .await
            .map_err(failure)?;
        let value = value.ok_or_else(|| LockError::backend(format!("{} is gone", self.key)))?;
        super::parse_items(&value, &self.describe())
    }

    pub(crate) async fn write(&mut self, items: u64, token: Option<u64>) -> Result<()> {
        if token.is_some() {
            return fence::redis::set(&mut self.conn, &self.key, items, token).await;
        }
        redis::cmd("SET")
            .arg(&self.key)
            .arg(items)
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(failure)
    }

    pub(crate) async fn remove(&mut self) -> Result<()> {
        let fence_key = fence::redis::token_key(&self.key)?;
        redis::cmd("DEL")
            .arg(&self.key)
            .arg(fence_key)
            .query_async::<()>(&mut self.conn)
            .await
            .map_err(failure)
    }
}

fn failure(e: redis::RedisError) -> LockError {
    LockError::connection("the demo's Redis stock").with_source(e)
}
