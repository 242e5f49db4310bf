//! The `omnigate` command line: `serve` runs the gateway; `exec`,
//! `engines` and `describe` call a running one.

mod client;
pub mod engine;
pub mod exec;
pub mod health;
pub mod output;
pub mod params;
pub mod tx;

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use omnigate_proto::v1 as pb;
use serde_json::json;

use client::connect;
pub use exec::{ExecArgs, exec};
use omnigate::config::{Config, LogFormat, ProcessEnv};

/// Omnigate: one gRPC gateway in front of PostgreSQL, Redis, graph and
/// time-series engines.
#[derive(Debug, Parser)]
#[command(name = "omnigate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (with no --config: embedded engines `cache` (redis, ts) and `main` (sql)).
    Serve(ServeArgs),
    /// Run one statement on a running gateway and print the result.
    Exec(Box<ExecArgs>),
    /// List a running gateway's engines with health and pool statistics.
    Engines(ClientArgs),
    /// Check a running gateway's standard gRPC health (no token needed):
    /// exit 0 when it serves.
    Health(health::HealthArgs),
    /// Describe an engine's schema objects.
    Describe(DescribeArgs),
    /// Begin, commit or roll back a transaction on a running gateway.
    Tx(tx::TxArgs),
    /// Drain an engine (no new calls while those in flight finish), or resume it.
    Engine(engine::EngineArgs),
    /// Make bearer tokens for principals.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Check a config file and print the engines it declares.
    CheckConfig {
        /// The config file.
        #[arg(long, env = "OMNIGATE_CONFIG")]
        config: PathBuf,
    },
}

/// `omnigate token`.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Print a new random token (once: only its SHA-256 is kept) and the
    /// lines that give it to principal NAME in the tokens file.
    New {
        /// The principal's name.
        name: String,
    },
}

/// `omnigate token new NAME`: the token and the tokens-file lines.
pub fn token(action: TokenAction) -> Result<String, Failure> {
    match action {
        TokenAction::New { name } => {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(failure(
                    "a principal's name may hold only letters, digits, '-' and '_'",
                    2,
                ));
            }
            omnigate::security::tokens::new_principal_text(&name).map_err(|m| failure(m, 1))
        }
    }
}

/// `omnigate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML config file.
    #[arg(long, env = "OMNIGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The address to listen on (overrides the config).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Log format, text or json (overrides the config).
    #[arg(long)]
    pub log_format: Option<LogFormat>,
}

/// Where the running gateway is, and how to print.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The gateway's address: `http://HOST:PORT`, `https://HOST:PORT`
    /// (TLS), or `unix:/path/to.sock` (`[server] unix_socket`).
    #[arg(long, env = "OMNIGATE_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A bearer token for a gateway with principals (`omnigate token new`).
    #[arg(long, env = "OMNIGATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With an https:// address: the CA (PEM) that signed the gateway's
    /// certificate.
    #[arg(long, env = "OMNIGATE_CA")]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS, with --key.
    #[arg(long, env = "OMNIGATE_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, env = "OMNIGATE_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

/// `omnigate describe`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("engine").required(true).args(["target", "dialect"])))]
pub struct DescribeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The engine.
    #[arg(long, short)]
    target: Option<String>,
    /// Or the dialect whose engine to describe.
    #[arg(long, short)]
    dialect: Option<String>,
    /// Only the object with this name.
    #[arg(long)]
    name: Option<String>,
}

/// A CLI failure: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The message.
    pub message: String,
    /// The process exit code.
    pub code: i32,
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Failure {
            message: status_message(&status),
            code: 1,
        }
    }
}

/// A status as the CLI says it: the code, unless the message already says
/// it (`not found: ...`, not `NotFound: not found: ...`); a result too big
/// for one message names the flags that help, not the RPC.
fn status_message(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let message = status.message();
    let reason = status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default();
    let what = message.split(": ").next().unwrap_or(message);
    let message = match reason.as_str() {
        "TOO_MANY_ROWS" => format!(
            "{what}: pass --stream to print it batch by batch as it arrives, or a higher --max-rows"
        ),
        "RESPONSE_TOO_LARGE" => format!(
            "{what}: pass --stream to print it batch by batch as it arrives, or a lower --max-rows"
        ),
        _ => message.to_owned(),
    };
    // `NotFound` -> "not found".
    let code = format!("{:?}", status.code());
    let mut words = String::new();
    for c in code.chars() {
        if c.is_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.extend(c.to_lowercase());
    }
    if what.to_lowercase().contains(&words) {
        message
    } else {
        format!("{code}: {message}")
    }
}

