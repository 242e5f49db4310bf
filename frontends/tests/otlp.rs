//! OpenTelemetry export end to end (`--features otlp`): the `omnigate`
//! binary with `[tracing] otlp_endpoint` sends each call's span to an
//! OTLP/gRPC collector (here one built on the OTLP protocol's own service
//! definitions), as a child of the caller's `traceparent` (gRPC metadata,
//! or a PostgreSQL client's `application_name`), with the statement's
//! fingerprint and never a parameter value.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use omnigate_proto::v1 as pb;
use omnigate_tests::binary;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_omnigate");
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const PG_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PG_PARENT: &str = "b7ad6b7169203331";

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_spans_go_to_the_collector_as_children_of_the_callers_trace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    let (sent, mut received) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(sent)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("omnigate.toml");
    let pg = SocketAddr::from(([127, 0, 0, 1], omnigate_tests::free_port()));
    std::fs::write(
        &config,
        format!(
            "[tracing]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"og-test\"\n\
             [frontends.postgres]\nlisten = \"{pg}\"\n"
        ),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], omnigate_tests::free_port()));
    let server = tokio::task::spawn_blocking(move || binary::serve(BIN, &config, addr, "info"))
        .await
        .unwrap();

    let mut client = pb::gateway_client::GatewayClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut call = tonic::Request::new(omnigate_tests::request(
        "redis",
        "SET greeting $1",
        vec![omnigate_tests::s("secret-value")],
    ));
    call.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-{PARENT}-01").parse().unwrap(),
    );
    client.execute(call).await.unwrap();
    // A PostgreSQL client names its trace in application_name.
    let (sql, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port())
        .user("app")
        .dbname("main")
        .application_name(format!("00-{PG_TRACE}-{PG_PARENT}-01"))
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    sql.simple_query("SELECT 41 + 1").await.unwrap();
    drop(sql);
    // SIGTERM: the gateway sends the spans it holds before it exits.
    omnigate_tests::send_signal(&server, "TERM");
    let log = tokio::task::spawn_blocking(move || {
        let output = server.wait_with_output().unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    })
    .await
    .unwrap();

    let export = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap_or_else(|_| panic!("no spans reached the collector; the log: {log}"))
        .unwrap();
    // Every export the shutdown flushed.
    let mut exports = vec![export.clone()];
    while let Ok(Some(more)) = tokio::time::timeout(Duration::from_secs(2), received.recv()).await {
        exports.push(more);
    }
    let every_span: Vec<_> = exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let wire = every_span
        .iter()
        .find(|s| s.name == "call" && hex(&s.trace_id) == PG_TRACE)
        .unwrap_or_else(|| panic!("no span of the PostgreSQL client's trace in {every_span:?}"));
    assert_eq!(
        hex(&wire.parent_span_id),
        PG_PARENT,
        "under the client's span"
    );
    let wire_attribute = |key: &str| {
        wire.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| text(&kv.value))
    };
    assert_eq!(wire_attribute("frontend").as_deref(), Some("postgres"));
    assert_eq!(wire_attribute("statement").as_deref(), Some("SELECT ? + ?"));
    let resource = export.resource_spans[0].resource.as_ref().unwrap();
    assert!(
        resource
            .attributes
            .iter()
            .any(|kv| kv.key == "service.name" && text(&kv.value) == "og-test"),
        "{resource:?}"
    );
    let spans = &every_span;
    let span = spans
        .iter()
        .find(|s| s.name == "call" && hex(&s.trace_id) == TRACE)
        .unwrap_or_else(|| panic!("no call span in {spans:?}"));
    assert_eq!(hex(&span.trace_id), TRACE, "the caller's trace continues");
    assert_eq!(hex(&span.parent_span_id), PARENT, "under the caller's span");
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| text(&kv.value))
    };
    assert_eq!(attribute("rpc").as_deref(), Some("Execute"));
    assert_eq!(attribute("dialect").as_deref(), Some("redis"));
    assert_eq!(attribute("statement").as_deref(), Some("SET (2 args)"));
    assert_eq!(attribute("engine").as_deref(), Some("cache"));
    assert_eq!(attribute("code").as_deref(), Some("OK"));
    assert!(
        !format!("{export:?}").contains("secret-value"),
        "a parameter value was exported"
    );
}
