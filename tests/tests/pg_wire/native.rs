//! A binary-format client reads through the front end exactly the bytes
//! PostgreSQL sends it directly, for every built-in type: the cells are
//! forwarded as the engine sent them. Types of the database's own (an
//! enum) are described as text and sent as their text.

use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls};

use crate::{connect, gateway};

/// A cell as the server sent it (binary format), not decoded.
#[derive(Debug, PartialEq)]
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Every row of `sql` as its columns' types and cells' bytes.
async fn raw_rows(client: &Client, sql: &str) -> (Vec<Type>, Vec<Vec<Option<Raw>>>) {
    let rows = client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let types = rows.first().map_or_else(Vec::new, |row| {
        row.columns().iter().map(|c| c.type_().clone()).collect()
    });
    let cells = rows
        .iter()
        .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
        .collect();
    (types, cells)
}

/// A connection straight to PostgreSQL, beside the gateway's.
async fn direct(pg: &PgServer) -> Client {
    let (client, connection) = tokio_postgres::connect(&pg.url("postgres"), NoTls)
        .await
        .expect("PostgreSQL accepts a direct connection");
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn binary_cells_come_through_as_postgresql_sent_them() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let direct = direct(&pg).await;
    direct
        .batch_execute(
            "CREATE TYPE native_mood AS ENUM ('ok', 'sad'); \
             CREATE DOMAIN native_score AS float8",
        )
        .await
        .unwrap();
    let wire = connect(addr, "app", "app-token", "main-db").await;
    let statements = [
        // Every family of built-in type, NULLs among them.
        "SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, -2.25::float8, 'NaN'::numeric, \
         12345678901234567890.000100::numeric, -0.0001::numeric, 'héllo'::text, \
         'v'::varchar(3), 'c'::char(2), '\\x00ff'::bytea, true, DATE '2024-02-29', \
         TIME '12:34:56.789', TIMESTAMP '2024-01-02 03:04:05.6', TIMESTAMPTZ 'infinity', \
         INTERVAL '1 year 2 mons 3 days 04:05:06', \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{\"a\": 1}'::json, \
         '{\"b\": [1, 2]}'::jsonb, ARRAY[1, NULL, 3]::int4[], ARRAY['x', 'y z']::text[], \
         '10.0.0.1/8'::inet, point(1, 2), NULL::int4, 'a'::name, 42::oid",
        // Rows enough to fill several of the copied cells' chunks.
        "SELECT g, repeat('x', g % 50), g::numeric / 7, CASE WHEN g % 3 = 0 THEN NULL \
         ELSE g * 1.5::float8 END FROM generate_series(1, 3000) g",
        // No rows at all.
        "SELECT 1::int4 WHERE false",
    ];
    for sql in statements {
        let through = raw_rows(&wire, sql).await;
        let (types, cells) = raw_rows(&direct, sql).await;
        assert_eq!(through.0, types, "{sql}: the columns' types");
        assert_eq!(through.1.len(), cells.len(), "{sql}: the row count");
        for (i, (got, want)) in through.1.iter().zip(&cells).enumerate() {
            assert_eq!(got, want, "{sql}: row {i}");
        }
    }
    // Types of the database's own (an enum, an array of it) are described
    // as text, each cell its text, in either format.
    let sql = "SELECT 'sad'::native_mood, ARRAY['ok', 'sad']::native_mood[], 2.5::native_score, \
               7::int4";
    let (types, cells) = raw_rows(&wire, sql).await;
    // (PostgreSQL describes a domain as its base type.)
    assert_eq!(types, [Type::TEXT, Type::TEXT, Type::FLOAT8, Type::INT4]);
    let text = |s: &str| Some(Raw(s.as_bytes().to_vec()));
    assert_eq!(
        cells,
        [vec![
            text("sad"),
            text("{ok,sad}"),
            Some(Raw(2.5f64.to_be_bytes().to_vec())),
            Some(Raw(vec![0, 0, 0, 7]))
        ]]
    );
    // The same connection's text-format reads are PostgreSQL's text.
    assert_eq!(
        crate::rows(
            &wire,
            "SELECT 1.50::numeric, 'sad'::native_mood, ARRAY['ok']::native_mood[], point(1, 2)"
        )
        .await,
        [["1.50", "sad", "{ok}", "(1,2)"].map(|s| Some(s.to_owned()))]
    );
}

#[tokio::test]
async fn a_column_whose_type_changed_since_parse_is_sent_as_described() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let (_gw, addr) = gateway(&pg, &redis).await;
    let direct = direct(&pg).await;
    direct
        .batch_execute(
            "CREATE TABLE native_alter (a int4, b text); INSERT INTO native_alter VALUES (5, 'x')",
        )
        .await
        .unwrap();
    let wire = connect(addr, "app", "app-token", "main-db").await;
    let read = wire.prepare("SELECT a, b FROM native_alter").await.unwrap();
    assert_eq!(read.columns()[0].type_(), &Type::INT4);
    assert_eq!(
        wire.query_one(&read, &[]).await.unwrap().get::<_, i32>(0),
        5
    );
    // Another client widens the column: the engine's cells are now int8's
    // 8 bytes, which must not reach a client told int4.
    direct
        .batch_execute("ALTER TABLE native_alter ALTER a TYPE int8")
        .await
        .unwrap();
    let row = wire.query_one(&read, &[]).await.unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, &str>(1)), (5, "x"));
    // A type the client could not be sent as described: PostgreSQL's own
    // answer to a changed result type.
    direct
        .batch_execute(
            "CREATE TYPE native_kind AS ENUM ('x'); \
             ALTER TABLE native_alter ALTER b TYPE native_kind USING b::native_kind",
        )
        .await
        .unwrap();
    let err = wire.query_one(&read, &[]).await.unwrap_err();
    assert_eq!(crate::sqlstate(&err), "0A000", "{err:?}");
}

