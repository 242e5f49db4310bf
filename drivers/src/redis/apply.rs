//! Applying a Redis transaction's writes: one `MULTI`..`EXEC`, and for a
//! cross-engine commit the check that watches the keys and the marker
//! from the vote to `EXEC`, and the replay that recovery and the committer
//! share (see `transaction.rs`).

use bytes::Bytes;

use super::KIND;
use super::reply::{from_redis, to_value_with};
use crate::redis_types::{Held, checked_keys_of, first_conflict, needs_integer};
use crate::resp::RedisPool;
use crate::{EngineError, Error, Redo, Result, Value, marker_key};

/// Applies `writes` in one `MULTI`..`EXEC`, with `marker`'s key when given;
/// the writes' replies. As in Redis, a write that fails when applied
/// (`WRONGTYPE`) does not undo the others: that is reported as a
/// precondition failure.
pub(super) async fn apply(
    pool: &RedisPool,
    writes: &[Redo],
    marker: Option<&str>,
) -> Result<Vec<Value>> {
    if writes.is_empty() && marker.is_none() {
        return Ok(Vec::new());
    }
    let mut conn = pool.connection().await?;
    let applied = apply_on(&mut conn.conn, writes, marker).await;
    match conn.noting(applied)? {
        Applied::Yes(replies) => Ok(replies),
        // Nothing is watched on a pooled connection.
        Applied::WatchLost => Err(Error::Conflict(EngineError::new(
            KIND,
            None,
            "EXEC was aborted by a WATCH: nothing was applied",
        ))),
    }
}

/// What an `EXEC` did.
#[derive(Debug, PartialEq)]
pub(super) enum Applied {
    /// It ran every write: their replies (one that failed is an error).
    Yes(Vec<Value>),
    /// A watched key changed before it: nothing was applied.
    WatchLost,
}

/// [`apply`] on a connection (one a `WATCH` may have been sent on).
///
/// Redis refusing the transaction at `EXEC` (`EXECABORT`: a write refused
/// as it was queued, by `maxmemory` with `noeviction`, `READONLY` on a
/// replica, an ACL, `MISCONF`) applied nothing; it is a precondition
/// failure naming why, never taken for a lost `WATCH`.
pub(super) async fn apply_on(
    conn: &mut impl ::redis::aio::ConnectionLike,
    writes: &[Redo],
    marker: Option<&str>,
) -> Result<Applied> {
    let mut pipe = ::redis::pipe();
    pipe.atomic().ignore_errors();
    for args in writes {
        pipe.add_command(super::to_cmd(args));
    }
    if let Some(tx) = marker {
        // No expiry until the transaction has finished everywhere
        // (`forget_marker`): eviction must not take it from a replay.
        pipe.cmd("SET").arg(marker_key(tx)).arg(1).ignore();
    }
    let replies: ::redis::Value = match pipe.query_async(conn).await {
        Ok(replies) => replies,
        Err(e) if e.code() == Some("EXECABORT") => {
            return Err(Error::precondition(
                KIND,
                format!(
                    "Redis refused the transaction's writes at EXEC and applied none of them \
                     ({}{})",
                    e.code().unwrap_or_default(),
                    e.detail().map(|d| format!(" {d}")).unwrap_or_default()
                ),
            ));
        }
        Err(e) => return Err(from_redis(e)),
    };
    if replies == ::redis::Value::Nil {
        return Ok(Applied::WatchLost);
    }
    // EXEC applied every command; one that failed when applied did not
    // undo the others (Redis has no rollback).
    if let ::redis::Value::Array(items) = &replies
        && let Some((index, err)) = items.iter().enumerate().find_map(|(i, r)| match r {
            ::redis::Value::ServerError(e) => Some((i, e)),
            _ => None,
        })
    {
        return Err(Error::AppliedInPart(EngineError::new(
            KIND,
            Some(err.code()),
            format!(
                "write {} of {} failed when applied ({}: {}); Redis applied the others",
                index + 1,
                writes.len(),
                err.code(),
                err.details().unwrap_or_default()
            ),
        )));
    }
    Ok(Applied::Yes(replies_of(replies)))
}

