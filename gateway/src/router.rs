//! Routes a dialect and an optional target name to one engine entry.

use std::collections::BTreeMap;
use std::sync::Arc;

use omnigate_drivers::Dialect;

use crate::engines::EngineEntry;
use crate::error::{Error, Result};

/// The configured engines, one entry per name.
#[derive(Debug, Clone, Default)]
pub struct Router {
    engines: BTreeMap<String, Arc<EngineEntry>>,
    /// Per dialect (in [`Dialect::ALL`]'s order), the engine that serves
    /// it when it is the only one: a call without a target is routed
    /// without a walk over every engine.
    only: [Option<Arc<EngineEntry>>; Dialect::ALL.len()],
}

impl Router {
    /// Adds an engine under its name (replacing one of that name).
    pub fn insert(&mut self, entry: impl Into<Arc<EngineEntry>>) {
        let entry = entry.into();
        self.engines.insert(entry.name().to_owned(), entry);
        self.only = Dialect::ALL.map(|dialect| {
            let mut serving = self.serving(dialect);
            match (serving.next(), serving.next()) {
                (Some(engine), None) => Some(Arc::clone(engine)),
                _ => None,
            }
        });
    }

    /// The engines that serve `dialect`.
    fn serving(&self, dialect: Dialect) -> impl Iterator<Item = &Arc<EngineEntry>> {
        self.engines
            .values()
            .filter(move |e| e.driver.descriptor().dialects.contains(&dialect))
    }

    /// Every engine, by name.
    pub fn engines(&self) -> impl Iterator<Item = &Arc<EngineEntry>> {
        self.engines.values()
    }

    /// The dialects the engines serve, sorted.
    pub fn dialects(&self) -> Vec<String> {
        let mut dialects: Vec<String> = self
            .engines
            .values()
            .flat_map(|e| {
                e.driver
                    .descriptor()
                    .dialects
                    .iter()
                    .map(|d| d.as_str().to_owned())
            })
            .collect();
        dialects.sort();
        dialects.dedup();
        dialects
    }

    fn names(&self) -> Vec<String> {
        self.engines.keys().cloned().collect()
    }

    /// The engine for `dialect`, named by `target` or the only one serving it.
    pub fn route(
        &self,
        dialect: &str,
        target: Option<&str>,
    ) -> Result<(Dialect, &Arc<EngineEntry>)> {
        if dialect.is_empty() {
            return Err(Error::MissingDialect {
                configured: self.dialects(),
            });
        }
        let unknown = || Error::UnknownDialect {
            dialect: crate::error::short(dialect),
            configured: self.dialects(),
        };
        let parsed = Dialect::parse(dialect).ok_or_else(unknown)?;
        if let Some(target) = target {
            let engine = self.by_name(target)?;
            let serves = &engine.driver.descriptor().dialects;
            if !serves.contains(&parsed) {
                return Err(Error::DialectNotServed {
                    target: crate::error::short(target),
                    dialect: parsed.as_str().to_owned(),
                    serves: serves.iter().map(|d| d.as_str().to_owned()).collect(),
                });
            }
            return Ok((parsed, engine));
        }
        if let Some(engine) = &self.only[parsed.index()] {
            return Ok((parsed, engine));
        }
        let candidates: Vec<String> = self.serving(parsed).map(|e| e.name().to_owned()).collect();
        if candidates.is_empty() {
            return Err(unknown());
        }
        Err(Error::AmbiguousTarget {
            dialect: parsed.as_str().to_owned(),
            candidates,
        })
    }

    /// The engine named `name`.
    pub fn by_name(&self, name: &str) -> Result<&Arc<EngineEntry>> {
        self.engines.get(name).ok_or_else(|| Error::UnknownTarget {
            target: crate::error::short(name),
            known: self.names(),
        })
    }

    /// The engine for a Describe: by name, by dialect, or the only one.
    pub fn for_describe(
        &self,
        target: Option<&str>,
        dialect: Option<&str>,
    ) -> Result<&Arc<EngineEntry>> {
        match (target, dialect) {
            (Some(target), None) => self.by_name(target),
            (target, Some(dialect)) => self.route(dialect, target).map(|(_, e)| e),
            (None, None) if self.engines.len() == 1 => self.by_name(&self.names()[0]),
            (None, None) => Err(Error::UnknownTarget {
                target: String::new(),
                known: self.names(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use omnigate_drivers::memory::{MemoryConfig, MemoryDriver};

    use super::*;

    fn router(names: &[&str]) -> Router {
        let mut router = Router::default();
        for name in names {
            router.insert(EngineEntry::plain(Arc::new(MemoryDriver::new(
                *name,
                MemoryConfig::default(),
            ))));
        }
        router
    }

    #[test]
    fn routes_by_dialect_when_one_engine_serves_it() {
        let r = router(&["cache"]);
        let (dialect, engine) = r.route("REDIS", None).unwrap();
        assert_eq!(dialect, Dialect::Redis);
        assert_eq!(engine.name(), "cache");
    }

    #[test]
    fn the_only_engine_of_a_dialect_follows_inserts() {
        assert!(Dialect::ALL.iter().enumerate().all(|(i, d)| d.index() == i));
        let mut r = router(&["cache"]);
        let next = Arc::new(EngineEntry::plain(Arc::new(MemoryDriver::new(
            "cache",
            MemoryConfig::default(),
        ))));
        r.insert(Arc::clone(&next));
        assert!(Arc::ptr_eq(r.route("redis", None).unwrap().1, &next));
        r.insert(EngineEntry::plain(Arc::new(MemoryDriver::new(
            "other",
            MemoryConfig::default(),
        ))));
        assert!(matches!(
            r.route("ts", None).unwrap_err(),
            Error::AmbiguousTarget { .. }
        ));
    }

    #[test]
    fn explains_every_routing_failure() {
        let r = router(&["a", "b"]);
        let err = r.route("redis", None).unwrap_err();
        assert!(matches!(err, Error::AmbiguousTarget { .. }));
        assert_eq!(
            err.to_string(),
            "several engines serve the redis dialect: set target to one of a, b"
        );
        let err = r.route("mongo", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown dialect \"mongo\": configured dialects are redis, ts"
        );
        let err = r.route("sql", None).unwrap_err();
        assert!(
            matches!(err, Error::UnknownDialect { .. }),
            "a known dialect nobody serves"
        );
        let err = r.route("redis", Some("c")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown target \"c\": configured engines are a, b"
        );
        let err = r.route("sql", Some("a")).unwrap_err();
        assert!(matches!(err, Error::DialectNotServed { .. }), "{err}");
        assert!(matches!(
            r.route("", None).unwrap_err(),
            Error::MissingDialect { .. }
        ));
        assert_eq!(r.route("redis", Some("b")).unwrap().1.name(), "b");
    }
}
