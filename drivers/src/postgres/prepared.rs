//! Statements prepared on a pooled connection, cached per connection and
//! bounded.
//!
//! deadpool's statement cache keeps every text it has prepared for the
//! life of the connection, and PostgreSQL keeps each as a prepared
//! statement in the server process. Statements sent with their values
//! written into the text (`SELECT .. WHERE id = 42`, as pgbench -S and
//! many ORMs' "simple" modes send them) are each a new text: without a
//! bound, every pooled connection and its server process would grow
//! without end. A connection that holds [`MAX_CACHED`] lets them all go
//! before it prepares another (each is closed on the server as it is
//! dropped), so hot statements are prepared again at most once per that
//! many new texts.

use deadpool_postgres::{GenericClient, Object, StatementCache, Transaction};

/// Statements a connection keeps prepared at most.
pub(crate) const MAX_CACHED: usize = 256;

/// A client whose prepared statements are cached per connection.
pub(crate) trait Cached: GenericClient {
    /// Its connection's cache.
    fn cache(&self) -> &StatementCache;

    /// Prepares `text` through the cache, first emptying a full cache.
    async fn prepare_bounded(
        &self,
        text: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        let cache = self.cache();
        if cache.size() >= MAX_CACHED {
            cache.clear();
        }
        self.prepare_cached(text).await
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
