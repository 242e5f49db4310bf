//! The gRPC service `omnigate.v1.Gateway`: turns proto requests into
//! gateway calls and results back into proto responses. Nothing below it
//! knows about gRPC.

use std::future::Future;
use std::time::Duration;

use convert::{object_to_proto, pool_to_proto};
use futures::StreamExt;
use omnigate_drivers::{Health, RowStream, Rows};
use omnigate_proto::encoded::EncodedReply;
use omnigate_proto::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::reply::{self, Outcome, Reply};
use super::request::{self, Call, context, non_empty, to_batch_request, to_request};
use super::{convert, status};
use omnigate::error::Error;
use omnigate::{self as gateway, Gateway};

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
            _ = cancel.wait_for(|cancelled| *cancelled) => Err(status::status(Error::ShuttingDown)),
        }
    }

    /// The call's context, with its caller authenticated from the
    /// `authorization` metadata.
    fn context(
        &self,
        metadata: &MetadataMap,
        extensions: &tonic::Extensions,
        tx_id: String,
    ) -> Result<gateway::CallContext, Status> {
        let caller = request::caller(&self.gateway, metadata, extensions)?;
        Ok(context(metadata, tx_id).as_caller(caller))
    }
}

#[tonic::async_trait]
impl pb::gateway_server::Gateway for GatewayService {
    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<EncodedReply>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let call = Call::start("Execute", &message.dialect, &message.statement, &metadata);
        let context = self.context(&metadata, &extensions, message.tx_id.clone())?;
        let outcome = self
            .cancellable(async {
                let response = self
                    .gateway
                    .execute(to_request(message, context)?)
                    .await
                    .map_err(status::status)?;
                let result = &response.result;
                let reply = Reply {
                    columns: &result.columns,
                    rows: &result.rows,
                    rows_affected: result.rows_affected,
                    engine: &response.engine,
                }
                .encode(self.max_response_bytes)
                .map_err(status::status)?;
                Ok::<_, Status>((reply, response.engine))
            })
            .instrument(call.span())
            .await;
        call.log(outcome.as_ref().map(|(_, engine)| &**engine));
        outcome.map(|(reply, _)| Response::new(reply))
    }

    type ExecuteStreamStream = ReceiverStream<Result<EncodedReply, Status>>;

    async fn execute_stream(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStreamStream>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let call = Call::start(
            "ExecuteStream",
            &message.dialect,
            &message.statement,
            &metadata,
        );
        let context = self.context(&metadata, &extensions, message.tx_id.clone())?;
        let outcome = self
            .cancellable(async {
                self.gateway
                    .execute_stream(to_request(message, context)?)
                    .await
                    .map_err(status::status)
            })
            .instrument(call.span())
            .await;
        call.log(outcome.as_ref().map(|r| &*r.engine));
        let response = outcome?;
        // A small channel: the gateway holds at most a couple of batches.
        let (tx, rx) = mpsc::channel(2);
        let service = self.clone();
        tokio::spawn(async move {
            let errors = tx.clone();
            if let Err(status) = service
                .cancellable(service.forward(&response.engine, response.stream, tx))
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
    ) -> Result<Response<EncodedReply>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let shape = format!("{} statements", message.statements.len());
        let call = Call::start("ExecuteBatch", &message.dialect, &shape, &metadata);
        let context = self.context(&metadata, &extensions, message.tx_id.clone())?;
        let outcome = self
            .cancellable(async {
                let batch = to_batch_request(message, context)?;
                let response = self
                    .gateway
                    .execute_batch(batch)
                    .await
                    .map_err(status::status)?;
                let engine = &*response.engine;
                let results: Vec<_> = (response.results.into_iter())
                    .map(|outcome| outcome.map_err(|e| status::statement_error(&Error::Driver(e))))
                    .collect();
                let outcomes = results
                    .iter()
                    .map(|outcome| match outcome {
                        Ok(result) => Outcome::Result(Reply {
                            columns: &result.columns,
                            rows: &result.rows,
                            rows_affected: result.rows_affected,
                            engine,
                        }),
                        Err(error) => Outcome::Error(error),
                    })
                    .collect();
                let reply = reply::encode_batch(outcomes, engine, self.max_response_bytes)
                    .map_err(status::status)?;
                Ok((reply, response.engine.clone()))
            })
            .instrument(call.span())
            .await;
        call.log(outcome.as_ref().map(|(_, engine)| &**engine));
        outcome.map(|(reply, _)| Response::new(reply))
    }

    async fn list_engines(
        &self,
        request: Request<pb::ListEnginesRequest>,
    ) -> Result<Response<pb::ListEnginesResponse>, Status> {
        let context = self.context(request.metadata(), request.extensions(), String::new())?;
        let engines = self
            .gateway
            .engines(&context)
            .await
            .map_err(status::status)?
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
        let (metadata, extensions, message) = request.into_parts();
        let idle_timeout = message
            .idle_timeout
            .map(|t| {
                Duration::try_from(t).map_err(|_| {
                    Status::invalid_argument("idle_timeout must be a positive duration")
                })
            })
            .transpose()?;
        let options = omnigate::tx::TxOptions {
            idle_timeout,
            read_only: message.read_only,
            restricted: false,
        };
        let (tx_id, idle) = self
            .gateway
            .begin_id(
                &self.context(&metadata, &extensions, String::new())?,
                &options,
            )
            .map_err(status::status)?;
        // In range: begin_id bounds the idle timeout.
        let expires_at = std::time::SystemTime::now()
            .checked_add(idle)
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        Ok(Response::new(pb::BeginResponse {
            tx_id,
            expires_at: Some(expires_at.into()),
        }))
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        // Not cancellable at shutdown: a commit, once begun, finishes.
        let engines = self
            .gateway
            .commit(
                &self.context(&metadata, &extensions, String::new())?,
                &message.tx_id,
            )
            .await
            .map_err(status::status)?;
        Ok(Response::new(pb::CommitResponse { engines }))
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        self.gateway
            .rollback(
                &self.context(&metadata, &extensions, String::new())?,
                &message.tx_id,
            )
            .await
            .map_err(status::status)?;
        Ok(Response::new(pb::RollbackResponse {}))
    }

    async fn list_transactions(
        &self,
        request: Request<pb::ListTransactionsRequest>,
    ) -> Result<Response<pb::ListTransactionsResponse>, Status> {
        let (metadata, extensions, _) = request.into_parts();
        let listed = self
            .gateway
            .list_transactions(&self.context(&metadata, &extensions, String::new())?)
            .await
            .map_err(status::status)?;
        Ok(Response::new(pb::ListTransactionsResponse {
            transactions: listed.into_iter().map(transaction_info).collect(),
        }))
    }

    async fn resolve_transaction(
        &self,
        request: Request<pb::ResolveTransactionRequest>,
    ) -> Result<Response<pb::ResolveTransactionResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let outcome = self
            .gateway
            .resolve_transaction(
                &self.context(&metadata, &extensions, String::new())?,
                &message.tx_id,
                message.commit,
            )
            .await
            .map_err(status::status)?;
        Ok(Response::new(pb::ResolveTransactionResponse { outcome }))
    }

    async fn drain_engine(
        &self,
        request: Request<pb::DrainEngineRequest>,
    ) -> Result<Response<pb::DrainEngineResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let context = self.context(&metadata, &extensions, String::new())?;
        let left = self
            .gateway
            .drain_engine(&context, &message.engine)
            .await
            .map_err(status::status)?;
        Ok(Response::new(pb::DrainEngineResponse {
            calls_in_flight: left.calls,
            transactions_in_flight: left.transactions,
            idle: left.idle(),
        }))
    }

    async fn resume_engine(
        &self,
        request: Request<pb::ResumeEngineRequest>,
    ) -> Result<Response<pb::ResumeEngineResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let context = self.context(&metadata, &extensions, String::new())?;
        self.gateway
            .resume_engine(&context, &message.engine)
            .map_err(status::status)?;
        Ok(Response::new(pb::ResumeEngineResponse {}))
    }

    async fn describe(
        &self,
        request: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let description = self
            .gateway
            .describe(gateway::DescribeRequest {
                target: non_empty(message.target),
                dialect: non_empty(message.dialect),
                name: non_empty(message.name),
                context: self.context(&metadata, &extensions, String::new())?,
            })
            .await
            .map_err(status::status)?;
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
        engine: &str,
        stream: RowStream,
        tx: mpsc::Sender<Result<EncodedReply, Status>>,
    ) -> Result<(), Status> {
        let RowStream {
            columns,
            mut batches,
            rows_affected,
        } = stream;
        let mut columns = Some(columns);
        while let Some(batch) = batches.next().await {
            let message = match batch {
                Ok(rows) => Reply {
                    columns: columns.take().as_deref().unwrap_or_default(),
                    rows: &rows,
                    rows_affected: 0,
                    engine,
                }
                .encode(self.max_response_bytes)
                .map_err(status::status),
                Err(e) => Err(status::status(Error::Driver(e))),
            };
            let failed = message.is_err();
            if tx.send(message).await.is_err() || failed {
                return Ok(()); // the client cancelled, or the stream ended in an error
            }
        }
        let last = Reply {
            columns: columns.take().as_deref().unwrap_or_default(),
            rows: &Rows::new(),
            rows_affected: rows_affected.load(std::sync::atomic::Ordering::Relaxed),
            engine,
        }
        .encode(self.max_response_bytes)
        .map_err(status::status);
        let _ = tx.send(last).await;
        Ok(())
    }
}

/// A transaction for operators, as the API sends it.
fn transaction_info(info: omnigate::tx::TxInfo) -> pb::TransactionInfo {
    use omnigate::tx::TxState;
    use pb::transaction_info::State;
    let state = match info.state {
        TxState::Active => State::Active,
        TxState::Prepared => State::Prepared,
        TxState::Committing => State::Committing,
        TxState::FailedAfterCommit => State::FailedAfterCommit,
    };
    pb::TransactionInfo {
        tx_id: info.tx_id,
        state: state as i32,
        engines: info.engines,
        age: info
            .age
            .and_then(|age| prost_types::Duration::try_from(age).ok()),
        detail: info.detail,
        writes: info
            .writes
            .into_iter()
            .map(|args| pb::Write {
                args: args.into_iter().map(Vec::from).collect(),
            })
            .collect(),
    }
}
