//! What a principal may do: engines, dialects, read-only, and statement
//! rules. Checked once per call, in the pipeline, after routing and
//! before the driver.

use std::collections::BTreeSet;

use omnigate_drivers::redis_syntax::parse_command;
use omnigate_drivers::{Dialect, EngineError, Error as DriverError, Statement, redis_commands};

use crate::config::PrincipalConfig;
use crate::error::{Error, Result};

/// A principal's grant, compiled from its config.
#[derive(Debug)]
pub struct Grant {
    engines: Option<BTreeSet<String>>,
    dialects: Option<BTreeSet<Dialect>>,
    /// Only statements that do not write (each engine enforces it).
    pub read_only: bool,
    /// May list and resolve every transaction.
    pub admin: bool,
    deny: Vec<Deny>,
    /// Redis commands allowed although admin (lower case, `name` or
    /// `name|sub`, `@admin`, `@scripting`).
    allow_commands: BTreeSet<String>,
}

/// One statement rule.
#[derive(Debug)]
struct Deny {
    name: String,
    engine: Option<String>,
    kind: Option<String>,
    dialect: Option<Dialect>,
    pattern: regex::Regex,
}

impl Grant {
    /// `principal`'s grant; `Err` says which key is wrong.
    pub fn new(principal: &str, config: &PrincipalConfig) -> std::result::Result<Grant, String> {
        let dialect = |name: &str, key: String| {
            Dialect::parse(name).ok_or_else(|| {
                format!("{key}: unknown dialect {name} (known: sql, redis, cypher, ts)")
            })
        };
        let dialects = match &config.dialects {
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| dialect(n, format!("principals.{principal}.dialects")))
                    .collect::<std::result::Result<BTreeSet<_>, _>>()?,
            ),
            None => None,
        };
        let mut deny = Vec::with_capacity(config.deny.len());
        for (i, rule) in config.deny.iter().enumerate() {
            let key = format!("principals.{principal}.deny[{i}]");
            let pattern = regex::RegexBuilder::new(&rule.pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("{key}.pattern: {e}"))?;
            deny.push(Deny {
                name: rule.name.clone().unwrap_or(key.clone()),
                engine: rule.engine.clone(),
                kind: rule.kind.clone(),
                dialect: match &rule.dialect {
                    Some(d) => Some(dialect(d, format!("{key}.dialect"))?),
                    None => None,
                },
                pattern,
            });
        }
        Ok(Grant {
            engines: config.engines.as_ref().map(|e| e.iter().cloned().collect()),
            dialects,
            read_only: config.read_only,
            admin: config.admin,
            deny,
            allow_commands: config
                .allow_commands
                .iter()
                .map(|c| match c.to_ascii_lowercase().as_str() {
                    "@dangerous" => "@admin".to_owned(),
                    other => other.trim().to_owned(),
                })
                .collect(),
        })
    }

    /// Makes a call or a transaction read-only when this grant is: the
    /// one place a grant's `read_only` is applied. Enforced by the engine
    /// itself (a read-only role or transaction, a read-only query command,
    /// the commands Redis flags read-only); `restricted` tells engines with
    /// a read-only login to use it.
    pub fn restrict(&self, read_only: &mut bool, restricted: &mut bool) {
        *read_only |= self.read_only;
        *restricted |= self.read_only;
    }

    /// Whether it may use engine `name` at all (what ListEngines shows).
    pub fn may_use(&self, name: &str) -> bool {
        self.engines.as_ref().is_none_or(|e| e.contains(name))
    }

    /// Whether it may use `dialect` at all.
    pub fn may_speak(&self, dialect: Dialect) -> bool {
        self.dialects.as_ref().is_none_or(|d| d.contains(&dialect))
    }

    /// `Err(PermissionDenied)` unless `principal` may use `dialect` on
    /// engine `name`.
    pub fn check_engine(&self, principal: &str, name: &str, dialect: Dialect) -> Result<()> {
        if !self.may_use(name) {
            return Err(denied(
                principal,
                format!("use engine {name}"),
                format!("principals.{principal}.engines"),
            ));
        }
        if !self.may_speak(dialect) {
            return Err(denied(
                principal,
                format!("use the {} dialect", dialect.as_str()),
                format!("principals.{principal}.dialects"),
            ));
        }
        Ok(())
    }

    /// `Err(PermissionDenied)` naming the first rule that denies
    /// `statement` on engine `name` (of `kind`) in `dialect`. A Redis
    /// command is matched as parsed, and also refused when Redis files it
    /// under `@admin`/`@dangerous` (unless `allow_commands` names it), or
    /// when it runs a script while a rule applies (unless `@scripting` is
    /// allowed): a rule cannot see what a script runs.
    pub fn check_statement(
        &self,
        principal: &str,
        name: &str,
        kind: &str,
        dialect: Dialect,
        statement: &Statement,
    ) -> Result<()> {
        let applies = |d: &&Deny| {
            d.engine.as_deref().is_none_or(|e| e == name)
                && d.kind.as_deref().is_none_or(|k| k == kind)
                && d.dialect.is_none_or(|x| x == dialect)
        };
        let rule = if dialect == Dialect::Redis {
            self.check_command(principal, name, statement, applies)?
        } else {
            self.deny
                .iter()
                .filter(applies)
                .find(|d| d.pattern.is_match(&statement.text))
        };
        match rule {
            Some(rule) => Err(denied(
                principal,
                format!("run this statement on engine {name}"),
                rule.name.clone(),
            )),
            None => Ok(()),
        }
    }

    /// The Redis half of [`Grant::check_statement`]: the rule that
    /// denies the command, or `Err` for an admin command or a script.
    fn check_command<'g>(
        &'g self,
        principal: &str,
        engine: &str,
        statement: &Statement,
        applies: impl Fn(&&Deny) -> bool,
    ) -> Result<Option<&'g Deny>> {
        let args = parse_command(&statement.text, &statement.params, "redis")?;
        let Some(full) = redis_commands::full_name(&args) else {
            return Ok(None); // not UTF-8: the server knows no such command
        };
        let base = full.split('|').next().unwrap_or_default();
        let allowed = |what: &str| self.allow_commands.contains(what);
        let shown = full.replace('|', " ").to_ascii_uppercase();
        let mut rules = self.deny.iter().filter(applies).peekable();
        if rules.peek().is_some() {
            if redis_commands::is_script(&full) && !(allowed(&full) || allowed("@scripting")) {
                return Ok(rules.next());
            }
            let mut line = shown.split(' ').next().unwrap_or_default().to_owned();
            for arg in &args[1..] {
                line.push(' ');
                line.push_str(&String::from_utf8_lossy(arg));
            }
            if let Some(rule) = rules.find(|d| d.pattern.is_match(&line)) {
                return Ok(Some(rule));
            }
        }
        // A script may run any command, `@admin` ones included (`FLUSHALL`,
        // `SWAPDB`), and a function loaded replaces another's library.
        if (redis_commands::is_script(&full) || full == "function|load")
            && !(allowed(&full) || allowed("@scripting"))
        {
            return Err(denied(
                principal,
                format!(
                    "run {shown} on engine {engine} (a script may run any command, @admin \
                     ones too; allow @scripting to let it)"
                ),
                format!("principals.{principal}.allow_commands"),
            ));
        }
        if redis_commands::is_admin(&full)
            && !(allowed(&full) || allowed(base) || allowed("@admin"))
        {
            return Err(denied(
                principal,
                format!(
                    "run {shown} (Redis files it under @admin or @dangerous) on engine {engine}"
                ),
                format!("principals.{principal}.allow_commands"),
            ));
        }
        Ok(None)
    }

    /// `err` as the caller is told it when this grant, not the request,
    /// made the call read-only: a write refused for it is
    /// PERMISSION_DENIED naming `principals.NAME.read_only`.
    pub fn read_only_denial(&self, principal: &str, err: DriverError) -> DriverError {
        match err {
            DriverError::ReadOnly(e) if self.read_only => {
                DriverError::PermissionDenied(EngineError::new(
                    e.engine,
                    e.code.as_deref(),
                    format!(
                        "principal {principal} may not write (principals.{principal}.read_only): {}",
                        e.message
                    ),
                ))
            }
            other => other,
        }
    }
}