#[tokio::test]
async fn simple_query_cells_are_postgresql_s_own_text() {
    let (pg, redis) = (PgServer::start(), RedisServer::start());
    let direct = direct(&pg).await;
    direct
        .batch_execute(
            "CREATE TYPE text_mood AS ENUM ('ok', 'sad'); \
             ALTER DATABASE postgres SET TIME ZONE 'UTC'; SET TIME ZONE 'UTC'",
        )
        .await
        .unwrap();
    let (_gw, addr) = gateway(&pg, &redis).await;
    let wire = connect(addr, "app", "app-token", "main-db").await;
    // A long result (within the default 10,000 rows) of a type no pooled
    // connection has met reads whole: its type is not looked up while
    // the rows wait.
    let sql = "SELECT 'sad'::text_mood, g FROM generate_series(1, 9000) g";
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), crate::rows(&wire, sql))
        .await
        .expect("a long result of an enum reads within a minute");
    assert_eq!(read.len(), 9_000);
    assert_eq!(
        read[8_999],
        [Some("sad".to_owned()), Some("9000".to_owned())]
    );
    // Every family of built-in type as PostgreSQL writes it, NULLs among
    // them, and types the value model does not map (point, a range, an
    // enum and an array of it).
    let statements = [
        "SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, -2.25::float8, 0.1::float8, \
         'NaN'::numeric, 12345678901234567890.000100::numeric, 'héllo'::text, \
         'c'::char(2), '\\x00ff'::bytea, true, DATE '2024-02-29', TIME '12:34:56.789', \
         TIMESTAMP '2024-01-02 03:04:05.6', TIMESTAMPTZ '2024-01-02 03:04:05.6+02', \
         TIMESTAMPTZ 'infinity', INTERVAL '1 year 2 mons 3 days 04:05:06', \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{\"b\": [1, 2]}'::jsonb, \
         ARRAY[1, NULL, 3]::int4[], ARRAY['x', 'y z']::text[], '10.0.0.1/8'::inet, \
         point(1, 2), int4range(1, 5), NULL::int4, 'sad'::text_mood, \
         ARRAY['ok', 'sad']::text_mood[]",
        "SELECT 1::int4 WHERE false",
    ];
    for sql in statements {
        assert_eq!(
            crate::rows(&wire, sql).await,
            crate::rows(&direct, sql).await,
            "{sql}"
        );
    }
    // A parameter the text uses but a simple query cannot give is the
    // caller's mistake, not a broken connection.
    let err = wire.simple_query("SELECT $1::int4").await.unwrap_err();
    assert_eq!(crate::sqlstate(&err), "22023", "{err}");
    assert_eq!(
        crate::rows(&wire, "SELECT 1").await,
        [[Some("1".to_owned())]]
    );
    // The formats the client reads cells by cannot change under it, in
    // whatever form the SET is written; a driver's inert SET at connect
    // is answered.
    for set in [
        "SET LOCAL DateStyle = 'SQL'",
        "SET LOCAL \"IntervalStyle\" = 'iso_8601'",
        "SET /* a comment */ LOCAL bytea_output TO escape",
        "set local extra_float_digits=-3",
        "SET DateStyle TO'SQL'",
    ] {
        let err = wire
            .batch_execute(&format!("BEGIN; {set}"))
            .await
            .unwrap_err();
        assert_eq!(crate::sqlstate(&err), "0A000", "{set}: {err}");
        wire.batch_execute("ROLLBACK").await.unwrap();
    }
    wire.batch_execute("SET extra_float_digits = 3")
        .await
        .unwrap();
    // In a transaction, a statement that may change how the engine writes
    // text (set_config) leaves the rest of its cells to the gateway.
    let sql = "BEGIN; SELECT set_config('bytea_output', 'escape', true); \
               SELECT '\\x00ff'::bytea; COMMIT";
    assert_eq!(
        crate::rows(&wire, sql).await,
        [[Some("escape".to_owned())], [Some("\\x00ff".to_owned())]]
    );
    // An engine that writes dates, bytea or floats otherwise than its
    // defaults gets its cells written by the gateway, as the client reads
    // them; date input is still read in the engine's field order.
    let otherwise = [
        (
            "DateStyle = 'SQL, DMY'",
            "SELECT '03/04/2024'::date, TIMESTAMP '2024-01-02 03:04:05.6'",
            ["2024-04-03", "2024-01-02 03:04:05.600"],
        ),
        (
            "bytea_output = 'escape'",
            "SELECT '\\x00ff'::bytea, 1",
            ["\\x00ff", "1"],
        ),
        (
            "extra_float_digits = -3",
            "SELECT 0.1::float8 + 0.2::float8, 1",
            ["0.30000000000000004", "1"],
        ),
    ];
    for (setting, sql, want) in otherwise {
        direct
            .batch_execute(&format!("ALTER DATABASE postgres SET {setting}"))
            .await
            .unwrap();
        let (_other, other_addr) = gateway(&pg, &redis).await;
        let other = connect(other_addr, "app", "app-token", "main-db").await;
        assert_eq!(
            crate::rows(&other, sql).await,
            [want.map(|s| Some(s.to_owned()))],
            "{setting}"
        );
        let name = setting.split(' ').next().unwrap_or_default();
        direct
            .batch_execute(&format!("ALTER DATABASE postgres RESET {name}"))
            .await
            .unwrap();
    }
}
