//! Hash commands: HSET, HGET, HMGET, HGETALL, HDEL, HINCRBY, HLEN, HEXISTS.

use std::collections::HashMap;

use bytes::Bytes;

use super::Ctx;
use crate::memory::reply::{CmdResult, RedisError, Reply, int_arg, parse_i64};
use crate::memory::store::Data;

/// The hash at `key`: `None` if absent, WRONGTYPE if not a hash.
fn hash<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'a HashMap<Bytes, Bytes>>, RedisError> {
    match ctx.ks.get(key, ctx.now) {
        None => Ok(None),
        Some(Data::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(RedisError::wrong_type()),
    }
}

/// The hash at `key` to change, created when absent.
fn hash_mut<'a>(
    ctx: &'a mut Ctx<'_>,
    key: &Bytes,
) -> Result<&'a mut HashMap<Bytes, Bytes>, RedisError> {
    match ctx
        .ks
        .get_or_insert_with(key, ctx.now, || Data::Hash(HashMap::new()))
    {
        Data::Hash(h) => Ok(h),
        _ => Err(RedisError::wrong_type()),
    }
}

pub(super) fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(RedisError::arity("hset"));
    }
    let h = hash_mut(ctx, &args[1])?;
    let added = args[2..]
        .chunks_exact(2)
        .filter(|pair| h.insert(pair[0].clone(), pair[1].clone()).is_none())
        .count();
    Ok(Reply::len(added))
}

pub(super) fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(hash(ctx, &args[1])?
        .and_then(|h| h.get(&args[2]))
        .cloned()
        .map_or(Reply::Nil, Reply::Bulk))
}

pub(super) fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let h = hash(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|f| {
                h.and_then(|h| h.get(f))
                    .cloned()
                    .map_or(Reply::Nil, Reply::Bulk)
            })
            .collect(),
    ))
}

pub(super) fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let items = hash(ctx, &args[1])?
        .map(|h| {
            h.iter()
                .flat_map(|(f, v)| [Reply::Bulk(f.clone()), Reply::Bulk(v.clone())])
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply::Array(items))
}

pub(super) fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let removed = match ctx.ks.get_mut(&args[1], ctx.now) {
        None => 0,
        Some(Data::Hash(h)) => args[2..].iter().filter(|f| h.remove(*f).is_some()).count(),
        Some(_) => return Err(RedisError::wrong_type()),
    };
    ctx.ks.remove_if_empty(&args[1]);
    Ok(Reply::len(removed))
}

pub(super) fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let delta = int_arg(&args[3])?;
    let h = hash_mut(ctx, &args[1])?;
    let current = match h.get(&args[2]) {
        Some(v) => parse_i64(v).ok_or_else(|| RedisError::err("hash value is not an integer"))?,
        None => 0,
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| RedisError::err("increment or decrement would overflow"))?;
    h.insert(args[2].clone(), Bytes::from(next.to_string()));
    Ok(Reply::Int(next))
}

pub(super) fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::len(hash(ctx, &args[1])?.map_or(0, HashMap::len)))
}

pub(super) fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::bool(
        hash(ctx, &args[1])?.is_some_and(|h| h.contains_key(&args[2])),
    ))
}
