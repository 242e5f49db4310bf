//! The gateway's errors: routing, configuration, and the drivers' errors.

use std::path::PathBuf;

use omnigate_drivers::Error as DriverError;

/// An error of a gateway call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine failed the statement.
    #[error(transparent)]
    Driver(#[from] DriverError),

    /// The caller's credentials are missing or name nobody.
    #[error("unauthenticated: {why}")]
    Unauthenticated {
        /// What to fix (the same words for a wrong, unknown or revoked
        /// token).
        why: &'static str,
    },

    /// The caller's grant does not allow the call.
    #[error("permission denied: principal {principal} may not {action} (denied by {rule})")]
    PermissionDenied {
        /// The caller.
        principal: String,
        /// What it tried.
        action: String,
        /// The rule that denied it (its config key or name).
        rule: String,
    },

    /// A caller's statement named what the gateway keeps for itself on an
    /// engine (its transaction markers or log), which no caller may read
    /// or write: a forged or deleted marker would decide a transaction.
    #[error(
        "statements may not name {what} on engine {engine}: the gateway keeps its transactions' \
         state there; see transactions with `omnigate tx list`"
    )]
    GatewayState {
        /// The engine.
        engine: String,
        /// What the statement named (e.g. "the schema omnigate").
        what: String,
    },

    /// The caller is over one of its limits.
    #[error("principal {principal} is over its limit of {limit}{}", retry_after.map(|d| format!("; retry in {d:?}")).unwrap_or_default())]
    LimitExceeded {
        /// The caller.
        principal: String,
        /// The limit.
        limit: String,
        /// When a retry may pass (the rate limit).
        retry_after: Option<std::time::Duration>,
    },

    /// An engine has as many calls in flight as it may: new ones fail
    /// at once rather than queue without bound.
    #[error(
        "engine {engine} has {limit} calls in flight, its limit \
         (engines.{engine}.max_in_flight): retry with backoff, or raise the limit"
    )]
    EngineBusy {
        /// The engine.
        engine: String,
        /// The limit.
        limit: usize,
    },

    /// The engine was drained by an operator.
    #[error(
        "engine {engine} is drained: it takes no new calls until an operator resumes it \
         (omnigate engine resume {engine})"
    )]
    EngineDrained {
        /// The engine.
        engine: String,
    },

    /// No dialect was named.
    #[error("dialect is required: one of {}", configured.join(", "))]
    MissingDialect {
        /// The dialects the configured engines serve.
        configured: Vec<String>,
    },

    /// The dialect is unknown, or no configured engine serves it.
    #[error("unknown dialect {dialect:?}: configured dialects are {}", configured.join(", "))]
    UnknownDialect {
        /// The dialect asked for.
        dialect: String,
        /// The dialects the configured engines serve.
        configured: Vec<String>,
    },

    /// No engine has this name.
    #[error("unknown target {target:?}: configured engines are {}", known.join(", "))]
    UnknownTarget {
        /// The name asked for.
        target: String,
        /// The configured engine names.
        known: Vec<String>,
    },

    /// The named engine does not serve the dialect.
    #[error("engine {target:?} does not serve the {dialect} dialect (it serves {})", serves.join(", "))]
    DialectNotServed {
        /// The engine.
        target: String,
        /// The dialect asked for.
        dialect: String,
        /// What it serves.
        serves: Vec<String>,
    },

    /// Several engines serve the dialect and no target was named.
    #[error("several engines serve the {dialect} dialect: set target to one of {}", candidates.join(", "))]
    AmbiguousTarget {
        /// The dialect.
        dialect: String,
        /// The engines that serve it.
        candidates: Vec<String>,
    },

    /// No transaction has this id.
    #[error("unknown transaction {id:?}: begin one with Begin and pass the tx_id it returns")]
    TxNotFound {
        /// The id asked for.
        id: String,
    },

    /// Another call is committing or rolling the transaction back now.
    #[error(
        "transaction {id} is being committed or rolled back by another call: a Commit of it \
         waits for and answers that outcome"
    )]
    TxEnding {
        /// The id asked for (cut short).
        id: String,
    },

    /// The transaction has ended.
    #[error("transaction {id} {}: begin a new one", how.as_str())]
    TxEnded {
        /// The id asked for.
        id: String,
        /// How it ended.
        how: Ended,
    },

    /// The transaction could not commit and was rolled back everywhere.
    #[error("the transaction was rolled back on every engine: {why}")]
    TxAborted {
        /// What doomed it.
        why: String,
    },

    /// A second engine without a prepare step in one transaction.
    #[error(
        "engines {first} and {second} both take part live without a prepare step, and a \
         transaction may have one such engine (its commit decides a cross-engine commit): \
         run the statements for {second} in another transaction (this one is still open)"
    )]
    TxTwoDeciders {
        /// The engine already in the transaction.
        first: String,
        /// The engine the refused statement was for.
        second: String,
    },

    /// The transaction log could not be opened or written.
    #[error("the transaction log failed ({why}); the transaction was rolled back on every engine")]
    TxLog {
        /// What failed.
        why: String,
    },

    /// The commit's outcome is not known: the deciding engine's commit, or
    /// a single engine's, may or may not have happened. Not to be retried
    /// as if nothing happened.
    #[error(
        "the transaction's outcome is not known ({why}): with several engines, recovery \
         finishes it on every engine, all or nothing, within [transactions] \
         recovery_interval; Commit again to hear the outcome once known, or read the data"
    )]
    TxInDoubt {
        /// What failed.
        why: String,
    },

    /// An operator's resolution that would contradict a recorded decision,
    /// or that cannot be carried out now.
    #[error("cannot resolve the transaction: {why}")]
    TxResolve {
        /// Why.
        why: String,
    },

    /// Committed, but a buffered engine failed a write when applying it.
    #[error(
        "the transaction committed, but engine {engine} failed a write when applying it \
         ({why}); it is recorded as failed-after-commit for operators"
    )]
    TxFailedAfterCommit {
        /// The engine.
        engine: String,
        /// What failed.
        why: String,
    },

    /// A statement would take a transaction past what it may buffer until
    /// commit; it was not run, and the transaction is still usable.
    #[error(
        "the transaction may buffer {statements} statements and {bytes} bytes on engines that \
         apply its writes at commit ([transactions] max_buffered_statements and \
         max_buffered_bytes, or the principal's limits); commit it and continue in another"
    )]
    TxBufferFull {
        /// Statements it may buffer.
        statements: u64,
        /// Bytes it may buffer.
        bytes: u64,
    },

    /// An option of the call is out of its range.
    #[error("{option}: {why}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong, and what is allowed.
        why: String,
    },

    /// A parameter could not be read.
    #[error("parameter {param}: {message}")]
    BadParameter {
        /// Which parameter.
        param: ParamRef,
        /// What is wrong.
        message: String,
    },

    /// The encoded response would exceed the message limit.
    #[error(
        "the result is {size} bytes, over the {limit}-byte message limit: use ExecuteStream or lower max_rows"
    )]
    ResponseTooLarge {
        /// The encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// The call was cancelled because the server is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

/// A parameter of a request: `$1` (positional) or `$name` (named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamRef {
    /// The 1-based position.
    Position(usize),
    /// The name.
    Name(String),
}

