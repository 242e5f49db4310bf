//! Keyspace commands: DEL, EXISTS, expiry, KEYS, SCAN, TYPE, DBSIZE,
//! FLUSHDB, PING.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use bytes::Bytes;

use super::Ctx;
use crate::glob::glob_match_within;
use crate::memory::reply::{CmdResult, RedisError, Reply, int_arg, is_opt};

pub(super) fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    Ok(Reply::len(
        args[1..]
            .iter()
            .filter(|key| ctx.ks.get(key, now).is_some() && ctx.ks.remove(key))
            .count(),
    ))
}

pub(super) fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now;
    Ok(Reply::len(
        args[1..]
            .iter()
            .filter(|key| ctx.ks.get(key, now).is_some())
            .count(),
    ))
}

pub(super) fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_in(ctx, args, 1000, "expire")
}

pub(super) fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_in(ctx, args, 1, "pexpire")
}

/// EXPIRE / PEXPIRE key amount [NX|XX|GT|LT], with `amount` × `ms_per_unit` ms.
fn expire_in(ctx: &mut Ctx<'_>, args: &[Bytes], ms_per_unit: i64, command: &str) -> CmdResult {
    let amount = int_arg(&args[2])?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is_opt(opt, "NX") {
            nx = true;
        } else if is_opt(opt, "XX") {
            xx = true;
        } else if is_opt(opt, "GT") {
            gt = true;
        } else if is_opt(opt, "LT") {
            lt = true;
        } else {
            return Err(RedisError::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(RedisError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(RedisError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    let ms = amount
        .checked_mul(ms_per_unit)
        .ok_or_else(|| RedisError::err(format!("invalid expire time in '{command}' command")))?;
    let Some(current) = ctx.ks.deadline(&args[1], ctx.now) else {
        return Ok(Reply::Int(0));
    };
    let new_deadline = (ms > 0).then(|| ctx.now + Duration::from_millis(ms.unsigned_abs()));
    let allowed = match current {
        None => !xx && !gt,
        Some(cur) => {
            !nx && (!gt || new_deadline.is_some_and(|n| n > cur))
                && (!lt || new_deadline.is_none_or(|n| n < cur))
        }
    };
    if !allowed {
        return Ok(Reply::Int(0));
    }
    match new_deadline {
        Some(at) => ctx.ks.set_deadline(&args[1], Some(at)),
        None => {
            ctx.ks.remove(&args[1]);
        }
    }
    Ok(Reply::Int(1))
}

/// The remaining time to live in ms: -2 if absent, -1 if persistent.
fn ttl_ms(ctx: &mut Ctx<'_>, key: &[u8]) -> i64 {
    match ctx.ks.deadline(key, ctx.now) {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            i64::try_from(at.saturating_duration_since(ctx.now).as_millis()).unwrap_or(i64::MAX)
        }
    }
}

pub(super) fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ms = ttl_ms(ctx, &args[1]);
    Ok(Reply::Int(if ms < 0 { ms } else { (ms + 500) / 1000 }))
}

pub(super) fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ttl_ms(ctx, &args[1])))
}

pub(super) fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match ctx.ks.deadline(&args[1], ctx.now) {
        Some(Some(_)) => {
            ctx.ks.set_deadline(&args[1], None);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

pub(super) fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1];
    let mut matched = Vec::new();
    for key in ctx.ks.keys(ctx.now) {
        ctx.deadline.tick()?;
        if glob_match_within(pattern, key, ctx.deadline)? {
            matched.push(key);
        }
    }
    Ok(Reply::bulks(matched))
}

/// Where a key sits in SCAN's order: never 0, which ends a scan.
fn scan_position(key: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish().max(1)
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. Keys are visited in the
/// order of a fixed hash, and the cursor is the position of the next key, so
/// a key present for the whole scan is returned at least once.
pub(super) fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| RedisError::err("invalid cursor"))?;
    let (mut pattern, mut count, mut type_filter) = (None, 10usize, None);
    for pair in args[2..].chunks(2) {
        let [opt, value] = pair else {
            return Err(RedisError::syntax());
        };
        if is_opt(opt, "MATCH") {
            pattern = Some(value.clone());
        } else if is_opt(opt, "COUNT") {
            count = usize::try_from(int_arg(value)?).map_err(|_| RedisError::syntax())?;
            if count == 0 {
                return Err(RedisError::syntax());
            }
        } else if is_opt(opt, "TYPE") {
            type_filter = Some(String::from_utf8_lossy(value).to_ascii_lowercase());
        } else {
            return Err(RedisError::syntax());
        }
    }
    let mut ordered: Vec<(u64, Bytes)> = ctx
        .ks
        .keys(ctx.now)
        .map(|k| (scan_position(k), k.clone()))
        .filter(|(pos, _)| *pos >= cursor)
        .collect();
    ordered.sort_unstable();
    let next = ordered.get(count).map_or(0, |(pos, _)| *pos);
    ordered.truncate(count);
    let now = ctx.now;
    let mut page = Vec::new();
    for (_, key) in ordered {
        if let Some(pattern) = &pattern
            && !glob_match_within(pattern, &key, ctx.deadline)?
        {
            continue;
        }
        let typed = type_filter
            .as_deref()
            .is_none_or(|t| ctx.ks.get(&key, now).is_some_and(|d| d.type_name() == t));
        if typed {
            page.push(Reply::Bulk(key));
        }
    }
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(page),
    ]))
}

pub(super) fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Status(
        ctx.ks
            .get(&args[1], ctx.now)
            .map_or("none", |d| d.type_name()),
    ))
}

pub(super) fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::len(ctx.ks.len(ctx.now)))
}

pub(super) fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match &args[1..] {
        [] => {}
        [mode] if is_opt(mode, "ASYNC") || is_opt(mode, "SYNC") => {}
        _ => return Err(RedisError::syntax()),
    }
    ctx.ks.clear();
    Ok(Reply::ok())
}

pub(super) fn ping(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match &args[1..] {
        [] => Ok(Reply::Status("PONG")),
        [message] => Ok(Reply::Bulk(message.clone())),
        _ => Err(RedisError::arity("ping")),
    }
}
