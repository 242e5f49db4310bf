//! The `[security]` section and the `[principals.*]` tables: who may call
//! and what each caller may do (see `crate::security` for how they are
//! enforced).
//!
//! ```toml
//! [security]
//! tokens_file = "/etc/omnigate/tokens.toml"  # more [principals.*], re-read when it changes
//! allow_anonymous = false                    # no principals on a non-loopback listener
//! reflection = "auto"                        # auto | open | authenticated
//!
//! [security.tls]
//! cert = "/etc/omnigate/server.crt"
//! key = "/etc/omnigate/server.key"
//! client_ca = "/etc/omnigate/clients-ca.crt" # optional: mutual TLS
//! client_name = "subject_cn"                 # or "san_dns": what names a client's principal
//!
//! [principals.billing]
//! token_sha256 = "9f86d0…"                   # `omnigate token new billing` prints it
//! scram_sha256 = "SCRAM-SHA-256$4096:…"      # and this: the token as a PostgreSQL-wire password
//! engines = ["main-db", "cache"]             # default: every engine
//! dialects = ["sql", "redis"]                # default: every dialect
//! read_only = false
//! deny = [{ kind = "redis", pattern = '^\s*(FLUSHALL|FLUSHDB|KEYS|CONFIG)\b' }]
//! allow_commands = ["CONFIG|GET"]            # Redis @admin/@dangerous commands it may run
//! limits = { concurrent_calls = 32, calls_per_second = 500, max_rows = 10000 }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Security settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// A file of more `[principals.*]` tables, read at startup and again
    /// whenever it changes (tokens added or revoked without a restart).
    pub tokens_file: Option<PathBuf>,
    /// How often the tokens file and the TLS files are checked for a
    /// change.
    #[serde(with = "humantime_serde")]
    pub reload_poll: Duration,
    /// Run without principals on a listener that is not loopback (every
    /// caller may do everything). Meant for local use only.
    pub allow_anonymous: bool,
    /// Who may use gRPC server reflection.
    pub reflection: Reflection,
    /// TLS on the gRPC listener.
    pub tls: Option<TlsConfig>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            tokens_file: None,
            reload_poll: Duration::from_secs(1),
            allow_anonymous: false,
            reflection: Reflection::Auto,
            tls: None,
        }
    }
}

/// Who may use gRPC server reflection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reflection {
    /// Open when the gateway runs without principals, else authenticated.
    #[default]
    Auto,
    /// Anyone who can reach the port.
    Open,
    /// Only callers with valid credentials.
    Authenticated,
}

/// TLS on the gRPC listener (rustls). The files are read again when they
/// change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA (PEM) that client certificates must chain to: mutual TLS. A
    /// verified client certificate names a principal (see `client_name`);
    /// a client without one may still send a bearer token.
    pub client_ca: Option<PathBuf>,
    /// Which name of a client certificate is the principal's `certificate`.
    #[serde(default)]
    pub client_name: ClientName,
}

/// Which name of a verified client certificate identifies its principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientName {
    /// The subject's common name.
    #[default]
    SubjectCn,
    /// A DNS name of the subject alternative names (any of them).
    SanDns,
}

/// One principal: how it is recognised and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// The SHA-256 (hex) of its bearer token; the token itself is never
    /// stored.
    pub token_sha256: Option<String>,
    /// The token's SCRAM-SHA-256 verifier, in PostgreSQL's form
    /// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`): lets
    /// PostgreSQL-wire clients log in with the token as their password
    /// without sending it (`omnigate token new` prints it). Without it the
    /// token is accepted as a cleartext password over TLS only.
    pub scram_sha256: Option<String>,
    /// The name (see `[security.tls] client_name`) of its client
    /// certificate, for mutual TLS.
    pub certificate: Option<String>,
    /// The engines it may use (default: every engine).
    pub engines: Option<Vec<String>>,
    /// The dialects it may use (default: every dialect).
    pub dialects: Option<Vec<String>>,
    /// Only statements that do not write, enforced by each engine.
    #[serde(default)]
    pub read_only: bool,
    /// May list and resolve every transaction (operators).
    #[serde(default)]
    pub admin: bool,
    /// Statements it may not run, by pattern.
    #[serde(default)]
    pub deny: Vec<DenyRule>,
    /// Redis commands it may run although Redis files them under
    /// `@admin` or `@dangerous` (refused to principals otherwise), by
    /// name (`FLUSHDB`, `CONFIG`, `CONFIG|GET`) or all of them
    /// (`@admin`); and `@scripting` (or a script command's name) to run
    /// scripts although a `deny` rule applies on the engine.
    #[serde(default)]
    pub allow_commands: Vec<String>,
    /// Its limits.
    #[serde(default)]
    pub limits: PrincipalLimits,
}

/// A statement rule: statements matching `pattern` (a regular expression,
/// case-insensitive, searched anywhere in the statement) are denied, on the
/// engines the rule names (every engine when it names none). On the
/// `redis` dialect the pattern is searched in the parsed command, its name
/// in upper case and its arguments unquoted, one space apart (`'keys' *`
/// is matched as `KEYS *`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRule {
    /// The rule's name in a denial (default: its position, `deny[0]`).
    pub name: Option<String>,
    /// Only on this engine.
    pub engine: Option<String>,
    /// Only on engines of this kind (`postgres`, `redis`, ...).
    pub kind: Option<String>,
    /// Only in this dialect.
    pub dialect: Option<String>,
    /// The pattern.
    pub pattern: String,
}

/// What one principal may use at once (each unset: no limit).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalLimits {
    /// Calls running at once; one more fails at once.
    pub concurrent_calls: Option<u32>,
    /// Calls per second, sustained.
    pub calls_per_second: Option<u32>,
    /// Calls allowed in a burst above the rate (default: one second's).
    pub burst: Option<u32>,
    /// Rows per result (lower than the server's `max_rows`).
    pub max_rows: Option<u64>,
    /// Bytes per result (lower than the server's `max_response_bytes`).
    pub max_bytes: Option<u64>,
    /// Statements one transaction may buffer (lower than
    /// `[transactions] max_buffered_statements`).
    pub tx_buffered_statements: Option<u64>,
    /// Bytes one transaction may buffer (lower than `[transactions]
    /// max_buffered_bytes`).
    pub tx_buffered_bytes: Option<u64>,
}

/// A tokens file: `[principals.*]` tables only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    /// The principals, by name.
    #[serde(default)]
    pub principals: BTreeMap<String, PrincipalConfig>,
}
