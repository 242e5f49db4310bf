//! What a transaction's buffered Redis writes need of the keys they touch
//! (a type, an integer), so that they can be checked against the keys'
//! state before a commit is decided: `WRONGTYPE` or "not an integer" inside
//! `EXEC` would leave the other writes applied, after the decision. Shared
//! by the Redis driver (which reads the keys with `TYPE` and `OBJECT
//! ENCODING`) and the memory engine (which reads its keyspace).

use std::collections::HashMap;

use bytes::Bytes;

/// The type a command's key must hold (or be absent), and the type it
/// holds after the write.
pub(crate) fn needs(command: &str) -> Option<&'static str> {
    Some(match command {
        "INCR" | "INCRBY" | "INCRBYFLOAT" | "DECR" | "DECRBY" | "APPEND" | "SETRANGE"
        | "GETSET" | "GETDEL" | "GETEX" | "SETNX" => "string",
        "HSET" | "HSETNX" | "HMSET" | "HDEL" | "HINCRBY" | "HINCRBYFLOAT" => "hash",
        "LPUSH" | "RPUSH" | "LPUSHX" | "RPUSHX" | "LPOP" | "RPOP" | "LSET" | "LREM" | "LTRIM"
        | "LINSERT" => "list",
        "SADD" | "SREM" | "SPOP" => "set",
        "ZADD" | "ZREM" | "ZINCRBY" | "ZPOPMIN" | "ZPOPMAX" | "ZREMRANGEBYSCORE"
        | "ZREMRANGEBYRANK" | "ZREMRANGEBYLEX" => "zset",
        _ => return None,
    })
}

/// Whether `command` needs its key's string to be an integer.
pub(crate) fn needs_integer(command: &str) -> bool {
    matches!(command, "INCR" | "INCRBY" | "DECR" | "DECRBY")
}

/// What a key holds, as far as the check knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// Its type as `TYPE` names it (`none` when absent).
    pub kind: String,
    /// For a string: whether it is an integer, when known.
    pub integer: Option<bool>,
}

impl Held {
    /// A key of type `kind`, integer-ness unknown.
    pub(crate) fn of(kind: &str) -> Self {
        Held {
            kind: kind.to_owned(),
            integer: None,
        }
    }

    /// A string whose value is `value`.
    pub(crate) fn string(value: &[u8]) -> Self {
        Held {
            kind: "string".into(),
            integer: Some(is_integer(value)),
        }
    }
}

/// Whether Redis would take `value` as an integer (`INCR`'s test: an i64
/// written canonically).
pub(crate) fn is_integer(value: &[u8]) -> bool {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok().map(|n| n.to_string() == s))
        .unwrap_or(false)
}

/// Why a write would fail when applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// The write's index in the transaction.
    pub index: usize,
    /// Its command's name (never its key or values: they may be a
    /// caller's parameters, which messages and logs never carry).
    pub command: String,
    /// What the key holds then.
    pub held: String,
    /// What the write needs.
    pub needed: &'static str,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let error = match self.needed {
            "integer" => "ERR value is not an integer",
            "number" => "ERR value is not a valid float",
            _ => "WRONGTYPE",
        };
        if self.held.starts_with("argument") {
            return write!(
                f,
                "write {} of the transaction ({}) would fail with {error}: its {}",
                self.index + 1,
                self.command,
                self.held
            );
        }
        write!(
            f,
            "write {} of the transaction ({}) would fail with {error}: its key holds {}, the \
             command needs {}",
            self.index + 1,
            self.command,
            self.held,
            self.needed
        )
    }
}

/// The argument of `command` (by position) that must be an integer or a
/// number, and which: Redis refuses the command as it is applied, inside
/// `EXEC`, when it is not.
fn numeric_argument(command: &str) -> Option<(usize, &'static str)> {
    Some(match command {
        "INCRBY" | "DECRBY" | "SETEX" | "PSETEX" | "EXPIRE" | "PEXPIRE" | "EXPIREAT"
        | "PEXPIREAT" | "LSET" => (2, "integer"),
        "HINCRBY" => (3, "integer"),
        "INCRBYFLOAT" | "ZINCRBY" => (2, "number"),
        "HINCRBYFLOAT" => (3, "number"),
        _ => return None,
    })
}

