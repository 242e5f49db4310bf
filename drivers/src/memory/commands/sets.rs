//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SCARD.

use std::collections::HashSet;

use bytes::Bytes;

use super::Ctx;
use crate::memory::reply::{CmdResult, RedisError, Reply};
use crate::memory::store::Data;

fn set<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a HashSet<Bytes>>, RedisError> {
    match ctx.ks.get(key, ctx.now) {
        None => Ok(None),
        Some(Data::Set(s)) => Ok(Some(s)),
        Some(_) => Err(RedisError::wrong_type()),
    }
}

pub(super) fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Data::Set(set) = ctx
        .ks
        .get_or_insert_with(&args[1], ctx.now, || Data::Set(HashSet::new()))
    else {
        return Err(RedisError::wrong_type());
    };
    Ok(Reply::len(
        args[2..]
            .iter()
            .filter(|m| set.insert((*m).clone()))
            .count(),
    ))
}

pub(super) fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let removed = match ctx.ks.get_mut(&args[1], ctx.now) {
        None => 0,
        Some(Data::Set(s)) => args[2..].iter().filter(|m| s.remove(*m)).count(),
        Some(_) => return Err(RedisError::wrong_type()),
    };
    ctx.ks.remove_if_empty(&args[1]);
    Ok(Reply::len(removed))
}

pub(super) fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(set(ctx, &args[1])?.map_or(Reply::Array(Vec::new()), Reply::bulks))
}

pub(super) fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::bool(
        set(ctx, &args[1])?.is_some_and(|s| s.contains(&args[2])),
    ))
}

pub(super) fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::len(set(ctx, &args[1])?.map_or(0, HashSet::len)))
}
