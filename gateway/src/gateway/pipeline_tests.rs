//! The pipeline's unit tests: deadlines, limits, unknown transactions, against a fake driver.
use std::sync::Mutex;

use async_trait::async_trait;
use omnigate_drivers::{DescribeOptions, EngineDescriptor, Health, SchemaObject, StorageDriver};

use std::sync::Arc;

use super::*;

/// A driver that never answers, or records the options it was given.
#[derive(Debug)]
struct Fake {
    descriptor: EngineDescriptor,
    stuck: bool,
    seen: Mutex<Vec<ExecuteOptions>>,
}

impl Fake {
    fn new(stuck: bool) -> Arc<Self> {
        Arc::new(Fake {
            descriptor: EngineDescriptor {
                name: "fake".into(),
                kind: "fake",
                dialects: vec![Dialect::Sql],
            },
            stuck,
            seen: Mutex::new(Vec::new()),
        })
    }

    async fn answer(&self, options: &ExecuteOptions) -> omnigate_drivers::Result<ResultSet> {
        self.seen.lock().unwrap().push(options.clone());
        if self.stuck {
            std::future::pending::<()>().await;
        }
        Ok(ResultSet::default())
    }
}

#[async_trait]
impl StorageDriver for Fake {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.descriptor
    }

    async fn execute(
        &self,
        _dialect: Dialect,
        _statement: &Statement,
        options: &ExecuteOptions,
    ) -> omnigate_drivers::Result<ResultSet> {
        // No decision markers (the default): recovery sends it nothing.
        self.answer(options).await
    }

    async fn execute_stream(
        &self,
        _dialect: Dialect,
        _statement: Statement,
        options: ExecuteOptions,
    ) -> omnigate_drivers::Result<RowStream> {
        let batch = options.batch_size();
        Ok(RowStream::from_result(self.answer(&options).await?, batch))
    }

    async fn describe(
        &self,
        _options: &DescribeOptions,
    ) -> omnigate_drivers::Result<Vec<SchemaObject>> {
        Ok(Vec::new())
    }

    async fn health(&self) -> Health {
        Health::Serving
    }
}

async fn gateway(driver: Arc<Fake>) -> Gateway {
    Gateway::builder().driver(driver).build().await.unwrap()
}

fn timed_out(err: &Error) -> bool {
    matches!(err, Error::Driver(omnigate_drivers::Error::Timeout { after }) if *after == Duration::from_millis(100))
}

#[tokio::test(start_paused = true)]
async fn every_call_shape_is_cut_at_its_deadline_when_the_driver_is_not() {
    let gw = gateway(Fake::new(true)).await;
    let request = Request::new("sql", "SELECT 1").timeout(Duration::from_millis(100));
    let err = gw.execute(request.clone()).await.unwrap_err();
    assert!(timed_out(&err), "{err:?}");
    // ExecuteStream had no backstop before the pipeline.
    let err = gw.execute_stream(request).await.unwrap_err();
    assert!(timed_out(&err), "{err:?}");
    let batch = crate::BatchRequest {
        dialect: "sql".into(),
        statements: vec![Statement::new("SELECT 1")],
        options: ExecuteOptions {
            timeout: Some(Duration::from_millis(100)),
            ..ExecuteOptions::default()
        },
        ..crate::BatchRequest::default()
    };
    let err = gw.execute_batch(batch).await.unwrap_err();
    assert!(timed_out(&err), "{err:?}");
}

#[tokio::test]
async fn the_server_limits_complete_and_cap_the_one_options_type() {
    let fake = Fake::new(false);
    let gw = gateway(Arc::clone(&fake)).await;
    let limits = gw.limits();
    let mut whole = Request::new("sql", "SELECT 1").max_rows(u64::MAX);
    whole.options.batch_size = Some(7);
    gw.execute(whole).await.unwrap();
    let mut stream = Request::new("sql", "SELECT 1").max_rows(5);
    stream.options.batch_size = Some(usize::MAX);
    gw.execute_stream(stream).await.unwrap();
    let deadline = Request {
        context: CallContext::anonymous().with_timeout(Duration::from_secs(2)),
        ..Request::new("sql", "SELECT 1")
    };
    gw.execute(deadline).await.unwrap();
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen[0].max_rows, Some(limits.max_rows), "capped");
    assert_eq!(seen[0].max_bytes, Some(limits.max_response_bytes));
    assert_eq!(seen[0].timeout, Some(limits.default_timeout));
    assert_eq!(seen[1].batch_size, Some(limits.max_batch_rows), "capped");
    assert_eq!(
        (seen[1].max_rows, seen[1].max_bytes),
        (None, None),
        "a stream is bounded per batch"
    );
    let left = seen[2].timeout.unwrap();
    assert!(left <= Duration::from_secs(2) && left > Duration::from_secs(1));
    assert_eq!(seen[2].max_rows, Some(limits.default_max_rows));
}

#[tokio::test]
async fn an_unknown_transaction_id_is_not_found() {
    let gw = gateway(Fake::new(false)).await;
    let request = Request {
        context: CallContext::anonymous().in_transaction("tx-1"),
        ..Request::new("sql", "SELECT 1")
    };
    let err = gw.execute(request).await.unwrap_err();
    assert!(matches!(err, Error::TxNotFound { .. }), "{err:?}");
}

/// A call's future is what a caller holds (and boxes, to spawn it): it
/// stays small, with the rare paths boxed inside it.
#[tokio::test]
async fn a_call_future_stays_small() {
    let gateway = Gateway::builder().build().await.unwrap();
    let call = gateway.execute(Request::new("redis", "GET k"));
    let size = std::mem::size_of_val(&call);
    eprintln!("Gateway::execute future: {size} bytes");
    assert!(size <= 1024, "Gateway::execute's future is {size} bytes");
    drop(call);
}
