//! What a principal may do: engines, dialects, read-only, and statement
//! rules. Checked once per call, in the pipeline, after routing and
//! before the driver.

use std::collections::BTreeSet;

use omnigate_drivers::Dialect;

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
        })
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
    /// `statement` on engine `name` (of `kind`) in `dialect`.
    pub fn check_statement(
        &self,
        principal: &str,
        name: &str,
        kind: &str,
        dialect: Dialect,
        statement: &str,
    ) -> Result<()> {
        let applies = |d: &Deny| {
            d.engine.as_deref().is_none_or(|e| e == name)
                && d.kind.as_deref().is_none_or(|k| k == kind)
                && d.dialect.is_none_or(|x| x == dialect)
        };
        match self
            .deny
            .iter()
            .find(|d| applies(d) && d.pattern.is_match(statement))
        {
            Some(rule) => Err(denied(
                principal,
                format!("run this statement on engine {name}"),
                rule.name.clone(),
            )),
            None => Ok(()),
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
        g.check_statement("app", "cache", "redis", Dialect::Redis, "GET k")
            .unwrap();
        let flush = g
            .check_statement("app", "cache", "redis", Dialect::Redis, "flushall")
            .unwrap_err();
        assert!(flush.to_string().contains("no-flush"), "{flush}");
        // The rule names a kind: another kind is not matched.
        g.check_statement("app", "cache", "memory", Dialect::Redis, "FLUSHALL")
            .unwrap();
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
