//! Server-side counters read before and after a measurement, so that round-trip claims rest
//! on what the server counted: Redis `INFO commandstats`, MariaDB `SHOW GLOBAL STATUS`,
//! ZooKeeper `mntr`. They count every client of the server, so use a server of your own.

use std::collections::BTreeMap;

use distlock::Result;

use super::target::{Kind, Target};

/// Counter name → value.
pub(crate) type Snapshot = BTreeMap<String, u64>;

/// The counters of the target's server; empty where there is no server or the read failed
/// (the figures are a bonus, never a reason to stop the bench).
pub(crate) async fn snapshot(target: &Target) -> Snapshot {
    read(target).await.unwrap_or_default()
}

/// Per-cycle deltas between two snapshots, counters that did not move left out.
pub(crate) fn per_cycle(before: &Snapshot, after: &Snapshot, cycles: u64) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(name, &end)| {
            let delta = end.saturating_sub(before.get(name).copied().unwrap_or(0));
            (delta > 0 && cycles > 0).then(|| (name.clone(), delta as f64 / cycles as f64))
        })
        .collect()
}

async fn read(target: &Target) -> Result<Snapshot> {
    match target.kind {
        #[cfg(feature = "redis")]
        Kind::Redis => redis(target).await,
        #[cfg(feature = "mysql")]
        Kind::MySqlGetLock | Kind::MySqlRowLock => mysql(target).await,
        #[cfg(feature = "zookeeper")]
        Kind::ZooKeeper => zookeeper(target).await,
        _ => Ok(Snapshot::new()),
    }
}

#[cfg(feature = "redis")]
async fn redis(target: &Target) -> Result<Snapshot> {
    use super::raw::redis_fail;
    let client =
        redis::Client::open(super::target::without_query(&target.url)).map_err(redis_fail)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_fail)?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .map_err(redis_fail)?;
    Ok(parse_commandstats(&info))
}

/// `cmdstat_evalsha:calls=12,usec=…` lines → `evalsha` → 12.
fn parse_commandstats(info: &str) -> Snapshot {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            if name == "info" {
                return None; // the bench's own snapshots
            }
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .collect()
}

#[cfg(feature = "mysql")]
async fn mysql(target: &Target) -> Result<Snapshot> {
    use super::raw::mysql_fail;
    let mut conn = super::raw::mysql_connect(&target.url).await?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Connections', \
         'Com_select', 'Com_insert', 'Com_update', 'Com_replace', 'Com_delete', 'Com_begin', \
         'Com_commit', 'Com_rollback', 'Com_set_option', 'Com_do', 'Com_stmt_execute', \
         'Com_stmt_prepare', 'Innodb_os_log_fsyncs', 'Innodb_data_fsyncs')",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(mysql_fail)?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.parse().ok()?)))
        .collect())
}

#[cfg(feature = "zookeeper")]
async fn zookeeper(target: &Target) -> Result<Snapshot> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hosts = super::raw::zk_hosts(&target.url);
    let host = hosts.split(',').next().unwrap_or_default().to_string();
    let fail = |e: std::io::Error| distlock::LockError::connection("zookeeper mntr").with_source(e);
    let mut stream = tokio::net::TcpStream::connect(&host).await.map_err(fail)?;
    stream.write_all(b"mntr").await.map_err(fail)?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.map_err(fail)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once('\t')?;
            matches!(name, "zk_packets_received" | "zk_packets_sent").then(|| {
                Some((
                    name.trim_start_matches("zk_").to_string(),
                    value.trim().parse().ok()?,
                ))
            })?
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_and_deltas() {
        let before = parse_commandstats(
            "# Commandstats\r\ncmdstat_set:calls=10,usec=5\r\ncmdstat_evalsha:calls=4,usec=1\r\n",
        );
        assert_eq!(before.get("set"), Some(&10));
        let mut after = before.clone();
        after.insert("set".into(), 30);
        let d = per_cycle(&before, &after, 10);
        assert_eq!(d.get("set"), Some(&2.0));
        assert!(!d.contains_key("evalsha"));
    }
}
