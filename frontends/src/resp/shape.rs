//! RESP3's shapes for the replies a RESP2 engine gives.
//!
//! A Redis engine spoken to in RESP2 (the default) and the memory engine
//! answer `HGETALL` with a flat array, `ZSCORE` with a bulk string and
//! `SMEMBERS` with an array, where Redis answers a RESP3 client with a
//! map, a double and a set; RESP3 clients (redis-py with `protocol=3`)
//! read them by those types. For a session in RESP3, the replies of the
//! commands below are given Redis' RESP3 shape, by the command and its
//! options, as Redis itself decides it; a reply already in that shape (a
//! RESP3 engine's) is left as it is, and so is anything not shaped as
//! RESP2 would send it (an error, nil).

use bytes::Bytes;

use super::encode::{Protocol, Reply};

/// How a command's RESP2 reply becomes its RESP3 reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Shape {
    /// Unchanged.
    #[default]
    Same,
    /// A flat array of fields and values becomes a map (`HGETALL`,
    /// `CONFIG GET`).
    Map,
    /// A bulk string holding a number becomes a double (`ZSCORE`,
    /// `ZINCRBY`).
    Double,
    /// An array of such bulk strings (or nils) becomes doubles (`ZMSCORE`).
    Doubles,
    /// An array becomes a set (`SMEMBERS`, `SINTER`, `SUNION`, `SDIFF`).
    Set,
    /// A flat array of members and scores becomes an array of
    /// `[member, double]` pairs (`ZRANGE ... WITHSCORES`, `ZPOPMIN key
    /// count`).
    ScorePairs,
    /// A flat array of fields and values becomes an array of `[field,
    /// value]` pairs (`HRANDFIELD key count WITHVALUES`).
    Pairs,
    /// `[member, score]` with its score a double (`ZPOPMIN key`).
    ScorePair,
}

impl Shape {
    /// The shape of `args`' reply in `protocol` (always [`Shape::Same`] in
    /// RESP2).
    pub(super) fn of(protocol: Protocol, args: &[Bytes]) -> Shape {
        if protocol == Protocol::Resp2 {
            return Shape::Same;
        }
        let Some(name) = args.first() else {
            return Shape::Same;
        };
        // An option among the arguments from `from` on, where options
        // stand (a key or member of that name earlier is not one).
        let with = |from: usize, option: &[u8]| {
            args.get(from..)
                .is_some_and(|rest| rest.iter().any(|a| a.eq_ignore_ascii_case(option)))
        };
        // ZUNION/ZINTER/ZDIFF: options follow `numkeys` keys.
        let after_keys = || {
            std::str::from_utf8(args.get(1).map_or(&b""[..], |n| n))
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
                .map_or(usize::MAX, |n| n.saturating_add(2))
        };
        match name.to_ascii_uppercase().as_slice() {
            b"HGETALL" => Shape::Map,
            b"CONFIG" if args.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"GET")) => Shape::Map,
            b"ZSCORE" | b"ZINCRBY" => Shape::Double,
            b"ZADD" if with(2, b"INCR") => Shape::Double,
            b"ZMSCORE" => Shape::Doubles,
            b"SMEMBERS" | b"SINTER" | b"SUNION" | b"SDIFF" => Shape::Set,
            b"ZRANGE" | b"ZRANGEBYSCORE" | b"ZREVRANGE" | b"ZREVRANGEBYSCORE"
                if with(4, b"WITHSCORES") =>
            {
                Shape::ScorePairs
            }
            b"ZUNION" | b"ZINTER" | b"ZDIFF" if with(after_keys(), b"WITHSCORES") => {
                Shape::ScorePairs
            }
            b"ZPOPMIN" | b"ZPOPMAX" if args.len() > 2 => Shape::ScorePairs,
            b"ZPOPMIN" | b"ZPOPMAX" => Shape::ScorePair,
            b"ZRANDMEMBER" if with(3, b"WITHSCORES") => Shape::ScorePairs,
            b"HRANDFIELD" if with(3, b"WITHVALUES") => Shape::Pairs,
            _ => Shape::Same,
        }
    }

    /// `reply` in this shape, when it is in the RESP2 shape of it.
    pub(super) fn apply(self, reply: Reply) -> Reply {
        match (self, reply) {
            (Shape::Map, Reply::Array(items)) if items.len().is_multiple_of(2) => {
                Reply::Map(pairs(items).collect())
            }
            (Shape::Double | Shape::Doubles, Reply::Bulk(b)) => double(b),
            (Shape::Doubles, Reply::Array(items)) => {
                Reply::Array(items.into_iter().map(|r| Shape::Double.apply(r)).collect())
            }
            (Shape::Set, Reply::Array(items)) => Reply::Set(items),
            (Shape::ScorePairs, Reply::Array(items)) if flat_pairs(&items) => Reply::Array(
                pairs(items)
                    .map(|(member, score)| Reply::Array(vec![member, Shape::Double.apply(score)]))
                    .collect(),
            ),
            (Shape::Pairs, Reply::Array(items)) if flat_pairs(&items) => Reply::Array(
                pairs(items)
                    .map(|(f, v)| Reply::Array(vec![f, v]))
                    .collect(),
            ),
            (Shape::ScorePair, Reply::Array(mut items))
                if items.len() == 2 && matches!(items[1], Reply::Bulk(_)) =>
            {
                let score = items.pop().map(|s| Shape::Double.apply(s));
                items.extend(score);
                Reply::Array(items)
            }
            (_, reply) => reply,
        }
    }
}

