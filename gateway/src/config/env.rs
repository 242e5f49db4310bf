//! Configuration from the environment: `OMNIGATE__A__B=value` overrides
//! laid onto the parsed file, key by key (a key's existing spelling kept),
//! values read as TOML scalars where they parse as one.

use std::collections::BTreeMap;

use crate::error::ConfigError;

/// Where configuration reads environment variables from; tests pass a map.
pub trait Env {
    /// Every variable, as (name, value).
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl Env for BTreeMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

const ENV_PREFIX: &str = "OMNIGATE__";

/// Applies `OMNIGATE__A__B=value` overrides onto the parsed table.
pub(super) fn apply_env(table: &mut toml::Table, env: &dyn Env) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = env
        .vars()
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    for (name, raw) in overrides {
        let path: Vec<&str> = name[ENV_PREFIX.len()..].split("__").collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::Invalid {
                file: None,
                message: format!("environment variable {name}: write OMNIGATE__SECTION__KEY"),
            });
        }
        let mut node = &mut *table;
        for (depth, segment) in path.iter().enumerate() {
            let key = existing_key(node, segment);
            if depth + 1 == path.len() {
                node.insert(key, scalar(&raw));
                break;
            }
            let child = node
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = child.as_table_mut().ok_or_else(|| ConfigError::Invalid {
                file: None,
                message: format!("environment variable {name}: {segment} is not a table"),
            })?;
        }
    }
    Ok(())
}

/// The key of `table` that an environment segment names (case-insensitive,
/// `_` also matching `-`), or the segment in lower case.
fn existing_key(table: &toml::Table, segment: &str) -> String {
    let wanted = segment.to_ascii_lowercase();
    table
        .keys()
        .find(|k| k.to_ascii_lowercase().replace('-', "_") == wanted)
        .cloned()
        .unwrap_or(wanted)
}

fn scalar(raw: &str) -> toml::Value {
    let parsed = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match parsed {
        Some(
            v @ (toml::Value::Integer(_)
            | toml::Value::Float(_)
            | toml::Value::Boolean(_)
            | toml::Value::String(_)),
        ) => v,
        _ => toml::Value::String(raw.to_owned()),
    }
}
