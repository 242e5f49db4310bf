//! What every deciding engine's markers must do, on a live engine (see
//! [`DecisionMarkers`](crate::DecisionMarkers)): made ready twice, a key
//! held once, a swap that only takes the record it was given, pages of the
//! markers not done in id order, a sweep that takes only old fences and
//! done markers, and a fence's delete that takes only a fence. The markers it
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
        if let Some(after) = markers.after_setup() {
            ok("after_setup", run(after).await);
        }
    }
    let prefix = format!("conformance-{}-", uuid::Uuid::new_v4());
    let [a, b, c, d, e, f] = ["a", "b", "c", "d", "e", "f"].map(|n| format!("{prefix}{n}"));
    let fence = format!("{FENCE}1");

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

    // Times of 13 digits, as the gateway writes them: an old one (2001)
    // and a young one (2033), either side of the sweep's cutoff (2017).
    let (old, young, cutoff) = ("1000000000000", "2000000000000", "1500000000000");
    let (old_fence, old_done) = (format!("{FENCE}{old}"), format!("{DONE}{old}:[]"));
    let (young_fence, young_done) = (format!("{FENCE}{young}"), format!("{DONE}{young}:[]"));
    ok("insert", run(markers.insert(&b, &old_fence)).await);
    ok("insert", run(markers.insert(&c, &old_done)).await);
    ok("insert", run(markers.insert(&d, "decided too")).await);
    ok("insert", run(markers.insert(&e, &young_done)).await);
    ok("insert", run(markers.insert(&f, &young_fence)).await);
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
    let first = ids(ok("page", run(markers.page(&prefix, 1)).await));
    assert_eq!(
        first,
        [(Value::from(a.as_str()), Value::from("claimed again"))],
        "{engine}: the first page, in id order"
    );
    let next = ids(ok("page", run(markers.page(&a, 2)).await));
    assert_eq!(
        next,
        [(Value::from(d.as_str()), Value::from("decided too"))],
        "{engine}: the page after {a}: past the fence and the done marker, never them"
    );

    let every = ids(ok("page_all", run(markers.page_all(&a, 2)).await));
    assert_eq!(
        every,
        [
            (Value::from(b.as_str()), Value::from(old_fence.as_str())),
            (Value::from(c.as_str()), Value::from(old_done.as_str())),
        ],
        "{engine}: every marker after {a}, in id order"
    );

    let sweep = |limit| {
        run(markers.sweep(
            &format!("{DONE}{cutoff}"),
            &format!("{FENCE}{cutoff}"),
            limit,
        ))
    };
    // One at a time: the old fence and the old done marker take two.
    ok("sweep", sweep(1).await);
    let left = [&b, &c].map(|id| read(id.clone()));
    let left = futures::future::join_all(left).await;
    assert_eq!(
        left.iter().filter(|r| r.is_some()).count(),
        1,
        "{engine}: a sweep of at most 1 took one of the two old ones"
    );
    ok("sweep", sweep(1).await);
    for (id, kept) in [
        (&a, true),
        (&b, false),
        (&c, false),
        (&d, true),
        (&e, true),
        (&f, true),
    ] {
        assert_eq!(
            read(id.clone()).await.is_some(),
            kept,
            "{engine}: after the sweep, {id} kept: {kept} (old fences and done markers go)"
        );
    }

    ok("delete_fence", run(markers.delete_fence(&a)).await);
    assert!(
        read(a.clone()).await.is_some(),
        "{engine}: not a fence: kept"
    );
    ok("delete_fence", run(markers.delete_fence(&f)).await);
    assert_eq!(read(f.clone()).await, None, "{engine}: a fence: deleted");

    // Ours let go of: marked done long ago, then swept.
    for id in [&a, &d, &e] {
        ok("update", run(markers.update(id, &old_done)).await);
    }
    ok("sweep", sweep(100).await);
    for id in [a, d, e] {
        assert_eq!(read(id).await, None, "{engine}");
    }
}
