//! The call context: what every step of a call may need to know about the
//! call itself rather than its statement — when the caller stops waiting,
//! who is calling, and (with transactions) which transaction it runs in.
//! One value, made once at the edge (the gRPC service, or a library
//! caller) and read by the pipeline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::security::Principal;

/// Who is calling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Caller {
    /// Nobody in particular: allowed only while the gateway runs without
    /// principals.
    #[default]
    Anonymous,
    /// A principal: its grant and limits apply.
    Principal(Arc<Principal>),
}

impl Caller {
    /// The principal, when there is one.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        match self {
            Caller::Anonymous => None,
            Caller::Principal(p) => Some(p),
        }
    }
}

/// The context of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// When the caller stops waiting (`None`: the server's default timeout
    /// alone bounds the call).
    pub deadline: Option<Instant>,
    /// Who is calling.
    pub caller: Caller,
    /// The transaction the call runs in (`None`: each statement commits
    /// on its own).
    pub tx_id: Option<String>,
}

impl CallContext {
    /// An anonymous call with no deadline of its own.
    pub fn anonymous() -> Self {
        CallContext::default()
    }

    /// This context, with the caller giving up `timeout` from now.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// This context, for `caller`.
    pub fn as_caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// This context, inside transaction `tx_id`.
    pub fn in_transaction(mut self, tx_id: impl Into<String>) -> Self {
        self.tx_id = Some(tx_id.into());
        self
    }

    /// The one timeout of a call: the shortest of what the request asks,
    /// the server's default (also the longest allowed), and the time left
    /// before the caller's deadline.
    pub fn timeout(&self, requested: Option<Duration>, server_default: Duration) -> Duration {
        let mut timeout = requested.map_or(server_default, |t| t.min(server_default));
        if let Some(deadline) = self.deadline {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_of_request_default_and_deadline_applies() {
        let default = Duration::from_secs(30);
        let open = CallContext::anonymous();
        assert_eq!(open.timeout(None, default), default);
        assert_eq!(
            open.timeout(Some(Duration::from_secs(60)), default),
            default,
            "a request cannot pass the server's default"
        );
        assert_eq!(
            open.timeout(Some(Duration::from_secs(2)), default),
            Duration::from_secs(2)
        );
        let soon = CallContext::anonymous().with_timeout(Duration::from_secs(1));
        let left = soon.timeout(Some(Duration::from_secs(2)), default);
        assert!(left <= Duration::from_secs(1) && left > Duration::from_millis(500));
    }
}
