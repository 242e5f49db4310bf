//! The gRPC service `omnigate.v1.Gateway`: turns proto requests into
//! gateway calls and results back into proto responses. Nothing below it
//! knows about gRPC.

pub mod convert;
pub mod status;

use std::future::Future;
use std::time::{Duration, Instant};

use convert::{columns_to_proto, object_to_proto, pool_to_proto, result_to_proto, rows_to_proto};
use futures::StreamExt;
use omnigate_drivers::{Health, RowStream};
use omnigate_proto::v1 as pb;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::gateway::{self, Gateway};

/// The `omnigate.v1.Gateway` service over a [`Gateway`].
#[derive(Debug, Clone)]
pub struct GatewayService {
    gateway: Gateway,
    max_response_bytes: usize,
    cancel: watch::Receiver<bool>,
}

impl GatewayService {
    /// A service over `gateway` that refuses responses over
    /// `max_response_bytes`. When `cancel` turns true, calls still running
    /// stop (their statements are cancelled on the engines) and fail with
    /// UNAVAILABLE.
    pub fn new(gateway: Gateway, max_response_bytes: usize, cancel: watch::Receiver<bool>) -> Self {
        GatewayService {
            gateway,
            max_response_bytes,
            cancel,
        }
    }

    /// Runs `work` unless the server cancels in-flight calls first.
    async fn cancellable<T>(
        &self,
        work: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let mut cancel = self.cancel.clone();
        tokio::select! {
            result = work => result,
            _ = cancel.wait_for(|cancelled| *cancelled) => Err(Status::from(Error::ShuttingDown)),
        }
    }

    fn check_size(&self, message: &pb::ExecuteResponse) -> Result<(), Error> {
        let size = message.encoded_len();
        if size > self.max_response_bytes {
            return Err(Error::ResponseTooLarge {
                size,
                limit: self.max_response_bytes,
            });
        }
        Ok(())
    }
}

/// The client's deadline from the `grpc-timeout` header (e.g. `250m`).
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let raw = metadata.get("grpc-timeout")?.to_str().ok()?;
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