/// An `EXEC`'s replies, bulk strings as bytes (the marker's is not among
/// them: it is ignored in the pipeline). Empty, as "not known", if one
/// does not convert: the writes are applied whatever their replies say.
fn replies_of(replies: ::redis::Value) -> Vec<Value> {
    let ::redis::Value::Array(items) = replies else {
        return Vec::new();
    };
    items
        .into_iter()
        .map(|reply| to_value_with(reply, true))
        .collect::<Result<_>>()
        .unwrap_or_default()
}

/// Applies a transaction's writes again with its marker, unless the marker
/// is there: they were applied. The marker and the keys the writes' check
/// reads are watched from that check to `EXEC`, so two applies at once
/// (the committer and a replica's recovery, or two replicas) apply once,
/// and a key changed after the check aborts the `EXEC` whole instead of
/// failing one write of it; then the check runs again. A write the check
/// finds would fail is refused with none applied. The `WATCH` is the
/// connection's state, so the apply has a connection of its own: on the
/// shared one, another caller's `EXEC` would end the watch, and the watch
/// could abort that caller's `EXEC`.
pub(super) async fn replay(pool: &RedisPool, tx: &str, writes: &[Redo]) -> Result<Vec<Value>> {
    let mut conn = pool.watcher().await?;
    let mut outcome = replay_on(&mut conn, tx, writes).await;
    if let Err(Error::Unavailable(_)) = outcome {
        // A kept connection the server closed (a restart): once more on a
        // fresh one. The marker makes applying again safe.
        conn = pool.dedicated().await?;
        outcome = replay_on(&mut conn, tx, writes).await;
    }
    // Kept for the next apply only when it is known clean: nothing is
    // watched after EXEC; after an error, it is dropped (closed).
    if outcome.is_ok() {
        pool.give_back_watcher(conn);
    }
    outcome
}

/// How many times an apply checks and tries `EXEC`; the last watches only
/// the marker.
const APPLY_ATTEMPTS: usize = 8;

/// [`replay`] on a connection of its own: the writes' replies when this
/// apply applied them (none when another had).
async fn replay_on(
    conn: &mut ::redis::aio::MultiplexedConnection,
    tx: &str,
    writes: &[Redo],
) -> Result<Vec<Value>> {
    for attempt in 1..=APPLY_ATTEMPTS {
        // Keys changed before every EXEC so far (a hot counter): the last
        // attempt watches only the marker, as Redis' own MULTI would not
        // guard a key at all, so that a committed transaction's writes
        // still land; a change in that last window can fail one write.
        let watch_keys = attempt < APPLY_ATTEMPTS;
        match check_on(conn, tx, writes, watch_keys).await? {
            Checked::Applied => {
                // Nothing may stay watched on a connection kept for reuse.
                ::redis::cmd("UNWATCH")
                    .query_async::<()>(conn)
                    .await
                    .map_err(from_redis)?;
                return Ok(Vec::new());
            }
            Checked::Conflict(why) => {
                return Err(Error::precondition(
                    KIND,
                    format!("{why}; none of the transaction's writes was applied"),
                ));
            }
            // EXEC on the same connection, under the WATCH: if another
            // apply set the marker or a checked key changed meanwhile,
            // nothing is applied here, and the check runs again (finding
            // the marker, if that was it).
            Checked::Clean => {
                if let Applied::Yes(replies) = apply_on(conn, writes, Some(tx)).await? {
                    return Ok(replies);
                }
            }
        }
    }
    // The last EXEC lost only a watch on the marker: another apply set it,
    // unless something else touched it (FLUSHDB, SWAPDB): then it is not
    // there, and nothing was applied.
    let applied: bool = ::redis::cmd("EXISTS")
        .arg(marker_key(tx))
        .query_async(conn)
        .await
        .map_err(from_redis)?;
    if applied {
        return Ok(Vec::new());
    }
    Err(Error::Unavailable(EngineError::new(
        KIND,
        None,
        "the transaction's marker changed before each EXEC but was never set: recovery \
         applies it later",
    )))
}

