//! Execute and ExecuteStream over gRPC against the embedded engines.
#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use omnigate_proto::v1 as pb;
use omnigate_tests::{TestGateway, exec, i, request, s, scalar, v};
use pb::value::Kind;

#[tokio::test]
async fn redis_statements_round_trip_through_grpc() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    let set = exec(
        c,
        request(
            "redis",
            "SET $1 $2",
            vec![s("user:1"), v(Kind::Bytes(b"\x00\xffraw".to_vec()))],
        ),
    )
    .await;
    assert_eq!(scalar(&set), Some(Kind::String("OK".into())));
    assert_eq!(set.engine, "cache");
    assert_eq!(set.columns[0].name, "reply");
    let got = exec(c, request("redis", "GET user:1", vec![])).await;
    assert_eq!(
        scalar(&got),
        Some(Kind::Bytes(b"\x00\xffraw".to_vec())),
        "binary values come back as bytes"
    );
    exec(c, request("redis", "RPUSH l a b c", vec![])).await;
    let list = exec(c, request("redis", "LRANGE l 0 -1", vec![])).await;
    let Some(Kind::List(items)) = scalar(&list) else {
        panic!("a list reply")
    };
    assert_eq!(items.values, vec![s("a"), s("b"), s("c")]);
    let missing = exec(c, request("redis", "GET nope", vec![])).await;
    assert!(
        matches!(scalar(&missing), Some(Kind::Null(_))),
        "nil is null"
    );
}

#[tokio::test]
async fn sql_statements_take_typed_params_and_return_typed_rows() {
    let mut gw = TestGateway::start().await;
    let c = &mut gw.client;
    exec(c, request("sql", "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, score REAL, photo BLOB, active BOOLEAN)", vec![])).await;
    let inserted = exec(
        c,
        request(
            "sql",
            "INSERT INTO people VALUES ($1, $2, $3, $4, $5)",
            vec![
                i(1),
                s("Ada"),
                v(Kind::Float(9.5)),
                v(Kind::Bytes(vec![1, 2, 3])),
                v(Kind::Bool(true)),
            ],
        ),
    )
    .await;
    assert_eq!(inserted.rows_affected, 1);
    assert!(inserted.columns.is_empty());
    let row = exec(
        c,
        request(
            "sql",
            "SELECT id, name, score, photo, active FROM people WHERE id = $1",
            vec![i(1)],
        ),
    )
    .await;
    let names: Vec<&str> = row.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "name", "score", "photo", "active"]);
    assert_eq!(row.columns[2].type_name, "REAL");
    assert_eq!(
        row.rows[0].values,
        vec![
            i(1),
            s("Ada"),
            v(Kind::Float(9.5)),
            v(Kind::Bytes(vec![1, 2, 3])),
            v(Kind::Bool(true))
        ]
    );
    let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let echoed = exec(
        c,
        request("sql", "SELECT $1", vec![v(Kind::Uuid(uuid.into()))]),
    )
    .await;
    assert_eq!(
        scalar(&echoed),
        Some(Kind::String(uuid.into())),
        "SQLite stores a uuid as text"
    );
    let null = exec(
        c,
        request("sql", "SELECT $1 IS NULL", vec![pb::Value { kind: None }]),
    )
    .await;
    assert_eq!(
        scalar(&null),
        Some(Kind::Int(1)),
        "a value without kind is NULL"
    );
}

#[tokio::test]
async fn execute_stream_sends_columns_first_then_batches_then_rows_affected() {
    let mut gw = TestGateway::start().await;
    let mut req = request(
        "sql",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) SELECT i FROM n",
        vec![],
    );
    req.options = Some(pb::ExecuteOptions {
        batch_size: 1000,
        ..Default::default()
    });
    let mut stream = gw.client.execute_stream(req).await.unwrap().into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.next().await {
        messages.push(message.unwrap());
    }
    let sizes: Vec<usize> = messages.iter().map(|m| m.rows.len()).collect();
    assert_eq!(sizes, [1000, 1000, 500, 0]);
    assert_eq!(messages[0].columns.len(), 1);
    assert!(
        messages[1..].iter().all(|m| m.columns.is_empty()),
        "columns only in the first message"
    );
    assert_eq!(messages[2].rows.last().unwrap().values, vec![i(2500)]);

    let write = request("sql", "CREATE TABLE s (v INTEGER)", vec![]);
    let messages: Vec<_> = gw
        .client
        .execute_stream(write)
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(messages.len(), 1);
    let insert = request("sql", "INSERT INTO s VALUES (1), (2), (3)", vec![]);
    let messages: Vec<_> = gw
        .client
        .execute_stream(insert)
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(messages.last().unwrap().as_ref().unwrap().rows_affected, 3);
}

#[tokio::test]
async fn a_cancelled_stream_frees_its_connection() {
    let mut config = omnigate::Config::default();
    if let Some(omnigate::config::DriverConfig::Sqlite(sqlite)) =
        config.engines.get_mut("main").map(|e| &mut e.driver)
    {
        sqlite.pool.max_connections = 1;
        sqlite.pool.acquire_timeout = std::time::Duration::from_secs(2);
    }
    let mut gw = TestGateway::with_config(config).await;
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n";
    for _ in 0..3 {
        let mut req = request("sql", endless, vec![]);
        req.options = Some(pb::ExecuteOptions {
            batch_size: 100,
            ..Default::default()
        });
        let mut stream = gw.client.execute_stream(req).await.unwrap().into_inner();
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.rows.len(), 100);
        drop(stream);
        // With one connection, this only succeeds once the endless query stopped.
        let after = exec(&mut gw.client, request("sql", "SELECT 42", vec![])).await;
        assert_eq!(scalar(&after), Some(Kind::Int(42)));
    }
    let main = omnigate_tests::engine(&mut gw.client, "main").await;
    assert_eq!(
        main.pool.unwrap().created,
        1,
        "one connection served every call"
    );
}

#[tokio::test]
async fn the_library_and_grpc_share_one_gateway() {
    let mut gw = TestGateway::start().await;
    let direct = gw
        .gateway
        .execute(omnigate::Request::new("redis", "SET shared yes"))
        .await
        .unwrap();
    assert_eq!(&*direct.engine, "cache");
    let got = exec(&mut gw.client, request("redis", "GET shared", vec![])).await;
    assert_eq!(scalar(&got), Some(Kind::String("yes".into())));
}
