//! Describe takes the one route every call takes (it used to bypass it:
//! no drain refusal, no in-flight bound, no limiter, no counters), on the
//! embedded engines.
#![allow(clippy::unwrap_used)]

use omnigate::{CallContext, DescribeRequest, Error, Gateway, Request};

fn describe(target: &str) -> DescribeRequest {
    DescribeRequest {
        target: Some(target.into()),
        dialect: None,
        name: None,
        context: CallContext::anonymous(),
    }
}

async fn calls(gateway: &Gateway, engine: &str) -> u64 {
    let engines = gateway.engines(&CallContext::anonymous()).await.unwrap();
    let status = engines.iter().find(|e| e.name == engine).unwrap();
    status
        .counters
        .iter()
        .find(|(name, _)| name == "calls")
        .map(|(_, n)| *n)
        .unwrap()
}

#[tokio::test]
async fn describe_is_counted_and_refused_by_a_drained_engine() {
    // No config: `cache` (memory) and `main` (SQLite).
    let gateway = Gateway::builder().build().await.unwrap();
    gateway
        .execute(Request::new("sql", "CREATE TABLE t (id INTEGER)"))
        .await
        .unwrap();

    let before = calls(&gateway, "main").await;
    let description = gateway.describe(describe("main")).await.unwrap();
    assert!(description.objects.iter().any(|o| o.name == "t"));
    assert_eq!(
        calls(&gateway, "main").await,
        before + 1,
        "a Describe is a call"
    );

    gateway
        .drain_engine(&CallContext::anonymous(), "main")
        .await
        .unwrap();
    let refused = gateway.describe(describe("main")).await.unwrap_err();
    assert!(
        matches!(refused, Error::EngineDrained { .. }),
        "{refused:?}"
    );
    gateway
        .resume_engine(&CallContext::anonymous(), "main")
        .unwrap();
    gateway.describe(describe("main")).await.unwrap();
}