/// Whether `items` are RESP2's flat pairs (an even number, none an array:
/// a RESP3 engine's reply is already an array of pairs).
fn flat_pairs(items: &[Reply]) -> bool {
    items.len().is_multiple_of(2) && !items.iter().any(|i| matches!(i, Reply::Array(_)))
}

/// A flat array's items two by two.
fn pairs(items: Vec<Reply>) -> impl Iterator<Item = (Reply, Reply)> {
    let mut items = items.into_iter();
    std::iter::from_fn(move || Some((items.next()?, items.next()?)))
}

/// A bulk string holding a number as a double (Redis writes infinities as
/// `inf` and `-inf`); any other bulk string as it is.
fn double(bulk: Bytes) -> Reply {
    match std::str::from_utf8(&bulk)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        Some(f) => Reply::Double(f),
        None => Reply::Bulk(bulk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn resp2_replies_take_the_shape_redis_gives_a_resp3_client() {
        let shape = |words: &[&str]| Shape::of(Protocol::Resp3, &args(words));
        assert_eq!(
            shape(&["hgetall", "h"]).apply(Reply::Array(vec![bulk("f"), bulk("v")])),
            Reply::Map(vec![(bulk("f"), bulk("v"))])
        );
        assert_eq!(
            shape(&["ZSCORE", "z", "m"]).apply(bulk("1.5")),
            Reply::Double(1.5)
        );
        assert_eq!(
            shape(&["ZSCORE", "z", "m"]).apply(bulk("-inf")),
            Reply::Double(f64::NEG_INFINITY)
        );
        assert_eq!(
            shape(&["ZMSCORE", "z", "a", "b"]).apply(Reply::Array(vec![bulk("2"), Reply::Nil])),
            Reply::Array(vec![Reply::Double(2.0), Reply::Nil])
        );
        assert_eq!(
            shape(&["SMEMBERS", "s"]).apply(Reply::Array(vec![bulk("x")])),
            Reply::Set(vec![bulk("x")])
        );
        assert_eq!(
            shape(&["ZRANGE", "z", "0", "-1", "withscores"]).apply(Reply::Array(vec![
                bulk("a"),
                bulk("1"),
                bulk("b"),
                bulk("2")
            ])),
            Reply::Array(vec![
                Reply::Array(vec![bulk("a"), Reply::Double(1.0)]),
                Reply::Array(vec![bulk("b"), Reply::Double(2.0)]),
            ])
        );
        assert_eq!(
            shape(&["ZPOPMIN", "z"]).apply(Reply::Array(vec![bulk("a"), bulk("1")])),
            Reply::Array(vec![bulk("a"), Reply::Double(1.0)])
        );
        // Without WITHSCORES (a key of that name is not the option), in
        // RESP2, or already shaped (a RESP3 engine's pairs): as it is.
        let members = Reply::Array(vec![bulk("a"), bulk("b")]);
        assert_eq!(
            shape(&["ZRANGE", "z", "0", "-1"]).apply(members.clone()),
            members
        );
        assert_eq!(
            shape(&["ZRANGE", "withscores", "0", "-1"]).apply(members.clone()),
            members
        );
        assert_eq!(
            shape(&["ZUNION", "2", "withscores", "b"]).apply(members.clone()),
            members
        );
        let pairs = Reply::Array(vec![
            Reply::Array(vec![bulk("a"), Reply::Double(1.0)]),
            Reply::Array(vec![bulk("b"), Reply::Double(2.0)]),
        ]);
        assert_eq!(
            shape(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]).apply(pairs.clone()),
            pairs
        );
        assert_eq!(
            Shape::of(Protocol::Resp2, &args(&["HGETALL", "h"])),
            Shape::Same
        );
        let map = Reply::Map(vec![(bulk("f"), bulk("v"))]);
        assert_eq!(shape(&["HGETALL", "h"]).apply(map.clone()), map);
        let error = Reply::error("WRONGTYPE x");
        assert_eq!(shape(&["HGETALL", "h"]).apply(error.clone()), error);
    }
}
