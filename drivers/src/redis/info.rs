//! What the server says of a command (`COMMAND INFO`): whether it exists,
//! its arity, whether it writes, whether it may run inside MULTI. Asked
//! once per command name and kept.

use ::redis::Value as Resp;
use ::redis::aio::MultiplexedConnection;

use super::KIND;
use super::reply::from_redis;
use crate::{EngineError, Error, Result};

/// A command as the server describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CommandInfo {
    /// The server knows the command.
    pub(super) known: bool,
    /// Its arity: exactly n arguments (command name included) when
    /// positive, at least -n when negative.
    pub(super) arity: i64,
    /// It writes (the `write` flag).
    pub(super) writes: bool,
    /// It may not run inside MULTI (the `no_multi` flag).
    pub(super) no_multi: bool,
    /// Redis flags it `readonly`: it reads and nothing else.
    pub(super) readonly: bool,
}

impl CommandInfo {
    /// `Err` as the server would answer a call with `argc` arguments
    /// (command name included).
    pub(super) fn check_call(&self, name: &str, argc: usize) -> Result<()> {
        let invalid = |message: String| {
            Err(Error::InvalidStatement(EngineError::new(
                KIND,
                Some("ERR"),
                message,
            )))
        };
        if !self.known {
            return invalid(format!("ERR unknown command '{name}'"));
        }
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let fits = if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        };
        if !fits {
            return invalid(format!(
                "ERR wrong number of arguments for '{}' command",
                name.to_ascii_lowercase()
            ));
        }
        Ok(())
    }
}

/// The longest command name asked about (`container|subcommand`).
const MAX_NAME: usize = 64;

/// The known commands, by lower-case name.
#[derive(Debug, Clone)]
pub(super) struct Commands(moka::sync::Cache<String, CommandInfo>);

impl Commands {
    pub(super) fn new() -> Self {
        Commands(moka::sync::Cache::new(1024))
    }

    /// What the server says of `name` (asked on `conn` the first time).
    pub(super) async fn info(
        &self,
        conn: &mut MultiplexedConnection,
        name: &str,
    ) -> Result<CommandInfo> {
        // No command's name is longer: a caller's long word is asked of
        // no server and kept in no cache.
        if name.len() > MAX_NAME {
            return Ok(unknown());
        }
        let key = name.to_ascii_lowercase();
        if let Some(known) = self.0.get(&key) {
            return Ok(known);
        }
        let reply: Resp = ::redis::cmd("COMMAND")
            .arg("INFO")
            .arg(&key)
            .query_async(conn)
            .await
            .map_err(from_redis)?;
        let info = parse(&reply);
        // Only commands the server knows are kept: a caller cannot fill
        // the cache with made-up names.
        if info.known {
            self.0.insert(key, info);
        }
        Ok(info)
    }

    /// `Err(ReadOnly)` unless Redis flags the command `readonly` (a
    /// container's subcommand by its own entry, `object|encoding`), or it
    /// is `PING` or `ECHO`: what a read-only request may run. A script
    /// (`EVAL`, `FCALL`) is not flagged, whatever it does: the refusal
    /// names its read-only twin (`EVAL_RO`), which Redis itself keeps from
    /// writing.
    pub(super) async fn refuse_unless_read_only(
        &self,
        conn: &mut MultiplexedConnection,
        args: &[bytes::Bytes],
        whose: &str,
    ) -> Result<()> {
        let Some(full) = crate::redis_commands::full_name(args) else {
            return Ok(()); // not a command: the server answers with its error
        };
        if matches!(full.as_str(), "ping" | "echo") {
            return Ok(());
        }
        let info = self.info(conn, &full).await?;
        if info.readonly {
            return Ok(());
        }
        let shown = full.replace('|', " ").to_ascii_uppercase();
        let message = match crate::redis_commands::read_only_twin(&full) {
            Some(twin) => format!(
                "{shown} may write, but the {whose} is read_only: run scripts with {twin}, which \
                 Redis keeps from writing"
            ),
            None if info.known => format!(
                "{shown} is not a read-only command (Redis does not flag it readonly), but the \
                 {whose} is read_only"
            ),
            None => format!(
                "{shown} is not a command Redis knows as read-only, but the {whose} is read_only"
            ),
        };
        Err(Error::read_only(KIND, message))
    }
}

/// Reads `[[name, arity, [flags...], ...]]` (nil for an unknown command).
fn parse(reply: &Resp) -> CommandInfo {
    let entry = match reply {
        Resp::Array(items) => match items.first() {
            Some(Resp::Array(entry)) => entry,
            _ => return unknown(),
        },
        _ => return unknown(),
    };
    let arity = match entry.get(1) {
        Some(Resp::Int(n)) => *n,
        _ => return unknown(),
    };
    let flags: Vec<String> = match entry.get(2) {
        Some(Resp::Array(flags) | Resp::Set(flags)) => flags
            .iter()
            .filter_map(|f| match f {
                Resp::SimpleString(s) => Some(s.clone()),
                Resp::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let has = |flag: &str| flags.iter().any(|f| f == flag);
    CommandInfo {
        known: true,
        arity,
        writes: has("write"),
        no_multi: has("no_multi"),
        readonly: has("readonly"),
    }
}

fn unknown() -> CommandInfo {
    CommandInfo {
        known: false,
        arity: 0,
        writes: false,
        no_multi: false,
        readonly: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_is_checked_as_the_server_checks_it() {
        let set = CommandInfo {
            known: true,
            arity: -3,
            writes: true,
            no_multi: false,
            readonly: false,
        };
        assert!(set.check_call("SET", 3).is_ok());
        assert!(set.check_call("SET", 5).is_ok());
        let err = set.check_call("SET", 2).unwrap_err();
        assert!(
            err.to_string()
                .contains("wrong number of arguments for 'set'"),
            "{err}"
        );
        let get = CommandInfo { arity: 2, ..set };
        assert!(get.check_call("GET", 3).is_err());
        assert!(
            unknown()
                .check_call("NOPE", 1)
                .unwrap_err()
                .to_string()
                .contains("unknown command")
        );
        let reply = Resp::Array(vec![Resp::Array(vec![
            Resp::BulkString(b"set".to_vec()),
            Resp::Int(-3),
            Resp::Array(vec![Resp::SimpleString("write".into())]),
        ])]);
        assert_eq!(parse(&reply), set);
        assert_eq!(parse(&Resp::Array(vec![Resp::Nil])), unknown());
    }
}
