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
//! - a call that does not find its statement in the cache keeps it there
//!   only when its text was seen lately ([`seen_lately`]); any other
//!   serves its call alone, closed after it. A text with its values
//!   written in is seldom seen twice, and caching each one only to empty
//!   the cache every [`MAX_CACHED`] calls cost the `pgbench -S -M simple`
//!   path a tenth of its CPU. A text seen again is cached from then on.

use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::{GenericClient, Object, StatementCache, Transaction};
use tokio_postgres::types::{Format, ToSql, Type};

use super::encode::Encoded;
use crate::Text;

/// An unnamed statement's result: its columns, then its rows.
pub(crate) type Unnamed = (Vec<tokio_postgres::Column>, tokio_postgres::RowStream);

/// Statements a connection keeps prepared at most.
pub(crate) const MAX_CACHED: usize = 512;

/// A client whose prepared statements are cached per connection.
pub(crate) trait Cached: GenericClient {
    /// Its connection's cache.
    fn cache(&self) -> &StatementCache;

    /// Runs `text` (no parameters) as the unnamed statement in one round
    /// trip, its cells in the text format; its columns and rows.
    async fn run_unnamed(&self, text: &str) -> Result<Unnamed, tokio_postgres::Error>;

    /// Binds `params` to `prepared` and runs it, its cells in `results`'
    /// format.
    async fn query_formatted(
        &self,
        prepared: &tokio_postgres::Statement,
        params: &[Encoded],
        results: Format,
    ) -> Result<tokio_postgres::RowStream, tokio_postgres::Error>;

    /// Prepares `text` through the cache, and keeps it there (see the
    /// module docs): for a statement described to be run next.
    async fn prepare_bounded(
        &self,
        text: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        self.prepare_keeping(text, Keep::Always).await
    }

    /// Prepares `text` for a call: a statement in the cache is used as
    /// it is; one that is not is kept there only when its text was seen
    /// lately, else it serves this call alone (closed on the server when
    /// the call drops it).
    async fn prepare_for_call(
        &self,
        text: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        self.prepare_keeping(text, Keep::IfSeenLately).await
    }

    /// Prepares `text` through the cache; on a miss, keeps it or not by
    /// `keep`, and empties a cache grown past [`MAX_CACHED`].
    async fn prepare_keeping(
        &self,
        text: &str,
        keep: Keep,
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
            Ok(prepared) if missed == Some(true) => {
                // Noted seen either way: a described text is run next.
                let seen = seen_lately(text);
                if keep == Keep::Always || seen {
                    if cache.size() > MAX_CACHED {
                        cache.clear();
                    }
                } else {
                    // This call's alone: closed once the call drops it.
                    cache.remove(text, &[]);
                }
                Ok(prepared)
            }
            Ok(prepared) => Ok(prepared),
            Err(e) => {
                cache.remove(text, &[]);
                Err(e)
            }
        }
    }
}

/// Whether a statement prepared on a miss stays in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Always (a statement described, to be run next).
    Always,
    /// When its text was seen lately ([`seen_lately`]).
    IfSeenLately,
}

/// How many texts [`seen_lately`] remembers, at most (8 bytes each): a
/// text comes back "lately" when fewer than about this many other texts
/// came between. An application's statements come back far sooner;
/// `pgbench -S` (100,000 texts at scale 1) never does.
const SEEN_SLOTS: usize = 1 << 12;

/// The hashes of texts seen lately, each in the slot its hash picks. Two
/// texts may take turns in one slot; then neither is kept on a miss, and
/// each is prepared for its call, as any text not seen lately is. What a
/// call returns never depends on it.
static SEEN: [AtomicU64; SEEN_SLOTS] = [const { AtomicU64::new(0) }; SEEN_SLOTS];

/// This process's hash keys: texts that share a slot in one process
/// seldom share one in the next.
static KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// Whether `text` was seen since its slot was last taken; notes it seen.
fn seen_lately(text: &str) -> bool {
    let hash = KEYS.hash_one(text);
    // The slot by the hash's high bits; a zero hash (an empty slot's
    // mark) stored as one.
    let slot = &SEEN[(hash >> (u64::BITS - SEEN_SLOTS.trailing_zeros())) as usize];
    let mark = hash.max(1);
    slot.load(Ordering::Relaxed) == mark || slot.swap(mark, Ordering::Relaxed) == mark
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

/// The type name of a column of an unnamed statement's result: as
/// [`type_name`] names it, or empty for a type that is not built in (its
/// placeholder has no schema: see `vendor/README.md`).
pub(crate) fn unnamed_type_name(ty: &Type) -> Text {
    if ty.schema().is_empty() {
        Text::default()
    } else {
        type_name(ty)
    }
}

/// No parameters, for [`Cached::run_unnamed`].
const NO_PARAMS: [(&(dyn ToSql + Sync), Type); 0] = [];

/// [`Cached`] for a pooled connection and for a transaction on one: the
/// same calls on each's own tokio-postgres client.
macro_rules! cached {
    ($($client:ty),*) => {$(
        impl Cached for $client {
            fn cache(&self) -> &StatementCache {
                &self.statement_cache
            }

            async fn run_unnamed(&self, text: &str) -> Result<Unnamed, tokio_postgres::Error> {
                self.query_unnamed(text, NO_PARAMS, Format::Text).await
            }

            async fn query_formatted(
                &self,
                prepared: &tokio_postgres::Statement,
                params: &[Encoded],
                results: Format,
            ) -> Result<tokio_postgres::RowStream, tokio_postgres::Error> {
                self.query_raw_formatted(prepared, params.iter(), results)
                    .await
            }
        }
    )*};
}

cached!(Object, Transaction<'_>);
