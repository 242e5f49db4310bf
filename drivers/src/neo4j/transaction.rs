//! Transactions on Neo4j, live: a Bolt transaction on one connection of
//! the default database, so reads see the transaction's own writes.
//! Neo4j has no prepare step: in a transaction that spans engines it is
//! the deciding engine, and the coordinator writes its marker node inside
//! this transaction just before the commit (the "logging last resource"
//! pattern). A transaction dropped without an end is rolled back when its
//! connection is reset on return to the pool.

use async_trait::async_trait;
use neo4rs::Txn;

use super::error::from_neo4j;
use super::{KIND, add_row, query_of};
use crate::{
    BeginOptions, Dialect, DriverTransaction, EngineDescriptor, Error, ExecuteOptions,
    Participation, Result, ResultLimits, ResultSet, Statement,
};

/// A Neo4j transaction (see the module docs).
pub(super) struct Neo4jTransaction {
    descriptor: EngineDescriptor,
    options: BeginOptions,
    txn: Txn,
}

impl std::fmt::Debug for Neo4jTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jTransaction")
            .field("descriptor", &self.descriptor)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Neo4jTransaction {
    pub(super) fn new(descriptor: EngineDescriptor, options: BeginOptions, txn: Txn) -> Self {
        Neo4jTransaction {
            descriptor,
            options,
            txn,
        }
    }
}

#[async_trait]
impl DriverTransaction for Neo4jTransaction {
    fn participation(&self) -> Participation {
        Participation::Live { preparable: false }
    }

    async fn execute(
        &mut self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.accept(dialect, statement)?;
        let options = self.options.apply(options);
        if options.database.is_some() {
            return Err(Error::precondition(
                KIND,
                "a transaction on Neo4j runs on the engine's default database; send the \
                 statement without options.database",
            ));
        }
        // Neo4j's READ access mode is chosen when the transaction begins:
        // a read-only transaction refuses writes here instead.
        if options.read_only && crate::cypher::writes(KIND, &statement.text)? {
            return Err(Error::read_only(
                KIND,
                "the statement writes, but the transaction is read_only",
            ));
        }
        if crate::cypher::is_schema_change(&statement.text) {
            return Err(Error::precondition(
                KIND,
                "index and constraint changes cannot run inside a transaction with writes on \
                 Neo4j; send them outside one",
            ));
        }
        let mut stream = self
            .txn
            .execute(query_of(statement)?)
            .await
            .map_err(from_neo4j)?;
        let mut limits = ResultLimits::new(&options);
        let mut result = ResultSet::default();
        while let Some(row) = stream.next(self.txn.handle()).await.map_err(from_neo4j)? {
            add_row(&mut result, &row, &mut limits)?;
        }
        Ok(result)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.txn.commit().await.map_err(from_neo4j)
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.txn.rollback().await.map_err(from_neo4j)
    }

    fn engine(&self) -> &'static str {
        KIND
    }
}