impl std::fmt::Display for ParamRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamRef::Position(index) => write!(f, "${index}"),
            ParamRef::Name(name) => write!(f, "${name}"),
        }
    }
}

/// A configuration error: what is wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is malformed or invalid.
    #[error("invalid configuration{}: {message}", file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default())]
    Invalid {
        /// The file, when read from one.
        file: Option<PathBuf>,
        /// What is wrong, with the key and line when known.
        message: String,
    },
    /// An engine could not be started.
    #[error("engine {name}: {source}")]
    Engine {
        /// The engine's name.
        name: String,
        /// Why.
        #[source]
        source: DriverError,
    },
}

/// How a transaction ended, as later callers are told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ended {
    /// Committed.
    Committed,
    /// Rolled back by its caller, or because a statement failed on an
    /// engine that aborts the transaction.
    RolledBack,
    /// Idle past its timeout, then rolled back.
    Expired,
    /// Its commit's outcome was not known when it ended: recovery decides.
    #[default]
    InDoubt,
}

impl Ended {
    /// How it ended, in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Committed => "was committed",
            Ended::RolledBack => "was rolled back",
            Ended::Expired => "expired (idle past its idle timeout) and was rolled back",
            Ended::InDoubt => {
                "ended with its outcome in doubt (recovery finishes it, all or nothing)"
            }
        }
    }
}

/// What kind of failure an error is, in the canonical codes of
/// `google.rpc.Code`: each front end maps a class to its protocol (a gRPC
/// status code, a SQLSTATE class, a RESP error prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The request is wrong as written: fix it before sending it again.
    InvalidArgument,
    /// What the request names does not exist.
    NotFound,
    /// The request is well formed but the state it needs does not hold.
    FailedPrecondition,
    /// Lost to a concurrent change: the whole operation may be retried.
    Aborted,
    /// Its deadline passed before it finished.
    DeadlineExceeded,
    /// The engine (or the gateway) cannot serve it now: retry later.
    Unavailable,
    /// A value out of its type's range.
    OutOfRange,
    /// A limit or a pool ran out.
    ResourceExhausted,
    /// The caller may not do this.
    PermissionDenied,
    /// The caller did not say who it is, or said it wrongly.
    Unauthenticated,
    /// The engine or the gateway does not do this.
    Unimplemented,
    /// The outcome is unknown (a commit in doubt).
    Unknown,
    /// A fault of the gateway or of an engine.
    Internal,
}

