//! gRPC server metrics with the names and labels of go-grpc-prometheus
//! (grpc-ecosystem), so that existing dashboards and alerts work:
//! `grpc_server_started_total`, `grpc_server_handled_total` and
//! `grpc_server_handling_seconds`, labelled `grpc_service`, `grpc_method`,
//! `grpc_type` (and `grpc_code`, spelled `OK`, `InvalidArgument`, ...).
//! Recorded by a tower layer around every service of the server; a call
//! is handled when its response body ends (a stream's last message), or
//! when the client goes away (`Canceled`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// The three families.
#[derive(Debug, Clone)]
pub struct GrpcMetrics {
    started: Family<CallLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling: Family<CallLabels, Histogram>,
}

impl GrpcMetrics {
    /// The families, registered in `registry`.
    pub(super) fn register(registry: &mut Registry) -> GrpcMetrics {
        let metrics = GrpcMetrics {
            started: Family::default(),
            handled: Family::default(),
            handling: Family::new_with_constructor(|| Histogram::new(super::latency_buckets())),
        };
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server",
            metrics.started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure",
            metrics.handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level \
             handled by the server",
            metrics.handling.clone(),
        );
        metrics
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

/// A gRPC status code as go-grpc-prometheus spells it.
fn code_name(code: &str) -> &'static str {
    match code.trim().parse::<i32>().map(tonic::Code::from) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "Canceled",
        Ok(tonic::Code::Unknown) => "Unknown",
        Ok(tonic::Code::InvalidArgument) => "InvalidArgument",
        Ok(tonic::Code::DeadlineExceeded) => "DeadlineExceeded",
        Ok(tonic::Code::NotFound) => "NotFound",
        Ok(tonic::Code::AlreadyExists) => "AlreadyExists",
        Ok(tonic::Code::PermissionDenied) => "PermissionDenied",
        Ok(tonic::Code::ResourceExhausted) => "ResourceExhausted",
        Ok(tonic::Code::FailedPrecondition) => "FailedPrecondition",
        Ok(tonic::Code::Aborted) => "Aborted",
        Ok(tonic::Code::OutOfRange) => "OutOfRange",
        Ok(tonic::Code::Unimplemented) => "Unimplemented",
        Ok(tonic::Code::Internal) => "Internal",
        Ok(tonic::Code::Unavailable) => "Unavailable",
        Ok(tonic::Code::DataLoss) => "DataLoss",
        Ok(tonic::Code::Unauthenticated) => "Unauthenticated",
        Err(_) => "Unknown",
    }
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
    metrics: GrpcMetrics,
    labels: CallLabels,
    started: Instant,
}

impl Call {
    fn finish(self, code: &'static str) {
        let labels = self.labels;
        self.metrics
            .handling
            .get_or_create(&labels)
            .observe(self.started.elapsed().as_secs_f64());
        self.metrics
            .handled
            .get_or_create(&HandledLabels {
                grpc_service: labels.grpc_service,
                grpc_method: labels.grpc_method,
                grpc_type: labels.grpc_type,
                grpc_code: code,
            })
            .inc();
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
        let path = request.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        let labels = CallLabels {
            grpc_type: call_type(service, method),
            grpc_service: service.to_owned(),
            grpc_method: method.to_owned(),
        };
        self.metrics.started.get_or_create(&labels).inc();
        let call = Call {
            metrics: self.metrics.clone(),
            labels,
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
                .map(code_name);
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
                call.finish("Canceled");
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
                        .map_or("OK", code_name);
                    call.finish(code);
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish("OK");
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish("Internal");
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
