//! The `sql` dialect's conformance suite, where SQLite and PostgreSQL agree.
//! It creates and drops its own tables (`conformance_*`).

use futures::TryStreamExt;

use super::{error, value};
use crate::{DescribeOptions, Dialect, Error, ExecuteOptions, Statement, StorageDriver, Value};

async fn run(d: &dyn StorageDriver, text: &str, params: &[Value]) -> crate::ResultSet {
    super::run(d, Dialect::Sql, text, params)
        .await
        .unwrap_or_else(|e| panic!("`{text}` failed on {}: {e}", d.descriptor().name))
}

/// Runs every section in order.
pub async fn run_all(d: &dyn StorageDriver) {
    crud(d).await;
    super::statement_checks(d, Dialect::Sql, "SELECT 1").await;
    errors(d).await;
    limits(d).await;
    streaming(d).await;
    describe(d).await;
}

/// Create, insert with parameters, select, update, delete.
pub async fn crud(d: &dyn StorageDriver) {
    run(d, "DROP TABLE IF EXISTS conformance_items", &[]).await;
    let created = run(
        d,
        "CREATE TABLE conformance_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER, price DOUBLE PRECISION)",
        &[],
    )
    .await;
    assert!(created.rows.is_empty());
    let inserted = run(
        d,
        "INSERT INTO conformance_items (id, name, qty, price) VALUES ($1, $2, $3, $4), ($5, $6, NULL, $7)",
        &[1.into(), "apple".into(), 3.into(), 0.5.into(), 2.into(), "pear's \"best\"".into(), 1.25.into()],
    )
    .await;
    assert_eq!(inserted.rows_affected, 2);

    let result = run(
        d,
        "SELECT id, name, qty, price FROM conformance_items ORDER BY id",
        &[],
    )
    .await;
    let names: Vec<&str> = result.columns.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["id", "name", "qty", "price"]);
    assert_eq!(
        result.rows,
        vec![
            vec![
                Value::Int(1),
                "apple".into(),
                Value::Int(3),
                Value::Float(0.5)
            ],
            vec![
                Value::Int(2),
                "pear's \"best\"".into(),
                Value::Null,
                Value::Float(1.25)
            ],
        ]
    );
    let one = value(
        d,
        Dialect::Sql,
        "SELECT name FROM conformance_items WHERE id = $1",
        &[2.into()],
    )
    .await;
    assert_eq!(one, Value::from("pear's \"best\""));
    let injection = "x' OR '1'='1";
    let none = run(
        d,
        "SELECT id FROM conformance_items WHERE name = $1",
        &[injection.into()],
    )
    .await;
    assert!(none.rows.is_empty(), "a parameter is a value, never SQL");

    let updated = run(
        d,
        "UPDATE conformance_items SET qty = COALESCE(qty, 0) + $1",
        &[10.into()],
    )
    .await;
    assert_eq!(updated.rows_affected, 2);
    let total = value(
        d,
        Dialect::Sql,
        "SELECT SUM(qty) FROM conformance_items",
        &[],
    )
    .await;
    assert_eq!(total, Value::Int(23));
    let deleted = run(
        d,
        "DELETE FROM conformance_items WHERE id = $1",
        &[1.into()],
    )
    .await;
    assert_eq!(deleted.rows_affected, 1);
    let nulled = run(
        d,
        "UPDATE conformance_items SET qty = $1 WHERE id = $2",
        &[Value::Null, 2.into()],
    )
    .await;
    assert_eq!(nulled.rows_affected, 1);
    let qty = value(
        d,
        Dialect::Sql,
        "SELECT qty FROM conformance_items WHERE id = $1",
        &[2.into()],
    )
    .await;
    assert_eq!(qty, Value::Null, "a null parameter writes NULL");
}

