//! The Redis commands the memory engine implements, in one table.

mod hashes;
mod keys;
mod lists;
mod sets;
mod strings;
mod zsets;

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Instant;

use bytes::Bytes;

use super::reply::{CmdResult, RedisError};
use super::store::{Data, Keyspace};

/// What a command runs against.
pub(crate) struct Ctx<'a> {
    pub(crate) ks: &'a mut Keyspace,
    pub(crate) now: Instant,
    /// When the call's time is up: loops over many keys or members check it.
    pub(crate) deadline: &'a crate::deadline::Deadline,
}

impl Ctx<'_> {
    /// The string at `key`: `None` if absent, WRONGTYPE if not a string.
    pub(crate) fn string(&mut self, key: &[u8]) -> Result<Option<Bytes>, RedisError> {
        match self.ks.get(key, self.now) {
            None => Ok(None),
            Some(Data::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(RedisError::wrong_type()),
        }
    }
}

type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// One command: its arity as Redis counts it (the name included; negative
/// means "at least"), whether it writes, and its handler.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) name: &'static str,
    arity: i32,
    pub(crate) writes: bool,
    handler: Handler,
}

impl Command {
    /// Checks the number of arguments (`args[0]` is the command's name).
    pub(crate) fn check_arity(&self, args: &[Bytes]) -> Result<(), RedisError> {
        let n = i32::try_from(args.len()).unwrap_or(i32::MAX);
        let arity_ok = if self.arity >= 0 {
            n == self.arity
        } else {
            n >= -self.arity
        };
        if arity_ok {
            Ok(())
        } else {
            Err(RedisError::arity(self.name))
        }
    }

    /// Checks the arity and runs the command (`args[0]` is its name).
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
        self.check_arity(args)?;
        (self.handler)(ctx, args)
    }
}

const fn cmd(name: &'static str, arity: i32, writes: bool, handler: Handler) -> Command {
    Command {
        name,
        arity,
        writes,
        handler,
    }
}

static COMMANDS: &[Command] = &[
    // strings
    cmd("get", 2, false, strings::get),
    cmd("set", -3, true, strings::set),
    cmd("mget", -2, false, strings::mget),
    cmd("mset", -3, true, strings::mset),
    cmd("incr", 2, true, strings::incr),
    cmd("decr", 2, true, strings::decr),
    cmd("incrby", 3, true, strings::incrby),
    cmd("decrby", 3, true, strings::decrby),
    cmd("append", 3, true, strings::append),
    cmd("strlen", 2, false, strings::strlen),
    // keys and expiry
    cmd("del", -2, true, keys::del),
    cmd("exists", -2, false, keys::exists),
    cmd("expire", -3, true, keys::expire),
    cmd("pexpire", -3, true, keys::pexpire),
    cmd("ttl", 2, false, keys::ttl),
    cmd("pttl", 2, false, keys::pttl),
    cmd("persist", 2, true, keys::persist),
    cmd("keys", 2, false, keys::keys),
    cmd("scan", -2, false, keys::scan),
    cmd("type", 2, false, keys::type_),
    cmd("dbsize", 1, false, keys::dbsize),
    cmd("flushdb", -1, true, keys::flushdb),
    cmd("ping", -1, false, keys::ping),
    // hashes
    cmd("hset", -4, true, hashes::hset),
    cmd("hget", 3, false, hashes::hget),
    cmd("hmget", -3, false, hashes::hmget),
    cmd("hgetall", 2, false, hashes::hgetall),
    cmd("hdel", -3, true, hashes::hdel),
    cmd("hincrby", 4, true, hashes::hincrby),
    cmd("hlen", 2, false, hashes::hlen),
    cmd("hexists", 3, false, hashes::hexists),
    // lists
    cmd("lpush", -3, true, lists::lpush),
    cmd("rpush", -3, true, lists::rpush),
    cmd("lpop", -2, true, lists::lpop),
    cmd("rpop", -2, true, lists::rpop),
    cmd("lrange", 4, false, lists::lrange),
    cmd("llen", 2, false, lists::llen),
    // sets
    cmd("sadd", -3, true, sets::sadd),
    cmd("srem", -3, true, sets::srem),
    cmd("smembers", 2, false, sets::smembers),
    cmd("sismember", 3, false, sets::sismember),
    cmd("scard", 2, false, sets::scard),
    // sorted sets
    cmd("zadd", -4, true, zsets::zadd),
    cmd("zrem", -3, true, zsets::zrem),
    cmd("zscore", 3, false, zsets::zscore),
    cmd("zrange", -4, false, zsets::zrange),
    cmd("zrangebyscore", -4, false, zsets::zrangebyscore),
    cmd("zcard", 2, false, zsets::zcard),
];

static BY_NAME: LazyLock<HashMap<&'static str, &'static Command>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name, c)).collect());

/// The command called `name` (any case), if the memory engine has it.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Command> {
    if name.len() > 16 {
        return None;
    }
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    BY_NAME.get(lower.as_str()).copied()
}

/// The names of every implemented command, for documentation and tests.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.name)
}
