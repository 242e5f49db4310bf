//! gRPC server metrics with the names and labels of go-grpc-prometheus
//! (grpc-ecosystem), so that existing dashboards and alerts work:
//! `grpc_server_started_total`, `grpc_server_handled_total` and
//! `grpc_server_handling_seconds`, labelled `grpc_service`, `grpc_method`,
//! `grpc_type` (and `grpc_code`, spelled `OK`, `InvalidArgument`, ...).
//! Recorded by a tower layer around every service of the server; a call
//! is handled when its response body ends (a stream's last message), or
//! when the client goes away (`Canceled`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message as _;

/// A call's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_type: &'static str,
}

/// A handled call's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandledLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_type: &'static str,
    grpc_code: &'static str,
}

/// The three families, and each method's handles in them, resolved once:
/// a call looks its method up by path (no allocation), and a path that
/// names no method of the server counts as `unknown`/`unknown` (a client
/// cannot grow the label sets).
#[derive(Debug, Clone)]
pub struct GrpcMetrics {
    methods: Arc<HashMap<String, Arc<Method>>>,
    unknown: Arc<Method>,
}

/// One method's series.
#[derive(Debug)]
struct Method {
    started: Counter,
    handling: Histogram,
    /// By gRPC code (0 to 16).
    handled: Vec<Counter>,
}

/// Every gRPC code, in code order.
const CODES: [tonic::Code; 17] = [
    tonic::Code::Ok,
    tonic::Code::Cancelled,
    tonic::Code::Unknown,
    tonic::Code::InvalidArgument,
    tonic::Code::DeadlineExceeded,
    tonic::Code::NotFound,
    tonic::Code::AlreadyExists,
    tonic::Code::PermissionDenied,
    tonic::Code::ResourceExhausted,
    tonic::Code::FailedPrecondition,
    tonic::Code::Aborted,
    tonic::Code::OutOfRange,
    tonic::Code::Unimplemented,
    tonic::Code::Internal,
    tonic::Code::Unavailable,
    tonic::Code::DataLoss,
    tonic::Code::Unauthenticated,
];

/// The services the server runs: ours, health and reflection.
fn descriptor_sets() -> [&'static [u8]; 4] {
    [
        omnigate_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]
}

impl GrpcMetrics {
    /// The families, registered in `registry`, with a series per method
    /// of the server's services.
    pub(super) fn register(registry: &mut Registry) -> GrpcMetrics {
        let started = Family::<CallLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling = Family::<CallLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(omnigate::metrics::latency_buckets())
        });
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server",
            started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure",
            handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level \
             handled by the server",
            handling.clone(),
        );
        let method = |service: &str, name: &str| {
            let labels = CallLabels {
                grpc_type: call_type(service, name),
                grpc_service: service.to_owned(),
                grpc_method: name.to_owned(),
            };
            let handled = CODES
                .iter()
                .map(|code| {
                    handled
                        .get_or_create(&HandledLabels {
                            grpc_service: labels.grpc_service.clone(),
                            grpc_method: labels.grpc_method.clone(),
                            grpc_type: labels.grpc_type,
                            grpc_code: code_name(*code),
                        })
                        .clone()
                })
                .collect();
            Arc::new(Method {
                started: started.get_or_create(&labels).clone(),
                handling: handling.get_or_create(&labels).clone(),
                handled,
            })
        };
        let mut methods = HashMap::new();
        for set in descriptor_sets() {
            let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let full = format!("{}.{}", file.package(), service.name());
                    for m in &service.method {
                        methods.insert(format!("/{full}/{}", m.name()), method(&full, m.name()));
                    }
                }
            }
        }
        GrpcMetrics {
            methods: Arc::new(methods),
            unknown: method("unknown", "unknown"),
        }
    }

    fn method(&self, path: &str) -> Arc<Method> {
        Arc::clone(self.methods.get(path).unwrap_or(&self.unknown))
    }
}

/// The call type of a method, as go-grpc-prometheus names it.
fn call_type(service: &str, method: &str) -> &'static str {
    match (service, method) {
        ("omnigate.v1.Gateway", "ExecuteStream") | ("grpc.health.v1.Health", "Watch") => {
            "server_stream"
        }
        (s, "ServerReflectionInfo") if s.starts_with("grpc.reflection.") => "bidi_stream",
        _ => "unary",
    }
}

/// A gRPC code as go-grpc-prometheus spells it.
fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    }
}

/// The code of a `grpc-status` value (Unknown when it is not one).
fn parse_code(status: &str) -> tonic::Code {
    status
        .trim()
        .parse::<i32>()
        .map_or(tonic::Code::Unknown, tonic::Code::from)
}

/// A tower layer that records every call of the services under it.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer(pub GrpcMetrics);

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The layer's service.
#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
}

/// What is known of a call once it started.
#[derive(Debug)]
struct Call {
    method: Arc<Method>,
    started: Instant,
}

impl Call {
    fn finish(self, code: tonic::Code) {
        let method = &self.method;
        method
            .handling
            .observe(self.started.elapsed().as_secs_f64());
        method.handled[code as usize].inc();
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Body,
{
    type Response = http::Response<MeteredBody<R>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = self.metrics.method(request.uri().path());
        method.started.inc();
        let call = Call {
            method,
            started: Instant::now(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // A call that failed at once answers with its status in the
            // headers (trailers-only).
            let early = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(parse_code);
            let call = match early {
                Some(code) => {
                    call.finish(code);
                    None
                }
                None => Some(call),
            };
            Ok(response.map(|body| MeteredBody { body, call }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its call when it ends.
    pub struct MeteredBody<B> {
        #[pin]
        body: B,
        call: Option<Call>,
    }

    impl<B> PinnedDrop for MeteredBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before its status was sent: the client went away.
            if let Some(call) = this.project().call.take() {
                call.finish(tonic::Code::Cancelled);
            }
        }
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.take()
                {
                    let code = trailers
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .map_or(tonic::Code::Ok, parse_code);
                    call.finish(code);
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Ok);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Internal);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