/// Constraint, missing-table, syntax and parameter errors by meaning.
pub async fn errors(d: &dyn StorageDriver) {
    let dup = error(
        d,
        Dialect::Sql,
        "INSERT INTO conformance_items (id, name) VALUES ($1, $2)",
        &[3.into(), "pear's \"best\"".into()],
    )
    .await;
    assert!(
        matches!(dup, Error::ConstraintViolation(_)),
        "unique: {dup}"
    );
    assert!(
        !dup.to_string().contains("best"),
        "errors never carry parameter values: {dup}"
    );
    let not_null = error(
        d,
        Dialect::Sql,
        "INSERT INTO conformance_items (id, name) VALUES (9, NULL)",
        &[],
    )
    .await;
    assert!(
        matches!(not_null, Error::ConstraintViolation(_)),
        "not null: {not_null}"
    );
    let missing = error(d, Dialect::Sql, "SELECT * FROM conformance_nope", &[]).await;
    assert!(
        matches!(missing, Error::NotFound(_)),
        "missing table: {missing}"
    );
    let syntax = error(d, Dialect::Sql, "SELEC 1", &[]).await;
    assert!(
        matches!(syntax, Error::InvalidStatement(_)),
        "syntax: {syntax}"
    );
    assert!(
        syntax.engine_code().is_some(),
        "the engine's code is kept: {syntax:?}"
    );
    let too_few = error(d, Dialect::Sql, "SELECT $1, $2", &[1.into()]).await;
    assert!(
        matches!(too_few, Error::InvalidParameter { index: 2, .. }),
        "missing param: {too_few}"
    );
    let unused = error(d, Dialect::Sql, "SELECT $1", &[1.into(), 2.into()]).await;
    assert!(
        matches!(unused, Error::InvalidParameter { index: 2, .. }),
        "unused param: {unused}"
    );
    let ro = d
        .execute(
            Dialect::Sql,
            &Statement::new("DELETE FROM conformance_items"),
            &ExecuteOptions {
                read_only: true,
                ..ExecuteOptions::default()
            },
        )
        .await
        .expect_err("a write in a read_only request fails");
    assert!(
        matches!(ro, Error::ReadOnly(_) | Error::PermissionDenied(_)),
        "read_only: {ro}"
    );
    let count = value(
        d,
        Dialect::Sql,
        "SELECT COUNT(*) FROM conformance_items",
        &[],
    )
    .await;
    assert_eq!(count, Value::Int(1), "failed statements change nothing");
}

const SERIES: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) SELECT i FROM n";

/// max_rows is enforced.
pub async fn limits(d: &dyn StorageDriver) {
    let options = ExecuteOptions {
        max_rows: Some(100),
        ..ExecuteOptions::default()
    };
    let err = d
        .execute(Dialect::Sql, &Statement::new(SERIES), &options)
        .await
        .expect_err("more than max_rows");
    assert!(matches!(err, Error::TooManyRows { limit: 100 }), "{err}");
    let exact = ExecuteOptions {
        max_rows: Some(2500),
        ..ExecuteOptions::default()
    };
    let all = d
        .execute(Dialect::Sql, &Statement::new(SERIES), &exact)
        .await
        .expect("exactly max_rows");
    assert_eq!(all.rows.len(), 2500);
}

/// `SERIES` streamed in batches of `batch_size`.
async fn series_stream(d: &dyn StorageDriver, batch_size: usize) -> crate::RowStream {
    let options = ExecuteOptions {
        batch_size: Some(batch_size),
        ..ExecuteOptions::default()
    };
    d.execute_stream(Dialect::Sql, Statement::new(SERIES), options)
        .await
        .expect("stream starts")
}

/// Streams arrive in batches of the requested size, in order.
pub async fn streaming(d: &dyn StorageDriver) {
    let stream = series_stream(d, 1000).await;
    assert_eq!(stream.columns.len(), 1);
    let batches: Vec<crate::Rows> = stream
        .batches
        .try_collect()
        .await
        .expect("stream completes");
    let sizes: Vec<usize> = batches.iter().map(crate::Rows::len).collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    let last = batches.last().and_then(|b| b.last());
    assert_eq!(last, Some(&[Value::Int(2500)][..]));

    // A result that fills its last batch exactly ends there.
    let sizes: Vec<usize> = series_stream(d, 500)
        .await
        .batches
        .map_ok(|batch| batch.len())
        .try_collect()
        .await
        .expect("stream completes");
    assert_eq!(sizes, [500; 5]);

    // Dropping a stream early frees its connection for the next call.
    for _ in 0..8 {
        let first = series_stream(d, 10)
            .await
            .batches
            .try_next()
            .await
            .expect("first batch")
            .expect("a batch");
        assert_eq!(first.len(), 10);
    }
    assert_eq!(value(d, Dialect::Sql, "SELECT 1", &[]).await, Value::Int(1));
}

/// Describe lists tables with columns and primary keys.
pub async fn describe(d: &dyn StorageDriver) {
    let objects = d
        .describe(&DescribeOptions {
            name: Some("conformance_items".into()),
        })
        .await
        .expect("describe");
    assert_eq!(objects.len(), 1, "{objects:?}");
    let table = &objects[0];
    assert_eq!(table.kind, "table");
    assert_eq!(table.primary_key, ["id"]);
    let cols: Vec<(&str, bool)> = table
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.nullable))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", false),
            ("name", false),
            ("qty", true),
            ("price", true)
        ]
    );
    run(d, "DROP TABLE conformance_items", &[]).await;
    let gone = d
        .describe(&DescribeOptions {
            name: Some("conformance_items".into()),
        })
        .await
        .expect("describe");
    assert!(gone.is_empty());
}
