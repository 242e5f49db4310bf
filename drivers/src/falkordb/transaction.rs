//! Transactions on FalkorDB, buffered: a write is checked when sent — its
//! parameters are all given and inlined, FalkorDB parses and plans it
//! (`GRAPH.EXPLAIN`), the transaction is not read-only, it is not an index
//! change, it goes to the transaction's one graph — and kept; a read runs
//! at once and sees committed state. Commit runs the writes as one query
//! (see `compose.rs`), which FalkorDB applies all or nothing, with the
//! transaction's marker node when a cross-engine commit prepared it.

use async_trait::async_trait;
use bytes::Bytes;

use super::compose::{self, MARKER_LABEL};
use super::{FalkorDriver, KIND};
use crate::{
    BeginOptions, Dialect, DriverTransaction, Error, ExecuteOptions, Participation, Redo, Result,
    ResultSet, Statement, StorageDriver,
};

/// A FalkorDB transaction (see the module docs).
#[derive(Debug)]
pub(super) struct FalkorTransaction {
    driver: FalkorDriver,
    options: BeginOptions,
    /// The graph the writes go to (the first write's).
    graph: Option<String>,
    /// Checked writes, chainable, in the order sent.
    queued: Vec<Vec<u8>>,
    /// The marker applied with the writes, once prepared.
    marker: Option<String>,
}

impl FalkorTransaction {
    pub(super) fn new(driver: FalkorDriver, options: BeginOptions) -> Self {
        FalkorTransaction {
            driver,
            options,
            graph: None,
            queued: Vec::new(),
            marker: None,
        }
    }
}

#[async_trait]
impl DriverTransaction for FalkorTransaction {
    fn participation(&self) -> Participation {
        Participation::Buffered
    }

    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.driver.descriptor.accept(dialect, statement)?;
        let options = self.options.apply(options);
        if !crate::cypher::writes(KIND, &statement.text)? {
            // A read sees committed state.
            return self.driver.execute(dialect, statement, &options).await;
        }
        if crate::cypher::is_schema_change(&statement.text) {
            return Err(Error::precondition(
                KIND,
                "index and constraint changes cannot run inside a transaction on FalkorDB; \
                 send them outside one",
            ));
        }
        if options.read_only {
            return Err(Error::read_only(
                KIND,
                "the statement writes, but the transaction is read_only",
            ));
        }
        let graph = self.driver.graph(options.database.as_deref())?.to_owned();
        if let Some(first) = &self.graph
            && *first != graph
        {
            return Err(Error::precondition(
                KIND,
                format!(
                    "a transaction writes to one graph on FalkorDB: it writes to {first}, this \
                 statement to {graph}"
                ),
            ));
        }
        let write = compose::chainable(&statement.text, &statement.named)?;
        self.driver.explain(&graph, &write).await?;
        self.graph = Some(graph);
        self.queued.push(write);
        Ok(ResultSet::default())
    }

    /// The vote: each write was planned when sent; now the whole chained
    /// query, marker included, is planned too (`GRAPH.EXPLAIN`), so writes
    /// that cannot be chained (one whose own clauses clash with the links)
    /// roll the transaction back before it is decided, not after. From now
    /// on the commit applies the marker with the writes.
    async fn prepare(&mut self, global_id: &str) -> Result<()> {
        if let Some(graph) = &self.graph {
            let writes: Vec<&[u8]> = self.queued.iter().map(Vec::as_slice).collect();
            let chained = compose::chain(&writes, Some(global_id));
            self.driver.explain(graph, &chained).await.map_err(|e| {
                Error::precondition(
                    KIND,
                    format!("the transaction's graph writes cannot run as one query: {e}"),
                )
            })?;
        }
        self.marker = Some(global_id.to_owned());
        Ok(())
    }

    /// Each write as `[graph, query]`, its parameters inlined.
    fn redo(&self) -> Vec<Redo> {
        let graph = Bytes::from(self.graph.clone().unwrap_or_default());
        self.queued
            .iter()
            .map(|w| vec![graph.clone(), Bytes::from(w.clone())])
            .collect()
    }

    fn has_redo(&self) -> bool {
        !self.queued.is_empty()
    }

    fn redo_head(&self) -> Option<Redo> {
        let graph = Bytes::from(self.graph.clone().unwrap_or_default());
        let first = self.queued.first()?;
        Some(vec![graph, Bytes::from(first.clone())])
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let Some(graph) = &self.graph else {
            return Ok(()); // nothing was written
        };
        let writes: Vec<&[u8]> = self.queued.iter().map(Vec::as_slice).collect();
        self.driver
            .apply(graph, &writes, self.marker.as_deref())
            .await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(()) // nothing was applied
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}