/// The class of a driver error.
pub fn driver_class(err: &DriverError) -> Class {
    match err {
        DriverError::InvalidStatement(_)
        | DriverError::InvalidParameter { .. }
        | DriverError::InvalidNamedParameter { .. } => Class::InvalidArgument,
        DriverError::NotFound(_) => Class::NotFound,
        DriverError::ConstraintViolation(_)
        | DriverError::Precondition(_)
        | DriverError::AppliedInPart(_)
        | DriverError::ReadOnly(_) => Class::FailedPrecondition,
        DriverError::Conflict(_) => Class::Aborted,
        DriverError::Timeout { .. } => Class::DeadlineExceeded,
        DriverError::Unavailable(_) => Class::Unavailable,
        DriverError::OutOfRange(_) => Class::OutOfRange,
        DriverError::PoolExhausted { .. }
        | DriverError::ResultTooLarge { .. }
        | DriverError::TooManyRows { .. }
        | DriverError::Overloaded(_) => Class::ResourceExhausted,
        DriverError::PermissionDenied(_) => Class::PermissionDenied,
        DriverError::NotSupported { .. } => Class::Unimplemented,
        _ => Class::Internal,
    }
}

impl Error {
    /// The error's class and its kind: the reason front ends report
    /// (gRPC's `ErrorInfo.reason`) and metrics count it by.
    pub fn class_and_kind(&self) -> (Class, &'static str) {
        use Class::*;
        match self {
            Error::Driver(e) => (driver_class(e), e.kind()),
            Error::MissingDialect { .. } => (InvalidArgument, "MISSING_DIALECT"),
            Error::UnknownDialect { .. } => (InvalidArgument, "UNKNOWN_DIALECT"),
            Error::UnknownTarget { .. } => (NotFound, "UNKNOWN_TARGET"),
            Error::DialectNotServed { .. } => (InvalidArgument, "DIALECT_NOT_SERVED"),
            Error::AmbiguousTarget { .. } => (InvalidArgument, "AMBIGUOUS_TARGET"),
            Error::TxNotFound { .. } => (NotFound, "TX_NOT_FOUND"),
            Error::TxEnded { .. } => (FailedPrecondition, "TX_ENDED"),
            Error::TxAborted { .. } => (Aborted, "TX_ABORTED"),
            Error::TxTwoDeciders { .. } => (FailedPrecondition, "TX_TWO_DECIDERS"),
            Error::TxResolve { .. } => (FailedPrecondition, "TX_RESOLVE"),
            Error::TxLog { .. } => (Unavailable, "TX_LOG"),
            // Not Unavailable: retry policies retry that as if nothing happened.
            Error::TxInDoubt { .. } => (Unknown, "TX_IN_DOUBT"),
            Error::TxBufferFull { .. } => (ResourceExhausted, "TX_BUFFER_FULL"),
            Error::TxEnding { .. } => (FailedPrecondition, "TX_ENDING"),
            Error::TxFailedAfterCommit { .. } => (FailedPrecondition, "TX_FAILED_AFTER_COMMIT"),
            Error::BadParameter { .. } => (InvalidArgument, "INVALID_PARAMETER"),
            Error::InvalidOption { .. } => (InvalidArgument, "INVALID_OPTION"),
            Error::ResponseTooLarge { .. } => (ResourceExhausted, "RESPONSE_TOO_LARGE"),
            Error::ShuttingDown => (Unavailable, "SHUTTING_DOWN"),
            Error::EngineDrained { .. } => (Unavailable, "ENGINE_DRAINED"),
            Error::EngineBusy { .. } => (ResourceExhausted, "ENGINE_BUSY"),
            Error::Unauthenticated { .. } => (Unauthenticated, "UNAUTHENTICATED"),
            Error::PermissionDenied { .. } => (PermissionDenied, "PERMISSION_DENIED"),
            Error::GatewayState { .. } => (PermissionDenied, "GATEWAY_STATE"),
            Error::LimitExceeded { .. } => (ResourceExhausted, "LIMIT_EXCEEDED"),
        }
    }

    /// The error's class.
    pub fn class(&self) -> Class {
        self.class_and_kind().0
    }

    /// The error's kind, as front ends report it and metrics count it.
    pub fn kind(&self) -> &'static str {
        self.class_and_kind().1
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Driver(e) => e.is_retryable(),
            Error::ShuttingDown
            | Error::TxAborted { .. }
            | Error::LimitExceeded { .. }
            | Error::EngineBusy { .. } => true,
            _ => false,
        }
    }
}

impl ConfigError {
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                file: Some(path.to_owned()),
                message,
            },
            other => other,
        }
    }
}

/// How long a caller-given name or id may be when quoted in an error.
const QUOTED_MAX: usize = 64;

/// `text` as an error quotes it: cut to a short prefix (a caller may send
/// a megabyte as an id), on a character boundary, marked when cut.
pub fn short(text: &str) -> String {
    if text.len() <= QUOTED_MAX {
        return text.to_owned();
    }
    let mut end = QUOTED_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// The result of gateway calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
