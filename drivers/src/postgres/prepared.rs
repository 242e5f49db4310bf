//! Statements prepared on a pooled connection, cached per connection and
//! bounded.
//!
//! deadpool's statement cache keeps every text it has prepared for the
//! life of the connection (and, for a text whose prepare failed, an empty
//! entry holding the text), and PostgreSQL keeps each as a prepared
//! statement in the server process. Statements sent with their values
//! written into the text (`SELECT .. WHERE id = 42`, as pgbench -S and
//! many ORMs' "simple" modes send them) are each a new text: without a
//! bound, every pooled connection and its server process would grow
//! without end. So a text whose prepare fails is let go of at once, and a
//! new text that takes the cache past [`MAX_CACHED`] empties it (each
//! statement is closed on the server as its last user drops it). A
//! statement found in the cache never empties it: an application with up
//! to that many statements in use keeps them all prepared; one with more
//! prepares them again as they come back.

use deadpool_postgres::{GenericClient, Object, StatementCache, Transaction};
use tokio_postgres::types::Type;

use crate::Text;

/// Statements a connection keeps prepared at most.
pub(crate) const MAX_CACHED: usize = 512;

/// A client whose prepared statements are cached per connection.
pub(crate) trait Cached: GenericClient {
    /// Its connection's cache.
    fn cache(&self) -> &StatementCache;

    /// Prepares `text` through the cache (see the module docs).
    async fn prepare_bounded(
        &self,
        text: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        let cache = self.cache();
        match self.prepare_cached(text).await {
            Ok(prepared) => {
                if cache.size() > MAX_CACHED {
                    cache.clear();
                }
                Ok(prepared)
            }
            Err(e) => {
                cache.remove(text, &[]);
                Err(e)
            }
        }
    }
}

/// What a prepared statement takes and returns.
pub(crate) fn shape(prepared: &tokio_postgres::Statement) -> crate::StatementShape {
    crate::StatementShape {
        params: prepared
            .params()
            .iter()
            .map(|t| type_name(t).into())
            .collect(),
        columns: columns(prepared),
    }
}

/// The columns a prepared statement returns, each with its type's name.
pub(crate) fn columns(prepared: &tokio_postgres::Statement) -> Vec<crate::Column> {
    prepared
        .columns()
        .iter()
        .map(|c| crate::Column::new(c.name(), type_name(c.type_())))
        .collect()
}

/// A type's name: a built-in type's as PostgreSQL names it (`int4`,
/// `_text`), any other's with its schema (`public.mood`), so that a type of
/// the database's own is never taken for a built-in one of the same name.
pub(crate) fn type_name(ty: &Type) -> Text {
    if ty.schema() == "pg_catalog" {
        Text::from(ty.name())
    } else {
        compact_str::format_compact!("{}.{}", ty.schema(), ty.name())
    }
}

impl Cached for Object {
    fn cache(&self) -> &StatementCache {
        &self.statement_cache
    }
}

impl Cached for Transaction<'_> {
    fn cache(&self) -> &StatementCache {
        &self.statement_cache
    }
}
