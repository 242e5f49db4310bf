//! Sorted-set commands: ZADD, ZREM, ZSCORE, ZRANGE, ZRANGEBYSCORE, ZCARD.

use bytes::Bytes;

use super::Ctx;
use super::lists::index_range;
use crate::memory::reply::{CmdResult, RedisError, Reply, float_arg, int_arg, is_opt, parse_f64};
use crate::memory::store::{Data, ZSet};

fn zset<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a ZSet>, RedisError> {
    match ctx.ks.get(key, ctx.now) {
        None => Ok(None),
        Some(Data::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(RedisError::wrong_type()),
    }
}

#[derive(Default)]
struct ZaddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

pub(super) fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut flags = ZaddFlags::default();
    let mut i = 2;
    while let Some(opt) = args.get(i) {
        let flag = match opt.to_ascii_uppercase().as_slice() {
            b"NX" => &mut flags.nx,
            b"XX" => &mut flags.xx,
            b"GT" => &mut flags.gt,
            b"LT" => &mut flags.lt,
            b"CH" => &mut flags.ch,
            b"INCR" => &mut flags.incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(RedisError::syntax());
    }
    if flags.nx && flags.xx {
        return Err(RedisError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(RedisError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && pairs.len() > 2 {
        return Err(RedisError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let scored: Vec<(f64, &Bytes)> = pairs
        .chunks_exact(2)
        .map(|p| float_arg(&p[0]).map(|s| (s, &p[1])))
        .collect::<Result<_, _>>()?;
    let Data::ZSet(z) =
        ctx.ks
            .get_or_insert_with(&args[1], ctx.now, || Data::ZSet(ZSet::default()))
    else {
        return Err(RedisError::wrong_type());
    };
    let (mut added, mut changed) = (0, 0);
    let mut incr_result = None;
    for (score, member) in scored {
        let old = z.score(member);
        let new = match (flags.incr, old) {
            (true, Some(old)) => old + score,
            _ => score,
        };
        if new.is_nan() {
            return Err(RedisError::err("resulting score is not a number (NaN)"));
        }
        let skip = match old {
            Some(old) => flags.nx || (flags.gt && new <= old) || (flags.lt && new >= old),
            None => flags.xx,
        };
        if skip {
            continue;
        }
        if old != Some(new) {
            z.insert(member.clone(), new);
            if old.is_none() {
                added += 1;
            }
            changed += 1;
        }
        incr_result = Some(new);
    }
    ctx.ks.remove_if_empty(&args[1]);
    if flags.incr {
        return Ok(incr_result.map_or(Reply::Nil, Reply::float));
    }
    Ok(Reply::Int(if flags.ch { changed } else { added }))
}

pub(super) fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let removed = match ctx.ks.get_mut(&args[1], ctx.now) {
        None => 0,
        Some(Data::ZSet(z)) => args[2..].iter().filter(|m| z.remove(m)).count(),
        Some(_) => return Err(RedisError::wrong_type()),
    };
    ctx.ks.remove_if_empty(&args[1]);
    Ok(Reply::len(removed))
}

pub(super) fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(zset(ctx, &args[1])?
        .and_then(|z| z.score(&args[2]))
        .map_or(Reply::Nil, Reply::float))
}

pub(super) fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::len(zset(ctx, &args[1])?.map_or(0, ZSet::len)))
}

/// One end of a score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Clone, Copy)]
struct Bound {
    value: f64,
    exclusive: bool,
}

fn bound(arg: &[u8]) -> Result<Bound, RedisError> {
    let (exclusive, number) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let value = parse_f64(number).ok_or_else(|| RedisError::err("min or max is not a float"))?;
    Ok(Bound { value, exclusive })
}

fn in_range(score: f64, min: Bound, max: Bound) -> bool {
    let above = if min.exclusive {
        score > min.value
    } else {
        score >= min.value
    };
    let below = if max.exclusive {
        score < max.value
    } else {
        score <= max.value
    };
    above && below
}

/// What ZRANGE / ZRANGEBYSCORE select and how they reply.
struct RangeQuery<'a> {
    key: &'a [u8],
    by_score: Option<(Bound, Bound)>,
    index: (i64, i64),
    rev: bool,
    limit: Option<(usize, Option<usize>)>,
    with_scores: bool,
}

fn run_range(ctx: &mut Ctx<'_>, q: &RangeQuery<'_>) -> CmdResult {
    let Some(z) = zset(ctx, q.key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let ordered: Box<dyn Iterator<Item = (&Bytes, f64)>> = if q.rev {
        Box::new(z.iter().rev())
    } else {
        Box::new(z.iter())
    };
    let selected: Vec<(&Bytes, f64)> = match q.by_score {
        Some((min, max)) => {
            let (offset, count) = q.limit.unwrap_or((0, None));
            ordered
                .filter(|(_, s)| in_range(*s, min, max))
                .skip(offset)
                .take(count.unwrap_or(usize::MAX))
                .collect()
        }
        None => match index_range(q.index.0, q.index.1, z.len()) {
            Some((from, to)) => ordered.skip(from).take(to - from + 1).collect(),
            None => Vec::new(),
        },
    };
    Ok(Reply::Array(
        selected
            .into_iter()
            .flat_map(|(m, s)| {
                let score = q.with_scores.then(|| Reply::float(s));
                std::iter::once(Reply::Bulk(m.clone())).chain(score)
            })
            .collect(),
    ))
}

/// Parses `LIMIT offset count` at `args[i..]`; a negative count means all.
fn limit(args: &[Bytes], i: usize) -> Result<(usize, Option<usize>), RedisError> {
    let (Some(offset), Some(count)) = (args.get(i + 1), args.get(i + 2)) else {
        return Err(RedisError::syntax());
    };
    let (offset, count) = (int_arg(offset)?, int_arg(count)?);
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    Ok((offset, usize::try_from(count).ok()))
}

pub(super) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut by_score, mut rev, mut with_scores, mut lim) = (false, false, false, None);
    let mut i = 4;
    while let Some(opt) = args.get(i) {
        if is_opt(opt, "BYSCORE") {
            by_score = true;
        } else if is_opt(opt, "REV") {
            rev = true;
        } else if is_opt(opt, "WITHSCORES") {
            with_scores = true;
        } else if is_opt(opt, "LIMIT") {
            lim = Some(limit(args, i)?);
            i += 2;
        } else if is_opt(opt, "BYLEX") {
            return Err(RedisError::unsupported("ZRANGE ... BYLEX"));
        } else {
            return Err(RedisError::syntax());
        }
        i += 1;
    }
    if lim.is_some() && !by_score {
        return Err(RedisError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    let query = if by_score {
        // With REV the range is written max first.
        let (a, b) = (bound(&args[2])?, bound(&args[3])?);
        RangeQuery {
            key: &args[1],
            by_score: Some(if rev { (b, a) } else { (a, b) }),
            index: (0, -1),
            rev,
            limit: lim,
            with_scores,
        }
    } else {
        RangeQuery {
            key: &args[1],
            by_score: None,
            index: (int_arg(&args[2])?, int_arg(&args[3])?),
            rev,
            limit: None,
            with_scores,
        }
    };
    run_range(ctx, &query)
}

pub(super) fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (min, max) = (bound(&args[2])?, bound(&args[3])?);
    let (mut with_scores, mut lim) = (false, None);
    let mut i = 4;
    while let Some(opt) = args.get(i) {
        if is_opt(opt, "WITHSCORES") {
            with_scores = true;
        } else if is_opt(opt, "LIMIT") {
            lim = Some(limit(args, i)?);
            i += 2;
        } else {
            return Err(RedisError::syntax());
        }
        i += 1;
    }
    let query = RangeQuery {
        key: &args[1],
        by_score: Some((min, max)),
        index: (0, -1),
        rev: false,
        limit: lim,
        with_scores,
    };
    run_range(ctx, &query)
}
