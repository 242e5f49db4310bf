//! List commands: LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN.

use std::collections::VecDeque;

use bytes::Bytes;

use super::Ctx;
use crate::memory::reply::{CmdResult, RedisError, Reply, int_arg};
use crate::memory::store::Data;

#[derive(Clone, Copy)]
enum End {
    Left,
    Right,
}

fn list<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a VecDeque<Bytes>>, RedisError> {
    match ctx.ks.get(key, ctx.now) {
        None => Ok(None),
        Some(Data::List(l)) => Ok(Some(l)),
        Some(_) => Err(RedisError::wrong_type()),
    }
}

fn push(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> CmdResult {
    let Data::List(list) = ctx
        .ks
        .get_or_insert_with(&args[1], ctx.now, || Data::List(VecDeque::new()))
    else {
        return Err(RedisError::wrong_type());
    };
    for item in &args[2..] {
        match end {
            End::Left => list.push_front(item.clone()),
            End::Right => list.push_back(item.clone()),
        }
    }
    Ok(Reply::len(list.len()))
}

pub(super) fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Left)
}

pub(super) fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Right)
}

fn pop(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> CmdResult {
    let count = match args.get(2..) {
        Some([]) | None => None,
        Some([count]) => {
            let n = int_arg(count)
                .map_err(|_| RedisError::err("value is out of range, must be positive"))?;
            Some(
                usize::try_from(n)
                    .map_err(|_| RedisError::err("value is out of range, must be positive"))?,
            )
        }
        Some(_) => {
            return Err(RedisError::arity(if matches!(end, End::Left) {
                "lpop"
            } else {
                "rpop"
            }));
        }
    };
    let list = match ctx.ks.get_mut(&args[1], ctx.now) {
        None => return Ok(Reply::Nil),
        Some(Data::List(l)) => l,
        Some(_) => return Err(RedisError::wrong_type()),
    };
    let mut take = || match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    };
    let reply = match count {
        None => take().map_or(Reply::Nil, Reply::Bulk),
        Some(n) => Reply::Array(std::iter::from_fn(take).take(n).map(Reply::Bulk).collect()),
    };
    ctx.ks.remove_if_empty(&args[1]);
    Ok(reply)
}

pub(super) fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Left)
}

pub(super) fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Right)
}

/// Resolves Redis' inclusive, possibly negative `start..=stop` against `len`.
pub(super) fn index_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

pub(super) fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let Some(list) = list(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(match index_range(start, stop, list.len()) {
        Some((from, to)) => Reply::bulks(list.range(from..=to)),
        None => Reply::Array(Vec::new()),
    })
}

pub(super) fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::len(list(ctx, &args[1])?.map_or(0, VecDeque::len)))
}
