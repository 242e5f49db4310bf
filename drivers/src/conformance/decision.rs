//! What every deciding engine's markers must do, on a live engine (see
//! [`DecisionMarkers`](crate::DecisionMarkers)): made ready twice, a key
//! held once, a swap that only takes the record it was given, pages in id
//! order, and deletes that only take what they name. The markers it
//! writes have ids of their own and are removed at the end, so it can run
//! beside a gateway's markers.

use crate::decision::{DONE, FENCE};
use crate::{Error, ExecuteOptions, Result, ResultSet, Statement, StorageDriver, Value};

/// Runs the whole suite on `driver`, which must keep markers.
pub async fn run_all(driver: &dyn StorageDriver) {
    let engine = driver.descriptor().name.clone();
    let markers = driver
        .decision_markers()
        .unwrap_or_else(|| panic!("{engine} keeps no decision markers"));
    let run = |statement: Statement| async move {
        driver
            .execute(markers.dialect(), &statement, &ExecuteOptions::default())
            .await
    };
    let ok = |what: &'static str, outcome: Result<ResultSet>| {
        outcome.unwrap_or_else(|e| panic!("{engine}: {what} failed: {e}"))
    };
    for _ in 0..2 {
        if let Some(before) = markers.before_setup() {
            let _ = run(before).await;
        }
        ok("setup", run(markers.setup()).await);
    }
    let prefix = format!("conformance-{}-", uuid::Uuid::new_v4());
    let [a, b, c] = ["a", "b", "c"].map(|n| format!("{prefix}{n}"));
    let (fence, done) = (format!("{FENCE}1"), format!("{DONE}1:[]"));

    ok("insert", run(markers.insert(&a, "decided")).await);
    match run(markers.insert(&a, &fence)).await {
        Err(Error::ConstraintViolation(_)) => {}
        other => panic!("{engine}: a second marker of one id must be refused: {other:?}"),
    }
    let read = |tx: String| async move {
        let rows = ok("read", run(markers.read(&tx)).await).rows;
        rows.into_iter().next().and_then(|r| r.into_iter().next())
    };
    assert_eq!(
        read(a.clone()).await,
        Some(Value::from("decided")),
        "{engine}"
    );
    assert_eq!(read(format!("{prefix}none")).await, None, "{engine}");

    let stale = ok("swap", run(markers.swap(&a, "other", "claimed")).await);
    assert!(
        !markers.swapped(&stale),
        "{engine}: a swap from a stale record"
    );
    assert_eq!(
        read(a.clone()).await,
        Some(Value::from("decided")),
        "{engine}"
    );
    let fresh = ok("swap", run(markers.swap(&a, "decided", "claimed")).await);
    assert!(
        markers.swapped(&fresh),
        "{engine}: a swap from the record held"
    );
    ok("update", run(markers.update(&a, "claimed again")).await);
    assert_eq!(
        read(a.clone()).await,
        Some(Value::from("claimed again")),
        "{engine}"
    );

    ok("insert", run(markers.insert(&b, &fence)).await);
    ok("insert", run(markers.insert(&c, &done)).await);
    let ids = |result: ResultSet| -> Vec<(Value, Value)> {
        result
            .rows
            .into_iter()
            .filter_map(|row| match &row[..] {
                [id @ Value::String(s), record] if s.starts_with(&prefix) => {
                    Some((id.clone(), record.clone()))
                }
                _ => None,
            })
            .collect()
    };
    let first = ids(ok("page", run(markers.page(&prefix, 2)).await));
    assert_eq!(
        first,
        [
            (Value::from(a.as_str()), Value::from("claimed again")),
            (Value::from(b.as_str()), Value::from(fence.as_str())),
        ],
        "{engine}: the first page, in id order"
    );
    let next = ids(ok("page", run(markers.page(&b, 2)).await));
    assert_eq!(
        next,
        [(Value::from(c.as_str()), Value::from(done.as_str()))],
        "{engine}: the page after {b}"
    );
    let ended = ids(ok("ended", run(markers.ended()).await));
    assert_eq!(
        ended.len(),
        2,
        "{engine}: the fence and the done one: {ended:?}"
    );
    assert!(
        !ended.iter().any(|(id, _)| *id == Value::from(a.as_str())),
        "{engine}"
    );

    ok("delete_fence", run(markers.delete_fence(&a)).await);
    assert!(
        read(a.clone()).await.is_some(),
        "{engine}: not a fence: kept"
    );
    ok("delete_fence", run(markers.delete_fence(&b)).await);
    assert_eq!(read(b.clone()).await, None, "{engine}: a fence: deleted");
    ok("delete", run(markers.delete(&c, "another record")).await);
    assert!(
        read(c.clone()).await.is_some(),
        "{engine}: another record: kept"
    );
    ok("delete", run(markers.delete(&c, &done)).await);
    assert_eq!(read(c.clone()).await, None, "{engine}: its record: deleted");
    ok("delete", run(markers.delete(&a, "claimed again")).await);
    assert_eq!(read(a).await, None, "{engine}");
}