fn denied(principal: &str, action: String, rule: String) -> Error {
    Error::PermissionDenied {
        principal: principal.to_owned(),
        action,
        rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DenyRule;

    fn grant(config: PrincipalConfig) -> Grant {
        Grant::new("app", &config).unwrap()
    }

    #[test]
    fn engines_dialects_and_rules_deny_by_name() {
        let g = grant(PrincipalConfig {
            engines: Some(vec!["cache".into()]),
            dialects: Some(vec!["redis".into()]),
            deny: vec![DenyRule {
                name: Some("no-flush".into()),
                engine: None,
                kind: Some("redis".into()),
                dialect: None,
                pattern: r"^\s*FLUSH(ALL|DB)\b".into(),
            }],
            ..PrincipalConfig::default()
        });
        g.check_engine("app", "cache", Dialect::Redis).unwrap();
        let other = g.check_engine("app", "main", Dialect::Redis).unwrap_err();
        assert!(
            other.to_string().contains("principals.app.engines"),
            "{other}"
        );
        let sql = g.check_engine("app", "cache", Dialect::Sql).unwrap_err();
        assert!(sql.to_string().contains("principals.app.dialects"), "{sql}");
        let check = |kind: &str, text: &str| {
            g.check_statement("app", "cache", kind, Dialect::Redis, &Statement::new(text))
        };
        check("redis", "GET k").unwrap();
        let flush = check("redis", "flushall").unwrap_err();
        assert!(flush.to_string().contains("no-flush"), "{flush}");
        // Quoting and case do not hide the command: it is matched parsed.
        for spelled in ["'FLUSHDB'", "\"flushAll\"", "  FlushDB"] {
            let err = check("redis", spelled).unwrap_err();
            assert!(err.to_string().contains("no-flush"), "{spelled}: {err}");
        }
        // A rule applies: scripts are denied with it (they could run FLUSHALL).
        let script = check("redis", "EVAL 'return 1' 0").unwrap_err();
        assert!(script.to_string().contains("no-flush"), "{script}");
        // The rule names a kind: another kind is not matched; the command
        // is still admin there, and a script still needs @scripting (it
        // could run FLUSHALL).
        let script = check("memory", "EVAL \"return redis.call('FLUSHALL')\" 0").unwrap_err();
        assert!(script.to_string().contains("allow @scripting"), "{script}");
        let load = check("memory", "FUNCTION LOAD REPLACE x").unwrap_err();
        assert!(
            load.to_string().contains("principals.app.allow_commands"),
            "{load}"
        );
        let admin = check("memory", "FLUSHALL").unwrap_err();
        assert!(
            admin.to_string().contains("principals.app.allow_commands"),
            "{admin}"
        );
    }

    #[test]
    fn admin_commands_and_scripts_need_an_allow() {
        let g = grant(PrincipalConfig {
            deny: vec![DenyRule {
                name: Some("no-keys".into()),
                engine: None,
                kind: None,
                dialect: Some("redis".into()),
                pattern: r"^KEYS\b".into(),
            }],
            allow_commands: vec!["config|get".into(), "@scripting".into()],
            ..PrincipalConfig::default()
        });
        let check = |text: &str| {
            g.check_statement(
                "app",
                "cache",
                "redis",
                Dialect::Redis,
                &Statement::new(text),
            )
        };
        check("CONFIG GET maxmemory").unwrap();
        check("EVAL 'return 1' 0").unwrap();
        for refused in [
            "CONFIG SET maxmemory 1",
            "ACL SETUSER x on",
            "replicaof no one",
            "SCRIPT FLUSH",
        ] {
            let err = check(refused).unwrap_err();
            assert!(
                err.to_string().contains("allow_commands"),
                "{refused}: {err}"
            );
        }
        let keys = check("\"KEYS\" *").unwrap_err();
        assert!(keys.to_string().contains("no-keys"), "{keys}");
        // A placeholder is the command it binds.
        let bound = Statement {
            params: vec![omnigate_drivers::Value::String("flushdb".into())],
            ..Statement::new("$1")
        };
        let err = g
            .check_statement("app", "cache", "redis", Dialect::Redis, &bound)
            .unwrap_err();
        assert!(err.to_string().contains("allow_commands"), "{err}");
    }

    #[test]
    fn a_bad_pattern_or_dialect_names_its_key() {
        let bad = PrincipalConfig {
            deny: vec![DenyRule {
                name: None,
                engine: None,
                kind: None,
                dialect: None,
                pattern: "(".into(),
            }],
            ..PrincipalConfig::default()
        };
        let err = Grant::new("app", &bad).unwrap_err();
        assert!(err.starts_with("principals.app.deny[0].pattern"), "{err}");
        let dialect = PrincipalConfig {
            dialects: Some(vec!["mongo".into()]),
            ..PrincipalConfig::default()
        };
        let err = Grant::new("app", &dialect).unwrap_err();
        assert!(err.contains("principals.app.dialects"), "{err}");
    }
}
