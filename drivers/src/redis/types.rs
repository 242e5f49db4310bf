//! Which type of value a write needs at its key, so that a transaction's
//! writes can be checked against the keys' types before a commit is
//! decided (`WRONGTYPE` inside EXEC would leave the other writes applied).

use bytes::Bytes;

/// The type a command's key must hold (or be absent), and the type it
/// holds after the write.
pub(super) fn needs(command: &str) -> Option<&'static str> {
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

/// What each write leaves at its key, given the types before it, in
/// order: `Err((index, key, held, needed))` for the first write that would
/// fail with WRONGTYPE.
pub(super) fn first_conflict(
    writes: &[Vec<Bytes>],
    mut types: std::collections::HashMap<Bytes, String>,
) -> Result<(), (usize, Bytes, String, &'static str)> {
    for (index, args) in writes.iter().enumerate() {
        let Some(key) = args.get(1) else {
            continue;
        };
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        match name.as_str() {
            "SET" | "SETEX" | "PSETEX" | "MSET" => {
                for key in keys_of(&name, args) {
                    types.insert(key.clone(), "string".into());
                }
            }
            "DEL" | "UNLINK" => {
                for key in &args[1..] {
                    types.insert(key.clone(), "none".into());
                }
            }
            _ => {
                if let Some(needed) = needs(&name) {
                    let held = types.get(key).map_or("none", String::as_str);
                    if held != "none" && held != needed {
                        return Err((index, key.clone(), held.to_owned(), needed));
                    }
                    types.insert(key.clone(), needed.into());
                }
            }
        }
    }
    Ok(())
}

/// The keys a write touches, for the types to read before the check.
pub(super) fn keys_of<'a>(name: &str, args: &'a [Bytes]) -> Vec<&'a Bytes> {
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
        let mut held = std::collections::HashMap::new();
        held.insert(Bytes::from("list"), "list".to_owned());
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
        assert_eq!((err.0, err.2.as_str(), err.3), (1, "list", "string"));
        // A type the transaction itself gives a key counts too.
        let err = first_conflict(
            &[cmd(&["SET", "k", "1"]), cmd(&["LPUSH", "k", "x"])],
            held.clone(),
        )
        .unwrap_err();
        assert_eq!(err.0, 1);
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
}
