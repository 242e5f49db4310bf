//! A call as the service receives it, turned into a gateway call: its
//! context (the client's deadline, the transaction), its request in the
//! gateway's types, and how it is logged.

use std::time::{Duration, Instant};

use omnigate_proto::v1 as pb;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::{convert, status};
use omnigate as gateway;
use omnigate::error::Error;

/// The client's deadline from the `grpc-timeout` header (e.g. `250m`).
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)
}

/// A `grpc-timeout` value (`250m`: an amount and its unit).
pub(super) fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Who is calling: a client certificate the TLS handshake verified
/// against the client CA (mutual TLS), else the `authorization` metadata.
pub fn caller(
    gateway: &gateway::Gateway,
    metadata: &MetadataMap,
    extensions: &tonic::Extensions,
) -> Result<gateway::Caller, Status> {
    let certificate = gateway.security().config().tls.as_ref().and_then(|tls| {
        let info = extensions.get::<TlsConnectInfo<TcpConnectInfo>>()?;
        let chain = info.peer_certs()?;
        crate::tls::client_name(chain.first()?, tls.client_name)
    });
    let credentials = omnigate::security::Credentials {
        authorization: metadata.get("authorization").and_then(|v| v.to_str().ok()),
        certificate: certificate.as_deref(),
        login: None,
    };
    gateway.authenticate(credentials).map_err(status::status)
}

/// The call's context: the client's deadline, less a margin so that the
/// client gets this gateway's DEADLINE_EXCEEDED rather than a cut call.
pub(super) fn context(metadata: &MetadataMap, tx_id: String) -> gateway::CallContext {
    let mut context = gateway::CallContext::anonymous();
    if let Some(deadline) = grpc_timeout(metadata) {
        let margin = (deadline / 10).clamp(Duration::from_millis(5), Duration::from_millis(100));
        context = context.with_timeout(deadline.saturating_sub(margin));
    }
    if !tx_id.is_empty() {
        context = context.in_transaction(tx_id);
    }
    context
}

/// A proto request as a gateway request.
pub(crate) fn to_request(
    message: pb::ExecuteRequest,
    context: gateway::CallContext,
) -> Result<gateway::Request, Status> {
    let params = convert::params_from_proto(message.params).map_err(status::status)?;
    let named = convert::named_from_proto(message.named_params).map_err(status::status)?;
    Ok(gateway::Request {
        dialect: message.dialect,
        statement: message.statement,
        params,
        named,
        target: non_empty(message.target),
        options: convert::options_from_proto(message.options)?,
        context,
    })
}

pub(super) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A proto batch as a gateway batch.
pub(crate) fn to_batch_request(
    message: pb::ExecuteBatchRequest,
    context: gateway::CallContext,
) -> Result<gateway::BatchRequest, Status> {
    let statements = message
        .statements
        .into_iter()
        .enumerate()
        .map(|(position, s)| {
            let in_batch = |e| match e {
                Error::BadParameter { param, message } => Error::BadParameter {
                    param,
                    message: format!("(statement {} of the batch) {message}", position + 1),
                },
                other => other,
            };
            Ok(omnigate_drivers::Statement {
                text: s.statement,
                params: convert::params_from_proto(s.params).map_err(in_batch)?,
                named: convert::named_from_proto(s.named_params).map_err(in_batch)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()
        .map_err(status::status)?;
    Ok(gateway::BatchRequest {
        dialect: message.dialect,
        statements,
        target: non_empty(message.target),
        options: convert::options_from_proto(message.options)?,
        context,
    })
}

/// One statement RPC as it is logged: its name, dialect and start.
pub(super) struct Call {
    rpc: &'static str,
    dialect: String,
    started: Instant,
    span: tracing::Span,
}

impl Call {
    /// A call begins: its span names the RPC, the dialect, the statement's
    /// fingerprint (never its values) and the caller's trace, if any.
    pub(super) fn start(
        rpc: &'static str,
        dialect: &str,
        statement: &str,
        metadata: &MetadataMap,
    ) -> Self {
        let (trace_id, parent_id) = crate::trace::traceparent(metadata).unzip();
        let span = tracing::info_span!(
            "call",
            rpc,
            dialect,
            statement = %crate::trace::fingerprint(dialect, statement),
            trace_id = trace_id.as_deref(),
            parent_span_id = parent_id.as_deref(),
            engine = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        #[cfg(feature = "otlp")]
        crate::telemetry::continue_trace(&span, metadata);
        Call {
            rpc,
            dialect: dialect.to_owned(),
            started: Instant::now(),
            span,
        }
    }

    /// The call's span, for its work.
    pub(super) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Logs the outcome: the engine that answered, or the status code.
    pub(super) fn log(&self, outcome: Result<&str, &Status>) {
        let (rpc, dialect) = (self.rpc, self.dialect.as_str());
        let elapsed_us = self.started.elapsed().as_micros() as u64;
        let _in = self.span.enter();
        match outcome {
            Ok(engine) => {
                self.span.record("engine", engine);
                self.span.record("code", "OK");
                tracing::debug!(rpc, dialect, engine, elapsed_us, "ok");
            }
            Err(status) => {
                self.span
                    .record("code", format!("{:?}", status.code()).as_str());
                tracing::info!(rpc, dialect, elapsed_us, code = ?status.code(), "failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    #[test]
    fn reads_grpc_timeout_headers() {
        let mut metadata = MetadataMap::new();
        assert_eq!(grpc_timeout(&metadata), None);
        for (raw, expected) in [
            ("250m", Duration::from_millis(250)),
            ("3S", Duration::from_secs(3)),
            ("2M", Duration::from_secs(120)),
            ("1H", Duration::from_secs(3600)),
            ("7u", Duration::from_micros(7)),
            ("9n", Duration::from_nanos(9)),
        ] {
            metadata.insert("grpc-timeout", MetadataValue::from_static(raw));
            assert_eq!(grpc_timeout(&metadata), Some(expected), "{raw}");
        }
        metadata.insert("grpc-timeout", MetadataValue::from_static("5x"));
        assert_eq!(grpc_timeout(&metadata), None);
    }

    #[test]
    fn the_deadline_caps_the_requested_timeout() {
        let message = pb::ExecuteRequest {
            dialect: "sql".into(),
            options: Some(pb::ExecuteOptions {
                timeout: Some(prost_types::Duration {
                    seconds: 10,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", MetadataValue::from_static("2S"));
        let request = to_request(message.clone(), context(&metadata, String::new())).unwrap();
        let timeout = request
            .context
            .timeout(request.options.timeout, Duration::from_secs(30));
        assert!(
            timeout <= Duration::from_millis(1900) && timeout > Duration::from_millis(1800),
            "a margin before the deadline: {timeout:?}"
        );
        let request = to_request(message, gateway::CallContext::anonymous()).unwrap();
        assert_eq!(request.options.timeout, Some(Duration::from_secs(10)));
        let negative = pb::ExecuteRequest {
            options: Some(pb::ExecuteOptions {
                timeout: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            to_request(negative, gateway::CallContext::anonymous())
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
    }
}