/// What [`check_on`] found.
#[derive(Debug)]
pub(super) enum Checked {
    /// The marker is there: the writes were applied.
    Applied,
    /// Every write would apply.
    Clean,
    /// This write would fail (why).
    Conflict(String),
}

/// Watches transaction `tx`'s marker and the keys `writes` touch, then
/// reads whether the marker is there and the keys' types (and, for
/// `INCR`-family writes, whether their strings are integers), and checks
/// every write against them and against what the earlier writes leave.
/// The connection stays watching unless it sends `EXEC` or `UNWATCH`.
pub(super) async fn check_on(
    conn: &mut ::redis::aio::MultiplexedConnection,
    tx: &str,
    writes: &[Redo],
    watch_keys: bool,
) -> Result<Checked> {
    let mut keys: Vec<&Bytes> = writes
        .iter()
        .flat_map(|args| {
            checked_keys_of(
                &String::from_utf8_lossy(&args[0]).to_ascii_uppercase(),
                args,
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    let marker = marker_key(tx);
    let mut pipe = ::redis::pipe();
    let watch = pipe.cmd("WATCH").arg(&marker);
    for key in keys.iter().filter(|_| watch_keys) {
        watch.arg(key.as_ref());
    }
    pipe.ignore().cmd("EXISTS").arg(&marker);
    for key in &keys {
        // An integer string is stored "int"-encoded: the only encoding
        // INCR accepts without reading the value.
        pipe.cmd("TYPE").arg(key.as_ref());
        pipe.cmd("OBJECT").arg("ENCODING").arg(key.as_ref());
    }
    let replies: Vec<::redis::Value> = pipe.query_async(conn).await.map_err(from_redis)?;
    let text = |value: &::redis::Value| -> Option<String> {
        ::redis::from_redis_value::<Option<String>>(value.clone())
            .ok()
            .flatten()
    };
    if matches!(replies.first(), Some(::redis::Value::Int(1))) {
        return Ok(Checked::Applied);
    }
    let mut held: std::collections::HashMap<Bytes, Held> = keys
        .into_iter()
        .zip(replies.get(1..).unwrap_or_default().chunks(2))
        .map(|(key, reply)| {
            let kind = reply
                .first()
                .and_then(text)
                .unwrap_or_else(|| "none".into());
            let integer = (kind == "string"
                && reply.get(1).and_then(text).as_deref() == Some("int"))
            .then_some(true);
            (key.clone(), Held { kind, integer })
        })
        .collect();
    // A string not "int"-encoded may still read as an integer (one
    // APPEND made): read the few an INCR-family write touches.
    let unsure: Vec<Bytes> = held
        .iter()
        .filter(|(_, h)| h.kind == "string" && h.integer.is_none())
        .map(|(k, _)| k.clone())
        .filter(|k| {
            writes.iter().any(|args| {
                args.get(1) == Some(k)
                    && needs_integer(&String::from_utf8_lossy(&args[0]).to_ascii_uppercase())
            })
        })
        .collect();
    if !unsure.is_empty() {
        let mut pipe = ::redis::pipe();
        for key in &unsure {
            pipe.cmd("GET").arg(key.as_ref());
        }
        let values: Vec<Option<Vec<u8>>> = pipe.query_async(conn).await.map_err(from_redis)?;
        for (key, value) in unsure.into_iter().zip(values) {
            if let Some(value) = value {
                held.insert(key, Held::string(&value));
            }
        }
    }
    Ok(match first_conflict(writes, held) {
        Ok(()) => Checked::Clean,
        Err(conflict) => Checked::Conflict(conflict.to_string()),
    })
}

/// Ends the watch on `conn` and keeps it for the next apply; a connection
/// that does not answer is dropped (closed).
pub(super) async fn unwatch(pool: &RedisPool, mut conn: ::redis::aio::MultiplexedConnection) {
    if ::redis::cmd("UNWATCH")
        .query_async::<()>(&mut conn)
        .await
        .is_ok()
    {
        pool.give_back_watcher(conn);
    }
}
