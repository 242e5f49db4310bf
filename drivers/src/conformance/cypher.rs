//! The Cypher conformance suite: what every engine of the `cypher` dialect
//! (FalkorDB, Neo4j) must do alike. It sticks to the Cypher both speak;
//! where they differ (FalkorDB has no `EXISTS { MATCH ... }` subqueries,
//! makes constraints with `GRAPH.CONSTRAINT` rather than `CREATE
//! CONSTRAINT`, allows `shortestPath` only in WITH/RETURN, and returns
//! `sum()` of integers as a float), the suite does not go, or compares
//! what both agree on.
//!
//! Each check works on labels of its own and clears them first, so the
//! checks can share a graph.

use crate::{
    Dialect, Error, ExecuteOptions, Node, Relationship, ResultSet, Statement, StorageDriver, Value,
};

/// Runs every check in order.
pub async fn run_all(d: &dyn StorageDriver) {
    create_and_match(d).await;
    merge_creates_once(d).await;
    relationships_and_paths(d).await;
    parameters_of_every_type(d).await;
    string_parameters_cannot_change_the_query(d).await;
    aggregation(d).await;
    errors(d).await;
    super::statement_checks(d, Dialect::Cypher, "RETURN 1").await;
}

/// Runs `text` with named parameters.
pub async fn cypher(
    d: &dyn StorageDriver,
    text: &str,
    named: &[(&str, Value)],
) -> crate::Result<ResultSet> {
    let statement = Statement {
        text: text.to_owned(),
        params: Vec::new(),
        named: named
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    };
    d.execute(Dialect::Cypher, &statement, &ExecuteOptions::default())
        .await
}

/// Runs `text` and panics on failure.
pub async fn ok(d: &dyn StorageDriver, text: &str, named: &[(&str, Value)]) -> ResultSet {
    match cypher(d, text, named).await {
        Ok(result) => result,
        Err(e) => panic!("{text}: {e}"),
    }
}

/// The first value of the first row.
pub async fn one(d: &dyn StorageDriver, text: &str, named: &[(&str, Value)]) -> Value {
    let result = ok(d, text, named).await;
    result
        .rows
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .unwrap_or_else(|| panic!("{text}: no rows"))
}

async fn clear(d: &dyn StorageDriver, label: &str) {
    ok(d, &format!("MATCH (n:{label}) DETACH DELETE n"), &[]).await;
}

fn prop<'a>(properties: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    properties.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Nodes come back with their labels and properties.
pub async fn create_and_match(d: &dyn StorageDriver) {
    clear(d, "ConfPerson").await;
    let created = ok(
        d,
        "CREATE (:ConfPerson {name: 'ada', born: 1815, tags: ['math', 'poetry']})",
        &[],
    )
    .await;
    assert!(created.rows_affected >= 1, "a create counts what it did");
    let Value::Node(node) = one(d, "MATCH (p:ConfPerson) RETURN p", &[]).await else {
        panic!("a node")
    };
    assert_eq!(node.labels, vec!["ConfPerson".to_owned()]);
    assert_eq!(prop(&node.properties, "name"), Some(&Value::from("ada")));
    assert_eq!(prop(&node.properties, "born"), Some(&Value::Int(1815)));
    assert_eq!(
        prop(&node.properties, "tags"),
        Some(&Value::List(vec![
            Value::from("math"),
            Value::from("poetry")
        ]))
    );
    let result = ok(
        d,
        "MATCH (p:ConfPerson) RETURN p.name AS name, p.born AS born",
        &[],
    )
    .await;
    let names: Vec<_> = result.columns.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["name", "born"]);
}

/// MERGE makes a node once.
pub async fn merge_creates_once(d: &dyn StorageDriver) {
    clear(d, "ConfCity").await;
    for _ in 0..3 {
        ok(
            d,
            "MERGE (:ConfCity {name: $name})",
            &[("name", Value::from("paris"))],
        )
        .await;
    }
    assert_eq!(
        one(d, "MATCH (c:ConfCity) RETURN count(c)", &[]).await,
        Value::Int(1)
    );
}

/// Relationships name their type and ends; paths hold both.
pub async fn relationships_and_paths(d: &dyn StorageDriver) {
    clear(d, "ConfNode").await;
    ok(
        d,
        "CREATE (:ConfNode {name: 'a'})-[:CONF_KNOWS {since: 1833}]->(:ConfNode {name: 'b'})",
        &[],
    )
    .await;
    let result = ok(
        d,
        "MATCH p = (a:ConfNode)-[r:CONF_KNOWS]->(b:ConfNode) RETURN a, r, b, p",
        &[],
    )
    .await;
    let row = &result.rows[0];
    let (Value::Node(a), Value::Relationship(r), Value::Node(b), Value::Path(p)) =
        (&row[0], &row[1], &row[2], &row[3])
    else {
        panic!("node, relationship, node, path: {row:?}")
    };
    check_relationship(r, a, b);
    assert_eq!(p.nodes.len(), 2);
    assert_eq!(p.relationships.len(), 1);
    assert_eq!(
        prop(&p.nodes[0].properties, "name"),
        Some(&Value::from("a"))
    );
    assert_eq!(p.relationships[0].rel_type, "CONF_KNOWS");
    let hops = one(
        d,
        "MATCH (a:ConfNode {name: 'a'})-[:CONF_KNOWS]->(b) RETURN collect(b.name)",
        &[],
    )
    .await;
    assert_eq!(hops, Value::List(vec![Value::from("b")]));
}

fn check_relationship(r: &Relationship, a: &Node, b: &Node) {
    assert_eq!(r.rel_type, "CONF_KNOWS");
    assert_eq!((r.start_node_id, r.end_node_id), (a.id, b.id));
    assert_eq!(prop(&r.properties, "since"), Some(&Value::Int(1833)));
}

