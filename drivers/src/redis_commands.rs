//! What a Redis command is, for authorization: its full name (a container
//! command's subcommand included, `config|set`), whether Redis files it
//! under `@admin` or `@dangerous`, and whether it runs a script.
//!
//! The tables are Redis 7.0's `COMMAND` reply; `tests/tests/redis_commands.rs`
//! checks them against a real server, command by command, so a server
//! that files a command differently fails a test instead of passing a
//! principal through.

use bytes::Bytes;

/// Commands with subcommands: their full name is `name|subcommand`.
const CONTAINERS: &[&str] = &[
    "acl", "client", "cluster", "command", "config", "function", "latency", "memory", "module",
    "object", "pubsub", "script", "slowlog", "xgroup", "xinfo",
];

/// Redis 7.0's `@admin` and `@dangerous` commands, sorted.
const ADMIN_OR_DANGEROUS: &[&str] = &[
    "acl|deluser",
    "acl|dryrun",
    "acl|getuser",
    "acl|list",
    "acl|load",
    "acl|log",
    "acl|save",
    "acl|setuser",
    "acl|users",
    "bgrewriteaof",
    "bgsave",
    "client|kill",
    "client|list",
    "client|no-evict",
    "client|pause",
    "client|unblock",
    "client|unpause",
    "cluster|addslots",
    "cluster|addslotsrange",
    "cluster|bumpepoch",
    "cluster|count-failure-reports",
    "cluster|delslots",
    "cluster|delslotsrange",
    "cluster|failover",
    "cluster|flushslots",
    "cluster|forget",
    "cluster|meet",
    "cluster|replicas",
    "cluster|replicate",
    "cluster|reset",
    "cluster|saveconfig",
    "cluster|set-config-epoch",
    "cluster|setslot",
    "cluster|slaves",
    "config|get",
    "config|resetstat",
    "config|rewrite",
    "config|set",
    "debug",
    "failover",
    "flushall",
    "flushdb",
    "info",
    "keys",
    "lastsave",
    "latency|doctor",
    "latency|graph",
    "latency|histogram",
    "latency|history",
    "latency|latest",
    "latency|reset",
    "migrate",
    "module|list",
    "module|load",
    "module|loadex",
    "module|unload",
    "monitor",
    "pfdebug",
    "pfselftest",
    "psync",
    "replconf",
    "replicaof",
    "restore",
    "restore-asking",
    "role",
    "save",
    "shutdown",
    "slaveof",
    "slowlog|get",
    "slowlog|len",
    "slowlog|reset",
    "sort",
    "sort_ro",
    "swapdb",
    "sync",
];

/// Commands Redis does not file under `@admin` but that act on the whole
/// server as much: they drop or replace every script or function, or
/// kill one another caller runs. Treated as admin here.
pub const ADMIN_TOO: &[&str] = &[
    "function|delete",
    "function|flush",
    "function|kill",
    "function|restore",
    "script|flush",
    "script|kill",
];

/// The commands that run a script (a rule that denies a command cannot
/// see what a script runs).
const SCRIPTS: &[&str] = &[
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// A command's full name in lower case: `get`, or `config|set` for a
/// container command with its subcommand. `None` for an empty command or
/// one that is not UTF-8 (no command is).
pub fn full_name(args: &[Bytes]) -> Option<String> {
    let name = std::str::from_utf8(args.first()?)
        .ok()?
        .to_ascii_lowercase();
    if CONTAINERS.contains(&name.as_str())
        && let Some(sub) = args.get(1).and_then(|s| std::str::from_utf8(s).ok())
    {
        return Some(format!("{name}|{}", sub.to_ascii_lowercase()));
    }
    Some(name)
}

/// Whether the command (by [`full_name`]) is one Redis files under
/// `@admin` or `@dangerous`, or one of [`ADMIN_TOO`].
pub fn is_admin(full_name: &str) -> bool {
    ADMIN_OR_DANGEROUS.binary_search(&full_name).is_ok() || ADMIN_TOO.contains(&full_name)
}

/// Whether the command (by [`full_name`]) runs a script or a function.
pub fn is_script(full_name: &str) -> bool {
    SCRIPTS.contains(&full_name)
}

/// Whether `name` (lower case) has subcommands.
pub fn is_container(name: &str) -> bool {
    CONTAINERS.contains(&name)
}

/// The read-only twin of a script command, to name in a refusal.
pub fn read_only_twin(full_name: &str) -> Option<&'static str> {
    match full_name {
        "eval" => Some("EVAL_RO"),
        "evalsha" => Some("EVALSHA_RO"),
        "fcall" => Some("FCALL_RO"),
        _ => None,
    }
}

/// The commands in Redis' `@admin` or `@dangerous` (Redis 7.0), for the
/// test that checks them against a server.
pub fn admin_or_dangerous() -> &'static [&'static str] {
    ADMIN_OR_DANGEROUS
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

    #[test]
    fn names_are_found_whatever_their_case() {
        assert!(ADMIN_OR_DANGEROUS.windows(2).all(|w| w[0] < w[1]), "sorted");
        let name = |w: &[&str]| full_name(&args(w)).unwrap();
        assert_eq!(name(&["CoNfIg", "SET", "x", "y"]), "config|set");
        assert_eq!(name(&["GET", "k"]), "get");
        assert!(is_admin(&name(&["config", "set"])));
        assert!(is_admin(&name(&["FLUSHDB"])));
        assert!(is_admin(&name(&["SCRIPT", "flush"])));
        assert!(!is_admin(&name(&["CONFIG"])));
        assert!(!is_admin(&name(&["GET", "k"])));
        assert!(is_script(&name(&["EvalSha", "abc", "0"])));
        assert_eq!(read_only_twin("eval"), Some("EVAL_RO"));
        assert_eq!(full_name(&[]), None);
    }
}
