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
//!
//! Two costs are kept off the common paths:
//! - a call that finds its statement cached does not count the cache (its
//!   size is a walk over every entry): only a prepare that went to the
//!   server does;
//! - a call runs a text it has not seen lately ([`seen_lately`]) on a
//!   statement of its own, closed after it, instead of caching it: a text
//!   with its values written in is seldom seen twice, and caching each
//!   one only to empty the cache every [`MAX_CACHED`] calls cost the
//!   `pgbench -S -M simple` path a tenth of its CPU. A text seen again is
//!   cached from then on.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU64, Ordering};

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
        // A statement found in the cache is ready at the first poll; one
        // that is not waits for the server.
        let mut prepare = std::pin::pin!(self.prepare_cached(text));
        let mut missed = None;
        let prepared = std::future::poll_fn(|cx| {
            let poll = prepare.as_mut().poll(cx);
            missed.get_or_insert(poll.is_pending());
            poll
        })
        .await;
        match prepared {
            Ok(prepared) => {
                if missed == Some(true) && cache.size() > MAX_CACHED {
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

    /// [`prepare_bounded`](Cached::prepare_bounded) for a text seen lately;
    /// any other is prepared for this call alone (closed on the server
    /// when the statement is dropped).
    async fn prepare_for_call(
        &self,
        text: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        if seen_lately(text) {
            self.prepare_bounded(text).await
        } else {
            self.prepare(text).await
        }
    }
}

/// How many texts [`seen_lately`] remembers, at most (8 bytes each): a
/// text comes back "lately" when fewer than about this many other texts
/// came between. An application's statements come back far sooner;
/// `pgbench -S` (100,000 texts at scale 1) never does.
const SEEN_SLOTS: usize = 1 << 12;

/// The hashes of texts seen lately, each in the slot its hash picks: a
/// text whose slot another took since is taken for unseen (and prepared
/// once more for its call), and a text taken for seen by a collision is
/// cached as any other; neither changes what a call returns.
static SEEN: [AtomicU64; SEEN_SLOTS] = [const { AtomicU64::new(0) }; SEEN_SLOTS];

/// Whether `text` was seen since its slot was last taken; notes it seen.
fn seen_lately(text: &str) -> bool {
    // Fixed keys: the same text picks the same slot in every call.
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(text) | 1;
    let slot = &SEEN[(hash as usize) % SEEN_SLOTS];
    slot.load(Ordering::Relaxed) == hash || slot.swap(hash, Ordering::Relaxed) == hash
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