/// Every parameter type the engines share round-trips.
pub async fn parameters_of_every_type(d: &dyn StorageDriver) {
    let cases = [
        Value::Null,
        Value::Bool(true),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Float(0.1),
        Value::Float(-1.5e300),
        Value::from(""),
        Value::from("héllo, 世界"),
        Value::List(vec![Value::Int(1), Value::from("two"), Value::Null]),
        Value::Map(vec![
            ("a".into(), Value::Int(1)),
            ("b c".into(), Value::List(vec![Value::Bool(false)])),
        ]),
    ];
    for case in cases {
        let back = one(d, "RETURN $p", &[("p", case.clone())]).await;
        assert_eq!(sorted(back), sorted(case.clone()), "{case:?}");
    }
}

/// Maps compare without regard to key order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Map(mut entries) => {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::List(items) => Value::List(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Strings with quotes, backslashes, comment markers and newlines, and
/// long ones, are data: stored and read back exactly, never code.
pub async fn string_parameters_cannot_change_the_query(d: &dyn StorageDriver) {
    clear(d, "ConfSecret").await;
    ok(d, "CREATE (:ConfSecret {name: 'root'})", &[]).await;
    let attempts = [
        "x' OR 1=1 //",
        "x\\' OR 1=1 //",
        "\\",
        "'",
        "x\" OR 1=1 //",
        "*/ MATCH (n) DETACH DELETE n /*",
        "a\nMATCH (n) DETACH DELETE n",
        "`} RETURN 1 //",
        "x\\\\' RETURN 1 //",
    ];
    for attempt in attempts {
        let count = one(
            d,
            "MATCH (s:ConfSecret) WHERE s.name = $name RETURN count(s)",
            &[("name", Value::from(attempt))],
        )
        .await;
        assert_eq!(count, Value::Int(0), "{attempt:?} matched nothing");
        let back = one(d, "RETURN $s", &[("s", Value::from(attempt))]).await;
        assert_eq!(back, Value::from(attempt), "{attempt:?} came back as sent");
    }
    let long: String = "ab'\\\n".repeat(20_480);
    ok(
        d,
        "CREATE (:ConfSecret {name: 'long', text: $t})",
        &[("t", Value::from(long.as_str()))],
    )
    .await;
    let back = one(d, "MATCH (s:ConfSecret {name: 'long'}) RETURN s.text", &[]).await;
    assert_eq!(
        back,
        Value::from(long.as_str()),
        "a 100 KB string round-trips"
    );
    assert_eq!(
        one(d, "MATCH (s:ConfSecret) RETURN count(s)", &[]).await,
        Value::Int(2),
        "nothing was deleted"
    );
}

/// count, sum, avg, min, max and collect.
pub async fn aggregation(d: &dyn StorageDriver) {
    clear(d, "ConfScore").await;
    ok(
        d,
        "UNWIND $xs AS x CREATE (:ConfScore {v: x, g: x % 2})",
        &[("xs", Value::List((1..=10).map(Value::Int).collect()))],
    )
    .await;
    let result = ok(
        d,
        "MATCH (s:ConfScore) RETURN s.g AS g, count(s) AS n, sum(s.v) AS total, min(s.v) AS lo, max(s.v) AS hi, avg(s.v) AS mean ORDER BY g",
        &[],
    )
    .await;
    // sum() of integers is an integer in Neo4j and a float in FalkorDB:
    // compare numbers.
    let numbers: Vec<Vec<f64>> = result
        .rows
        .iter()
        .map(|row| row.iter().map(number).collect())
        .collect();
    assert_eq!(
        numbers,
        vec![
            vec![0.0, 5.0, 30.0, 2.0, 10.0, 6.0],
            vec![1.0, 5.0, 25.0, 1.0, 9.0, 5.0]
        ]
    );
    assert!(
        matches!(result.rows[0][1], Value::Int(5)),
        "count() is an integer"
    );
}

/// An integer or a float as f64 (panics on anything else).
pub fn number(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        other => panic!("a number, not {other:?}"),
    }
}

/// Bad statements and parameters get meaning-based errors.
pub async fn errors(d: &dyn StorageDriver) {
    let syntax = cypher(d, "MATCH (n RETURN n", &[]).await.unwrap_err();
    assert!(matches!(syntax, Error::InvalidStatement(_)), "{syntax}");
    let positional = d
        .execute(
            Dialect::Cypher,
            &Statement::new("RETURN $1").bind(1),
            &ExecuteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(positional, Error::InvalidParameter { .. }),
        "{positional}"
    );
    let bad_name = cypher(d, "RETURN 1", &[("no good", Value::Int(1))])
        .await
        .unwrap_err();
    assert!(
        matches!(bad_name, Error::InvalidNamedParameter { .. }),
        "{bad_name}"
    );
    let read_only = d
        .execute(
            Dialect::Cypher,
            &Statement::new("CREATE (:ConfReadOnly)"),
            &ExecuteOptions {
                read_only: true,
                ..ExecuteOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(read_only, Error::ReadOnly(_) | Error::PermissionDenied(_)),
        "{read_only}"
    );
    assert_eq!(
        one(d, "MATCH (n:ConfReadOnly) RETURN count(n)", &[]).await,
        Value::Int(0),
        "a refused write wrote nothing"
    );
    let too_many = d
        .execute(
            Dialect::Cypher,
            &Statement::new("UNWIND range(1, 10) AS x RETURN x"),
            &ExecuteOptions {
                max_rows: Some(5),
                ..ExecuteOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(too_many, Error::TooManyRows { limit: 5 }),
        "{too_many}"
    );
}