/// The call's context: the client's deadline, less a margin so that the
/// client gets this gateway's DEADLINE_EXCEEDED rather than a cut call.
fn context(metadata: &MetadataMap, tx_id: String) -> gateway::CallContext {
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
fn to_request(
    message: pb::ExecuteRequest,
    context: gateway::CallContext,
) -> Result<gateway::Request, Status> {
    let params = convert::params_from_proto(message.params)?;
    let named = convert::named_from_proto(message.named_params)?;
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

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A proto batch as a gateway batch.
fn to_batch_request(
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
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(gateway::BatchRequest {
        dialect: message.dialect,
        statements,
        target: non_empty(message.target),
        options: convert::options_from_proto(message.options)?,
        context,
    })
}

/// One statement RPC as it is logged: its name, dialect and start.
struct Call {
    rpc: &'static str,
    dialect: String,
    started: Instant,
}

impl Call {
    fn start(rpc: &'static str, dialect: &str) -> Self {
        Call {
            rpc,
            dialect: dialect.to_owned(),
            started: Instant::now(),
        }
    }

    /// Logs the outcome: the engine that answered, or the status code.
    fn log(&self, outcome: Result<&str, &Status>) {
        let (rpc, dialect) = (self.rpc, self.dialect.as_str());
        let elapsed_us = self.started.elapsed().as_micros() as u64;
        match outcome {
            Ok(engine) => tracing::debug!(rpc, dialect, engine, elapsed_us, "ok"),
            Err(status) => {
                tracing::info!(rpc, dialect, elapsed_us, code = ?status.code(), "failed");
            }
        }
    }
}

#[tonic::async_trait]
impl pb::gateway_server::Gateway for GatewayService {
    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let call = Call::start("Execute", &message.dialect);
        let context = context(&metadata, message.tx_id.clone());
        let outcome = self
            .cancellable(async {
                let response = self.gateway.execute(to_request(message, context)?).await?;
                let reply = result_to_proto(response.result, response.engine);
                self.check_size(&reply)?;
                Ok::<_, Status>(reply)
            })
            .await;
        call.log(outcome.as_ref().map(|r| r.engine.as_str()));
        outcome.map(Response::new)
    }

    type ExecuteStreamStream = ReceiverStream<Result<pb::ExecuteResponse, Status>>;

    async fn execute_stream(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStreamStream>, Status> {
        let (metadata, _, message) = request.into_parts();
        let call = Call::start("ExecuteStream", &message.dialect);
        let context = context(&metadata, message.tx_id.clone());
        let outcome = self
            .cancellable(async {
                Ok(self
                    .gateway
                    .execute_stream(to_request(message, context)?)
                    .await?)
            })
            .await;
        call.log(outcome.as_ref().map(|r| r.engine.as_str()));
        let response = outcome?;
        // A small channel: the gateway holds at most a couple of batches.
        let (tx, rx) = mpsc::channel(2);
        let service = self.clone();
        tokio::spawn(async move {
            let errors = tx.clone();
            if let Err(status) = service
                .cancellable(service.forward(response.engine, response.stream, tx))
                .await
            {
                let _ = errors.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn execute_batch(
        &self,
        request: Request<pb::ExecuteBatchRequest>,
    ) -> Result<Response<pb::ExecuteBatchResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let call = Call::start("ExecuteBatch", &message.dialect);
        let context = context(&metadata, message.tx_id.clone());
        let outcome = self
            .cancellable(async {
                let batch = to_batch_request(message, context)?;
                let response = self.gateway.execute_batch(batch).await?;
                let engine = response.engine;
                let results = response
                    .results
                    .into_iter()
                    .map(|outcome| pb::BatchResult {
                        outcome: Some(match outcome {
                            Ok(result) => pb::batch_result::Outcome::Result(result_to_proto(
                                result,
                                engine.clone(),
                            )),
                            Err(e) => pb::batch_result::Outcome::Error(status::statement_error(
                                &Error::Driver(e),
                            )),
                        }),
                    })
                    .collect();
                let reply = pb::ExecuteBatchResponse { results, engine };
                let size = reply.encoded_len();
                if size > self.max_response_bytes {
                    return Err(Status::from(Error::ResponseTooLarge {
                        size,
                        limit: self.max_response_bytes,
                    }));
                }
                Ok(reply)
            })
            .await;
        call.log(outcome.as_ref().map(|r| r.engine.as_str()));
        outcome.map(Response::new)
    }

    async fn list_engines(
        &self,
        request: Request<pb::ListEnginesRequest>,
    ) -> Result<Response<pb::ListEnginesResponse>, Status> {
        let context = context(request.metadata(), String::new());
        let engines = self
            .gateway
            .engines(&context)
            .await
            .into_iter()
            .map(|e| {
                let (status, message) = match e.health {
                    Health::Serving => (pb::health::Status::Serving, String::new()),
                    Health::NotServing(why) => (pb::health::Status::NotServing, why),
                };
                pb::EngineInfo {
                    name: e.name,
                    kind: e.kind,
                    dialects: e.dialects,
                    health: Some(pb::Health {
                        status: status.into(),
                        message,
                    }),
                    pool: Some(pool_to_proto(e.pool)),
                    counters: e.counters.into_iter().collect(),
                }
            })
            .collect();
        let transactions = self
            .gateway
            .transaction_counters()
            .await
            .into_iter()
            .collect();
        Ok(Response::new(pb::ListEnginesResponse {
            engines,
            transactions,
        }))
    }

    async fn begin(
        &self,
        request: Request<pb::BeginRequest>,
    ) -> Result<Response<pb::BeginResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let idle_timeout = message
            .idle_timeout
            .map(|t| {
                Duration::try_from(t).map_err(|_| {
                    Status::invalid_argument("idle_timeout must be a positive duration")
                })
            })
            .transpose()?;
        let options = crate::tx::TxOptions {
            idle_timeout,
            read_only: message.read_only,
        };
        let (tx_id, idle) = self
            .gateway
            .begin_id(&context(&metadata, String::new()), &options);
        let expires_at = std::time::SystemTime::now() + idle;
        Ok(Response::new(pb::BeginResponse {
            tx_id,
            expires_at: Some(expires_at.into()),
        }))
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        // Not cancellable at shutdown: a commit, once begun, finishes.
        let engines = self
            .gateway
            .commit(&context(&metadata, String::new()), &message.tx_id)
            .await?;
        Ok(Response::new(pb::CommitResponse { engines }))
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        self.gateway
            .rollback(&context(&metadata, String::new()), &message.tx_id)
            .await?;
        Ok(Response::new(pb::RollbackResponse {}))
    }

    async fn describe(
        &self,
        request: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let description = self
            .gateway
            .describe(gateway::DescribeRequest {
                target: non_empty(message.target),
                dialect: non_empty(message.dialect),
                name: non_empty(message.name),
                context: context(&metadata, String::new()),
            })
            .await?;
        Ok(Response::new(pb::DescribeResponse {
            engine: description.engine,
            kind: description.kind,
            objects: description.objects.iter().map(object_to_proto).collect(),
            pool: Some(pool_to_proto(description.pool)),
        }))
    }
}

impl GatewayService {
    /// Sends a row stream's batches to the client: columns in the first
    /// message, rows_affected in the last. Stops when the client goes away.
    async fn forward(
        &self,
        engine: String,
        stream: RowStream,
        tx: mpsc::Sender<Result<pb::ExecuteResponse, Status>>,
    ) -> Result<(), Status> {
        let RowStream {
            columns,
            mut batches,
            rows_affected,
        } = stream;
        let mut columns = Some(columns_to_proto(columns));
        while let Some(batch) = batches.next().await {
            let message = match batch {
                Ok(rows) => {
                    let message = pb::ExecuteResponse {
                        columns: columns.take().unwrap_or_default(),
                        rows: rows_to_proto(rows),
                        rows_affected: 0,
                        engine: engine.clone(),
                    };
                    self.check_size(&message)
                        .map(|()| message)
                        .map_err(Status::from)
                }
                Err(e) => Err(Status::from(Error::Driver(e))),
            };
            let failed = message.is_err();
            if tx.send(message).await.is_err() || failed {
                return Ok(()); // the client cancelled, or the stream ended in an error
            }
        }
        let last = pb::ExecuteResponse {
            columns: columns.take().unwrap_or_default(),
            rows: Vec::new(),
            rows_affected: rows_affected.load(std::sync::atomic::Ordering::Relaxed),
            engine,
        };
        let _ = tx.send(Ok(last)).await;
        Ok(())
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
