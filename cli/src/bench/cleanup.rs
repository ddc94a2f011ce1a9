//! Deletes everything a bench run created: its lock-file directory, its Redis keys (all
//! under the run's prefix), its ZooKeeper nodes (under the run's roots), and its MariaDB
//! rows (fencing counters and lock rows of the names it used, raw rows, counters). Tables
//! stay, empty of the run's rows, as the backends leave them.

use std::collections::BTreeSet;

use distlock::{LockError, Result};

use super::target::{Kind, Target};

/// Removes the run's traces; `names` are the lock names the run used.
pub(crate) async fn clean(target: &Target, names: &BTreeSet<String>) -> Result<()> {
    match target.kind {
        Kind::Memory => Ok(()),
        Kind::File => {
            let dir = target.dir()?;
            match tokio::fs::remove_dir_all(&dir).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LockError::backend(
                    format!("remove the bench directory {}", dir.display()),
                )
                .with_source(e)),
                _ => Ok(()),
            }
        }
        #[cfg(feature = "redis")]
        Kind::Redis => redis(target).await,
        #[cfg(feature = "zookeeper")]
        Kind::ZooKeeper => zookeeper(target).await,
        #[cfg(feature = "mysql")]
        Kind::MySqlGetLock | Kind::MySqlRowLock => mysql(target, names).await,
        #[allow(unreachable_patterns)]
        _ => {
            let _ = names;
            Ok(())
        }
    }
}

#[cfg(feature = "redis")]
async fn redis(target: &Target) -> Result<()> {
    use super::raw::redis_fail;
    let client =
        redis::Client::open(super::target::without_query(&target.url)).map_err(redis_fail)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_fail)?;
    let pattern = format!("{}*", target.redis_prefix());
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(redis_fail)?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await
                .map_err(redis_fail)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

#[cfg(feature = "zookeeper")]
async fn zookeeper(target: &Target) -> Result<()> {
    let client = super::raw::zk_session(&target.url).await?;
    for root in target.zk_roots() {
        delete_tree(&client, root).await?;
    }
    Ok(())
}

/// Deletes `root` and everything under it, children first.
#[cfg(feature = "zookeeper")]
async fn delete_tree(client: &zookeeper_client::Client, root: String) -> Result<()> {
    use zookeeper_client::Error;
    // Depth-first without recursion: a stack of paths, each deleted once its children are.
    let mut stack = vec![(root, false)];
    while let Some((path, expanded)) = stack.pop() {
        if expanded {
            match client.delete(&path, None).await {
                Ok(()) | Err(Error::NoNode) => continue,
                Err(e) => return Err(super::raw::zk_fail(e)),
            }
        }
        let children = match client.list_children(&path).await {
            Ok(children) => children,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(super::raw::zk_fail(e)),
        };
        stack.push((path.clone(), true));
        stack.extend(children.into_iter().map(|c| (format!("{path}/{c}"), false)));
    }
    Ok(())
}

#[cfg(feature = "mysql")]
async fn mysql(target: &Target, names: &BTreeSet<String>) -> Result<()> {
    use super::raw::mysql_fail;
    let mut conn = super::raw::mysql_connect(&target.url).await?;
    for name in names {
        let key = distlock::LockName::new(name.as_str())?.hashed(64);
        for delete in [
            "DELETE FROM distlock_fence WHERE name = ?",
            "DELETE FROM distlock_locks WHERE name = ?",
        ] {
            match sqlx::query(delete)
                .bind(key.as_bytes())
                .execute(&mut conn)
                .await
            {
                // 1146: the mode never created that table.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42S02") => {}
                Err(e) => return Err(mysql_fail(e)),
                Ok(_) => {}
            }
        }
    }
    let prefix = format!("distlock-bench-{}/%", target.run);
    let counters = format!("{}/%", target.run);
    for (delete, pattern) in [
        ("DELETE FROM distlock_bench_raw WHERE name LIKE ?", &prefix),
        (
            "DELETE FROM distlock_bench_counter WHERE id LIKE ?",
            &counters,
        ),
    ] {
        match sqlx::query(delete).bind(pattern).execute(&mut conn).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42S02") => {}
            Err(e) => return Err(mysql_fail(e)),
            Ok(_) => {}
        }
    }
    Ok(())
}