impl FalkorDriver {
    /// Has FalkorDB parse and plan `query` without running it. FalkorDB
    /// plans only on a graph that exists: a graph that does not yet is
    /// made (empty) first, as the write would make it.
    async fn explain(&self, graph: &str, query: &[u8]) -> Result<()> {
        let explain = || async {
            let mut conn = self.pool.connection().await?;
            ::redis::cmd("GRAPH.EXPLAIN")
                .arg(graph)
                .arg(query)
                .query_async::<::redis::Value>(&mut conn.conn)
                .await
                .map(drop)
                .map_err(super::error::from_falkor)
        };
        match explain().await {
            Err(Error::NotFound(_)) => {
                self.query(graph, b"RETURN 1", false, None).await?;
                explain().await
            }
            other => other,
        }
    }

    /// Runs the chained writes and the marker as one query. FalkorDB
    /// applies a query all or nothing: a write that fails when applied
    /// (a runtime error) leaves none of them applied.
    pub(super) async fn apply(
        &self,
        graph: &str,
        writes: &[&[u8]],
        marker: Option<&str>,
    ) -> Result<()> {
        if marker.is_some() {
            self.index_markers(graph).await;
        }
        let query = compose::chain(writes, marker);
        match self.query(graph, &query, false, None).await {
            Ok(_) => Ok(()),
            Err(e @ (Error::Unavailable(_) | Error::Timeout { .. })) => Err(e),
            Err(e) => Err(Error::precondition(
                KIND,
                format!(
                    "the transaction's graph writes failed when applied, and FalkorDB applied none \
                 of them: {e}"
                ),
            )),
        }
    }

    /// Applies a transaction's writes again with its marker, unless its
    /// marker node is there: the chained query checks it (see `compose`).
    pub(super) async fn replay_redo(&self, tx: &str, redo: &[Redo]) -> Result<()> {
        let Some(graph) = redo.first().and_then(|r| r.first()) else {
            return Ok(());
        };
        let graph = String::from_utf8_lossy(graph).into_owned();
        let writes: Vec<&[u8]> = redo
            .iter()
            .filter_map(|r| r.get(1).map(Bytes::as_ref))
            .collect();
        self.apply(&graph, &writes, Some(tx)).await
    }

    /// Marks `tx`'s marker node in `graph` finished, and deletes those
    /// finished [`MARKER_GRACE`](crate::MARKER_GRACE) ago.
    pub(super) async fn forget_marker_in(&self, graph: &str, tx: &str) -> Result<()> {
        let mut id = Vec::new();
        // The id is the gateway's own: a literal cannot fail for it.
        let _ = super::params::literal(&crate::Value::String(tx.into()), &mut id);
        let mut mark = format!("MATCH (m:{MARKER_LABEL} {{tx_id: ").into_bytes();
        mark.extend_from_slice(&id);
        mark.extend_from_slice(b"}) SET m.finished = timestamp()");
        self.query(graph, &mark, false, None).await?;
        let sweep = format!(
            "MATCH (m:{MARKER_LABEL}) WHERE m.finished < timestamp() - {} DELETE m",
            crate::MARKER_GRACE.as_millis()
        );
        self.query(graph, sweep.as_bytes(), false, None)
            .await
            .map(drop)
    }

    /// Indexes the marker nodes' ids in `graph` (once per graph and
    /// process), so that a commit's check of its marker is a lookup.
    async fn index_markers(&self, graph: &str) {
        if self.lock_indexed().contains(graph) {
            return;
        }
        let index = format!("CREATE INDEX FOR (m:{MARKER_LABEL}) ON (m.tx_id)");
        match self.query(graph, index.as_bytes(), false, None).await {
            // "already indexed" is as good.
            Ok(_) | Err(Error::InvalidStatement(_) | Error::Precondition(_)) => {
                self.lock_indexed().insert(graph.to_owned());
            }
            Err(e) => tracing::debug!(graph = %graph, error = %e, "indexing transaction markers"),
        }
    }

    fn lock_indexed(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.markers_indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
