//! What a Redis-protocol server (Redis, FalkorDB) would lose of what it
//! acknowledged, by its persistence settings.

use super::RedisPool;

/// A warning when the server keeps no append-only file, or never fsyncs
/// it; `None` when it does, or when its settings cannot be read (an ACL
/// that refuses `CONFIG GET`).
pub(crate) async fn warning(pool: &RedisPool, server: &str) -> Option<String> {
    let conn = pool.connection().await.ok()?;
    let read = |name: &'static str| {
        let mut conn = conn.conn.clone();
        async move {
            ::redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async::<Vec<String>>(&mut conn)
                .await
                .ok()
                .and_then(|pair| pair.into_iter().nth(1))
        }
    };
    if let Some(policy) = read("maxmemory-policy").await
        && policy.starts_with("allkeys-")
    {
        return Some(format!(
            "{server} evicts any key at its memory limit (maxmemory-policy {policy}): a \
             transaction's marker key can be evicted while a replay still needs it, and the \
             replay then applies its writes again; use noeviction or a volatile-* policy"
        ));
    }
    let appendonly = read("appendonly").await?;
    if appendonly == "no" {
        return Some(format!(
            "{server} runs without an append-only file (appendonly no): a crash or restart \
             loses writes it acknowledged, committed transactions' parts included; run it \
             with appendonly yes and appendfsync always (everysec loses up to a second)"
        ));
    }
    let fsync = read("appendfsync").await?;
    (fsync == "no").then(|| {
        format!(
            "{server} never fsyncs its append-only file (appendfsync no): a crash of the \
             machine loses writes it acknowledged; set appendfsync always (or everysec)"
        )
    })
}
