//! Every call that runs out of its deadline answers DEADLINE_EXCEEDED.
//!
//! tonic's server arms a timer of its own from the `grpc-timeout` header
//! when a call arrives, and answers CANCELLED ("Timeout expired") when it
//! fires; the gateway's handlers time their work from when they start,
//! which on a busy machine is later, so the call could end either way, and
//! retry policies treat the two codes differently. This layer sits inside
//! tonic's timer and is called in the same instant (tower calls are
//! synchronous), arms its own deadline a moment before it, and answers
//! DEADLINE_EXCEEDED then: tonic's timer polls the call before itself, and
//! timers fire in order, so this answer always comes first. The
//! handlers' own deadline (a margin earlier still) normally answers
//! before either, with the cut statement's details.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

/// How much earlier than tonic's timer this layer answers.
const EARLY: Duration = Duration::from_millis(2);

/// The layer (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// A service whose calls answer DEADLINE_EXCEEDED at their deadline.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(super::request::parse_grpc_timeout);
        let call = self.inner.call(request);
        let Some((timeout, at)) = timeout.and_then(|t| {
            let at = Instant::now().checked_add(t.saturating_sub(EARLY))?;
            Some((t, at))
        }) else {
            return Box::pin(call);
        };
        Box::pin(async move {
            match tokio::time::timeout_at(at, call).await {
                Ok(answer) => answer,
                Err(_) => Ok(cut(timeout).into_http()),
            }
        })
    }
}

/// What a call cut here answers: DEADLINE_EXCEEDED, not retryable, with
/// its own reason (`DEADLINE_CUT`). Unlike a deadline the core noticed
/// (its statement cancelled on the engine, retryable), the gateway was
/// still at work when this one passed, so what the call did may have
/// happened: a write sent, a commit under way (it goes on, and a Commit
/// called again answers its outcome).
fn cut(timeout: Duration) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let metadata = std::collections::HashMap::from([("retryable".to_owned(), "false".to_owned())]);
    tonic::Status::with_error_details(
        tonic::Code::DeadlineExceeded,
        format!(
            "the call's deadline ({timeout:?}) passed while the gateway was still at work on it: \
             what it did may have happened (a write, a commit); read before retrying, and call \
             Commit again to hear a commit's outcome"
        ),
        ErrorDetails::with_error_info("DEADLINE_CUT", super::status::ERROR_DOMAIN, metadata),
    )
}
