//! Statement metadata kept across connections (moka): the parameter types
//! of each statement text, so parameters are checked and encoded before a
//! pooled connection is taken.

use std::sync::Arc;

use moka::sync::Cache;
use tokio_postgres::types::Type;

use super::encode::Encoded;
use crate::{Result, Statement};

/// Parameters encoded ahead of the connection, with the types they were
/// encoded for.
pub(crate) type Early = (Arc<[Type]>, Vec<Encoded>);

/// Parameter types by statement text.
#[derive(Debug, Clone)]
pub(crate) struct StatementTypes(Cache<String, Arc<[Type]>>);

impl StatementTypes {
    pub(crate) fn new(capacity: u64) -> Self {
        StatementTypes(Cache::new(capacity))
    }

    /// Encodes the parameters for the statement's known types; `None` when
    /// the statement has not been prepared yet, or has no parameters to
    /// encode (nothing to check early, and a text with its values written
    /// in is seldom seen twice: no lookup).
    pub(crate) fn encode_early(&self, statement: &Statement) -> Result<Option<Early>> {
        if statement.params.is_empty() {
            return Ok(None);
        }
        let Some(types) = self.0.get(&statement.text) else {
            return Ok(None);
        };
        let encoded = super::run::encode_params(&types, &statement.params)?;
        Ok(Some((types, encoded)))
    }

    /// Remembers the parameter types of a prepared statement, unless they
    /// are known already: a statement in a transaction (whose parameters
    /// are encoded on its connection, not ahead of it) comes here at every
    /// call, and an insert costs the cache far more than a read. A
    /// statement without parameters is not kept (see
    /// [`encode_early`](StatementTypes::encode_early)).
    pub(crate) fn remember(&self, text: &str, types: &[Type]) {
        if types.is_empty() || self.0.get(text).is_some_and(|known| *known == *types) {
            return;
        }
        self.0.insert(text.to_owned(), types.into());
    }

    /// Forgets `text`'s types (they may have changed).
    pub(crate) fn forget(&self, text: &str) {
        self.0.invalidate(text);
    }

    /// Forgets everything (after a schema change).
    pub(crate) fn clear(&self) {
        self.0.invalidate_all();
    }

    /// How many statements are known.
    pub(crate) fn len(&self) -> u64 {
        self.0.run_pending_tasks();
        self.0.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn known_types_stay_and_changed_types_replace_them() {
        let cache = StatementTypes::new(16);
        let statement = Statement::new("SELECT $1").bind(Value::Int(7));
        assert!(cache.encode_early(&statement).unwrap().is_none());
        cache.remember("SELECT $1", &[Type::INT8]);
        cache.remember("SELECT $1", &[Type::INT8]);
        let (types, _) = cache.encode_early(&statement).unwrap().unwrap();
        assert_eq!(&*types, &[Type::INT8]);
        cache.remember("SELECT $1", &[Type::INT4]);
        let (types, _) = cache.encode_early(&statement).unwrap().unwrap();
        assert_eq!(
            &*types,
            &[Type::INT4],
            "a statement prepared anew with other types"
        );
        assert_eq!(cache.len(), 1);
    }
}