fn failure(message: impl Into<String>, code: i32) -> Failure {
    Failure {
        message: message.into(),
        code,
    }
}

/// `omnigate engines`.
pub async fn engines(args: ClientArgs) -> Result<String, Failure> {
    let mut client = connect(&args).await?;
    let listed = client
        .list_engines(pb::ListEnginesRequest {})
        .await?
        .into_inner();
    let engines = listed.engines;
    let health = |e: &pb::EngineInfo| {
        let h = e.health.clone().unwrap_or_default();
        match h.status() {
            pb::health::Status::Serving => "serving".to_owned(),
            pb::health::Status::NotServing => format!("NOT SERVING: {}", h.message),
            pb::health::Status::Unknown => "unknown".to_owned(),
        }
    };
    if args.json {
        let list: Vec<_> = engines
            .iter()
            .map(|e| {
                let pool = e.pool.unwrap_or_default();
                json!({
                    "name": e.name, "kind": e.kind, "dialects": e.dialects, "health": health(e),
                    "pool": {"max_size": pool.max_size, "size": pool.size, "idle": pool.idle, "in_use": pool.in_use,
                             "waiters": pool.waiters, "created": pool.created, "acquired": pool.acquired},
                    "counters": e.counters,
                })
            })
            .collect();
        return Ok(format!("{}\n", serde_json::Value::Array(list)));
    }
    let rows: Vec<Vec<String>> = engines
        .iter()
        .map(|e| {
            let pool = e.pool.unwrap_or_default();
            vec![
                e.name.clone(),
                e.kind.clone(),
                e.dialects.join(","),
                health(e),
                format!(
                    "{}/{} ({} idle, {} waiting)",
                    pool.in_use, pool.max_size, pool.idle, pool.waiters
                ),
                format!("{}/{}", pool.created, pool.acquired),
            ]
        })
        .collect();
    let columns = [
        "name",
        "kind",
        "dialects",
        "health",
        "in use/max",
        "created/acquired",
    ]
    .map(String::from);
    let count = |name: &str| listed.transactions.get(name).copied().unwrap_or(0);
    let transactions = format!(
        "transactions: {} open, {} in doubt; since start {} begun, {} committed, {} rolled \
         back, {} expired, {} failed after commit, {} recovered\n",
        count("open"),
        count("in_doubt"),
        count("begun"),
        count("committed"),
        count("rolled_back"),
        count("expired"),
        count("failed_after_commit"),
        count("recovered_forward") + count("recovered_backward"),
    );
    Ok(output::table(&columns, &rows) + &transactions)
}

