//! Omnigate in-process: the embedded engines, no network hop, and one
//! transaction over two of them.
//!
//! Your Cargo.toml (the library crate is `gateway/` in this repository):
//!
//!     [dependencies]
//!     omnigate = { path = "../omnigate/gateway" }
//!     tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//!
//! Run it from this repository: `cargo run -p omnigate --example library`.

use std::path::Path;

use omnigate::config::{Config, ProcessEnv};
use omnigate::drivers::Value;
use omnigate::{Gateway, Request, TxOptions};

/// Runs the example (gateway/tests/library_example.rs runs it too).
#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // With no config: `cache` (redis, ts: in memory) and `main` (sql: SQLite).
    // With a file: `Gateway::builder().config(Config::load(path, &ProcessEnv)?)`.
    let path = Path::new("omnigate.toml");
    let mut builder = Gateway::builder();
    if path.exists() {
        builder = builder.config(Config::load(path, &ProcessEnv)?);
    }
    let gateway = builder.build().await?;

    gateway
        .execute(Request::new("redis", "SET greeting $1").param("hello"))
        .await?;
    let reply = gateway
        .execute(Request::new("redis", "GET greeting"))
        .await?;
    assert_eq!(reply.result.into_scalar(), Value::from("hello"));

    let sum = gateway
        .execute(Request::new("sql", "SELECT $1 + 1 AS answer").param(41))
        .await?;
    println!(
        "{}: {:?}",
        sum.result.columns[0].name, sum.result.rows[0][0]
    );

    // Both writes or neither: dropping `tx` uncommitted rolls it back.
    gateway
        .execute(Request::new(
            "sql",
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)",
        ))
        .await?;
    let tx = gateway.begin(TxOptions::default())?;
    tx.execute(
        Request::new("sql", "INSERT INTO people VALUES ($1, $2)")
            .param(1)
            .param("Ada"),
    )
    .await?;
    tx.execute(Request::new("redis", "SET person:1 $1").param("Ada"))
        .await?;
    let engines = tx.commit().await?;
    println!("committed on: {}", engines.join(", "));
    Ok(())
}
