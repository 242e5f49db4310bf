//! String commands: GET, SET, MGET, MSET, INCR/DECR(BY), APPEND, STRLEN.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use super::Ctx;
use crate::memory::reply::{CmdResult, RedisError, Reply, int_arg, is_opt, parse_i64};
use crate::memory::store::Data;

pub(super) fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(ctx.string(&args[1])?.map_or(Reply::Nil, Reply::Bulk))
}

/// When a SET's key should expire.
enum Expiry {
    None,
    Keep,
    At(Instant),
}

pub(super) fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, value) = (&args[1], &args[2]);
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut expiry = Expiry::None;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        if is_opt(opt, "NX") && !xx {
            nx = true;
        } else if is_opt(opt, "XX") && !nx {
            xx = true;
        } else if is_opt(opt, "GET") {
            get = true;
        } else if is_opt(opt, "KEEPTTL") && matches!(expiry, Expiry::None) {
            expiry = Expiry::Keep;
        } else if ["EX", "PX", "EXAT", "PXAT"].iter().any(|o| is_opt(opt, o))
            && matches!(expiry, Expiry::None)
        {
            let amount = args.get(i + 1).ok_or_else(RedisError::syntax)?;
            expiry = Expiry::At(deadline(ctx.now, opt, int_arg(amount)?, "set")?);
            i += 1;
        } else {
            return Err(RedisError::syntax());
        }
        i += 1;
    }
    let old = if get { ctx.string(key)? } else { None };
    let exists = ctx.ks.get(key, ctx.now).is_some();
    let reply = if get {
        old.map_or(Reply::Nil, Reply::Bulk)
    } else {
        Reply::ok()
    };
    if (nx && exists) || (xx && !exists) {
        return Ok(if get { reply } else { Reply::Nil });
    }
    ctx.ks.insert(
        key.clone(),
        Data::Str(value.clone()),
        matches!(expiry, Expiry::Keep),
        ctx.now,
    );
    if let Expiry::At(at) = expiry {
        ctx.ks.set_deadline(key, Some(at));
    }
    Ok(reply)
}

/// The deadline an EX/PX/EXAT/PXAT amount names, checked as Redis does.
pub(super) fn deadline(
    now: Instant,
    unit: &[u8],
    amount: i64,
    command: &str,
) -> Result<Instant, RedisError> {
    let invalid = || RedisError::err(format!("invalid expire time in '{command}' command"));
    if amount <= 0 {
        return Err(invalid());
    }
    let amount = amount.unsigned_abs();
    let relative = if is_opt(unit, "EX") {
        Duration::from_secs(amount)
    } else if is_opt(unit, "PX") {
        Duration::from_millis(amount)
    } else {
        let ms = if is_opt(unit, "EXAT") {
            amount.checked_mul(1000).ok_or_else(invalid)?
        } else {
            amount
        };
        let target = UNIX_EPOCH + Duration::from_millis(ms);
        target
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    now.checked_add(relative).ok_or_else(invalid)
}

pub(super) fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Array(
        args[1..]
            .iter()
            .map(|key| match ctx.ks.get(key, ctx.now) {
                Some(Data::Str(s)) => Reply::Bulk(s.clone()),
                _ => Reply::Nil,
            })
            .collect(),
    ))
}

pub(super) fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(RedisError::arity("mset"));
    }
    for pair in args[1..].chunks_exact(2) {
        ctx.ks
            .insert(pair[0].clone(), Data::Str(pair[1].clone()), false, ctx.now);
    }
    Ok(Reply::ok())
}

fn incr_by(ctx: &mut Ctx<'_>, key: &Bytes, delta: i64) -> CmdResult {
    let current = match ctx.string(key)? {
        Some(s) => parse_i64(&s).ok_or_else(RedisError::not_integer)?,
        None => 0,
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| RedisError::err("increment or decrement would overflow"))?;
    ctx.ks.insert(
        key.clone(),
        Data::Str(Bytes::from(next.to_string())),
        true,
        ctx.now,
    );
    Ok(Reply::Int(next))
}

pub(super) fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

pub(super) fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

pub(super) fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_by(ctx, &args[1], int_arg(&args[2])?)
}

pub(super) fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let delta = int_arg(&args[2])?;
    let negated = delta
        .checked_neg()
        .ok_or_else(|| RedisError::err("decrement would overflow"))?;
    incr_by(ctx, &args[1], negated)
}

pub(super) fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut value = BytesMut::from(ctx.string(&args[1])?.unwrap_or_default().as_ref());
    value.extend_from_slice(&args[2]);
    let len = value.len();
    ctx.ks
        .insert(args[1].clone(), Data::Str(value.freeze()), true, ctx.now);
    Ok(Reply::len(len))
}

pub(super) fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::len(ctx.string(&args[1])?.map_or(0, |s| s.len())))
}