/// `omnigate describe`.
pub async fn describe(args: DescribeArgs) -> Result<String, Failure> {
    let mut client = connect(&args.client).await?;
    let response = client
        .describe(pb::DescribeRequest {
            target: args.target.unwrap_or_default(),
            dialect: args.dialect.unwrap_or_default(),
            name: args.name.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if args.client.json {
        let objects: Vec<_> = response
            .objects
            .iter()
            .map(|o| {
                json!({
                    "kind": o.kind, "schema": o.schema, "name": o.name, "primary_key": o.primary_key,
                    "columns": o.columns.iter().map(|c| json!({"name": c.name, "type": c.type_name, "nullable": c.nullable})).collect::<Vec<_>>(),
                    "attributes": o.attributes,
                })
            })
            .collect();
        return Ok(format!(
            "{}\n",
            json!({"engine": response.engine, "kind": response.kind, "objects": objects})
        ));
    }
    let mut rows = Vec::new();
    for object in &response.objects {
        let name = if object.schema.is_empty() {
            object.name.clone()
        } else {
            format!("{}.{}", object.schema, object.name)
        };
        let mut attributes: Vec<String> = object
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        attributes.sort();
        rows.push(vec![
            object.kind.clone(),
            name.clone(),
            String::new(),
            String::new(),
            attributes.join(" "),
        ]);
        for column in &object.columns {
            let pk = if object.primary_key.contains(&column.name) {
                " PRIMARY KEY"
            } else {
                ""
            };
            let null = if column.nullable { "" } else { " NOT NULL" };
            rows.push(vec![
                String::new(),
                String::new(),
                column.name.clone(),
                format!("{}{null}{pk}", column.type_name),
                String::new(),
            ]);
        }
    }
    let columns = ["kind", "object", "column", "type", "attributes"].map(String::from);
    Ok(format!(
        "engine {} ({})\n{}",
        response.engine,
        response.kind,
        output::table(&columns, &rows)
    ))
}

/// `omnigate check-config`: what can be checked without connecting: the
/// file parses and validates, and the files it names (TLS certificates and
/// keys, CAs, the tokens file) exist and parse.
pub fn check_config(path: &std::path::Path) -> Result<String, Failure> {
    let config = Config::load(path, &ProcessEnv).map_err(|e| failure(e.to_string(), 2))?;
    let problems = check_files(&config);
    if !problems.is_empty() {
        return Err(failure(
            format!("{}:\n  {}", path.display(), problems.join("\n  ")),
            2,
        ));
    }
    let engines: Vec<String> = config
        .engines
        .iter()
        .map(|(name, e)| format!("  {name}: {}", e.driver.kind()))
        .collect();
    Ok(format!(
        "{}: ok, listens on {}\n{}\n",
        path.display(),
        config.server.listen,
        engines.join("\n")
    ))
}

/// What `config` asks of this build that it was compiled without.
pub fn unsupported_by_build(config: &Config) -> Option<String> {
    (config.tracing.otlp_endpoint.is_some() && !cfg!(feature = "otlp")).then(|| {
        "tracing.otlp_endpoint: this build has no OTLP export; build with \
         `cargo build --release -p omnigate-frontends --features otlp`, or remove the key"
            .to_owned()
    })
}

/// The files `config` names that are missing or do not parse.
fn check_files(config: &Config) -> Vec<String> {
    use omnigate::engines::DriverConfig;
    let mut problems: Vec<String> = unsupported_by_build(config).into_iter().collect();
    if let Some(tls) = &config.security.tls
        && let Err(e) = crate::tls::Tls::new(tls)
    {
        problems.push(format!("security.tls: {e}"));
    }
    if let Err(e) =
        omnigate::security::Security::new(config.security.clone(), config.principals.clone())
    {
        problems.push(e.to_string());
    }
    for (name, engine) in &config.engines {
        let ca = match &engine.driver {
            DriverConfig::Postgres(c) => c.ca_file.as_ref(),
            DriverConfig::Redis(c) => c.ca_file.as_ref(),
            DriverConfig::Falkordb(c) => c.ca_file.as_ref(),
            _ => None,
        };
        if let Some(ca) = ca
            && let Err(e) = read_pem_certs(ca)
        {
            problems.push(format!("engines.{name}.ca_file: {e}"));
        }
    }
    problems
}

/// The certificates of a PEM file: at least one.
fn read_pem_certs(path: &std::path::Path) -> Result<usize, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn status_words_are_said_once() {
        let status = tonic::Status::not_found("not found: table t");
        assert_eq!(status_message(&status), "not found: table t");
        let status = tonic::Status::unavailable("engine unavailable: refused");
        assert_eq!(status_message(&status), "engine unavailable: refused");
        let status = tonic::Status::invalid_argument("unknown dialect \"mongo\"");
        assert_eq!(
            status_message(&status),
            "InvalidArgument: unknown dialect \"mongo\""
        );
    }

    #[test]
    fn a_row_limit_names_the_flags() {
        let details = ErrorDetails::with_error_info(
            "TOO_MANY_ROWS",
            "omnigate",
            std::collections::HashMap::new(),
        );
        let status = tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "result has more than 10 rows: raise max_rows or use ExecuteStream",
            details,
        );
        assert_eq!(
            status_message(&status),
            "ResourceExhausted: result has more than 10 rows: pass --stream to print it batch by \
             batch as it arrives, or a higher --max-rows"
        );
    }
}