/// What each write leaves at its key, given what the keys held before it,
/// in order: `Err` for the first write that would fail with `WRONGTYPE`,
/// "not an integer", or an argument that is not a number.
pub(crate) fn first_conflict(
    writes: &[Vec<Bytes>],
    mut held: HashMap<Bytes, Held>,
) -> Result<(), Conflict> {
    for (index, args) in writes.iter().enumerate() {
        let Some(key) = args.get(1) else {
            continue;
        };
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        if let Some((at, kind)) = numeric_argument(&name)
            && let Some(arg) = args.get(at)
        {
            let text = std::str::from_utf8(arg).unwrap_or("");
            let ok = match kind {
                "integer" => text.parse::<i64>().is_ok(),
                _ => text.parse::<f64>().is_ok_and(f64::is_finite),
            };
            if !ok {
                return Err(Conflict {
                    index,
                    command: name.clone(),
                    held: format!(
                        "argument {at} is not {}",
                        if kind == "integer" {
                            "an integer"
                        } else {
                            "a number"
                        }
                    ),
                    needed: if kind == "integer" {
                        "integer"
                    } else {
                        "number"
                    },
                });
            }
        }
        match name.as_str() {
            "SET" | "SETEX" | "PSETEX" | "MSET" => {
                // The value: SET k v, SETEX k ttl v, PSETEX k ttl v, MSET k v ...
                let value_at = if name == "SET" || name == "MSET" {
                    2
                } else {
                    3
                };
                if name == "MSET" {
                    for pair in args[1..].chunks(2) {
                        if let [k, v] = pair {
                            held.insert(k.clone(), Held::string(v));
                        }
                    }
                } else {
                    let value = args.get(value_at).map(Bytes::as_ref).unwrap_or_default();
                    held.insert(key.clone(), Held::string(value));
                }
            }
            "DEL" | "UNLINK" => {
                for key in &args[1..] {
                    held.insert(key.clone(), Held::of("none"));
                }
            }
            _ => {
                let Some(needed) = needs(&name) else {
                    continue;
                };
                let now = held.get(key).cloned().unwrap_or_else(|| Held::of("none"));
                if now.kind != "none" && now.kind != needed {
                    return Err(Conflict {
                        index,
                        command: name.clone(),
                        held: format!("a {}", now.kind),
                        needed: if needed == "string" {
                            "a string"
                        } else {
                            needed
                        },
                    });
                }
                if needs_integer(&name) {
                    if now.kind == "string" && now.integer == Some(false) {
                        return Err(Conflict {
                            index,
                            command: name.clone(),
                            held: "a string that is not an integer".into(),
                            needed: "integer",
                        });
                    }
                    held.insert(
                        key.clone(),
                        Held {
                            kind: "string".into(),
                            integer: Some(true),
                        },
                    );
                } else {
                    held.insert(key.clone(), Held::of(needed));
                }
            }
        }
    }
    Ok(())
}

/// The keys whose state a write's check reads: those of a write that
/// needs a type (or an integer). A write that works on any key (`SET`,
/// `DEL`) reads none: what it leaves is known from its own arguments.
pub(crate) fn checked_keys_of<'a>(name: &str, args: &'a [Bytes]) -> Vec<&'a Bytes> {
    if needs(name).is_some() {
        args.get(1).into_iter().collect()
    } else {
        Vec::new()
    }
}

/// The keys a write touches, for what they hold to be read before the
/// check.
pub(crate) fn keys_of<'a>(name: &str, args: &'a [Bytes]) -> Vec<&'a Bytes> {
    match name {
        "MSET" => args[1..].iter().step_by(2).collect(),
        "DEL" | "UNLINK" => args[1..].iter().collect(),
        _ => args.get(1).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn a_write_that_would_meet_the_wrong_type_is_found_in_order() {
        let mut held = HashMap::new();
        held.insert(Bytes::from("list"), Held::of("list"));
        assert!(
            first_conflict(
                &[cmd(&["SET", "a", "1"]), cmd(&["INCR", "a"])],
                held.clone()
            )
            .is_ok()
        );
        let err = first_conflict(
            &[cmd(&["SET", "a", "1"]), cmd(&["INCR", "list"])],
            held.clone(),
        )
        .unwrap_err();
        assert_eq!((err.index, err.held.as_str()), (1, "a list"));
        // A type the transaction itself gives a key counts too.
        let err = first_conflict(
            &[cmd(&["SET", "k", "1"]), cmd(&["LPUSH", "k", "x"])],
            held.clone(),
        )
        .unwrap_err();
        assert_eq!(err.index, 1);
        assert!(
            first_conflict(
                &[
                    cmd(&["DEL", "list"]),
                    cmd(&["SET", "list", "1"]),
                    cmd(&["INCR", "list"])
                ],
                held
            )
            .is_ok()
        );
    }

    #[test]
    fn incr_of_a_string_that_is_not_an_integer_is_found() {
        let mut held = HashMap::new();
        held.insert(Bytes::from("word"), Held::string(b"hello"));
        held.insert(Bytes::from("n"), Held::string(b"41"));
        let err = first_conflict(&[cmd(&["INCR", "word"])], held.clone()).unwrap_err();
        assert_eq!(err.needed, "integer");
        assert!(err.to_string().contains("not an integer"), "{err}");
        assert!(first_conflict(&[cmd(&["INCRBY", "n", "2"])], held.clone()).is_ok());
        // What the transaction's own SET leaves counts.
        let err = first_conflict(
            &[cmd(&["SET", "n", "x"]), cmd(&["DECR", "n"])],
            held.clone(),
        )
        .unwrap_err();
        assert_eq!(err.index, 1);
        assert!(
            first_conflict(&[cmd(&["SET", "word", "7"]), cmd(&["INCR", "word"])], held).is_ok()
        );
        assert!(!is_integer(b"007") && !is_integer(b"") && is_integer(b"-12"));
    }

    #[test]
    fn arguments_that_are_not_numbers_are_found() {
        let none = HashMap::new();
        for bad in [
            cmd(&["INCRBY", "k", "abc"]),
            cmd(&["SETEX", "k", "soon", "v"]),
            cmd(&["HINCRBY", "h", "f", "1.5"]),
            cmd(&["INCRBYFLOAT", "k", "nan"]),
        ] {
            assert!(
                first_conflict(std::slice::from_ref(&bad), none.clone()).is_err(),
                "{bad:?}"
            );
        }
        assert!(first_conflict(&[cmd(&["INCRBY", "k", "-3"])], none.clone()).is_ok());
        assert!(first_conflict(&[cmd(&["INCRBYFLOAT", "k", "2.5"])], none).is_ok());
    }
}
