//! The `omnigate` command line: `serve` runs the gateway; `exec`,
//! `engines` and `describe` call a running one.

mod client;
pub mod engine;
pub mod output;
pub mod params;
pub mod tx;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use omnigate_proto::v1 as pb;
use serde_json::json;

use crate::config::{Config, LogFormat, ProcessEnv};
use client::connect;

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
            crate::security::tokens::new_principal_text(&name).map_err(|m| failure(m, 1))
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
    /// Log format (overrides the config).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// Where the running gateway is, and how to print.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The gateway's address.
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

/// `omnigate exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The statement's dialect: sql, redis, cypher, ts.
    #[arg(long, short)]
    dialect: String,
    /// The engine to run on (needed when several serve the dialect).
    #[arg(long, short)]
    target: Option<String>,
    /// Fail if the result has more rows than this.
    #[arg(long)]
    max_rows: Option<u64>,
    /// A statement timeout, e.g. 500ms or 5s (sent as the call's deadline).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Refuse statements that would write.
    #[arg(long)]
    read_only: bool,
    /// Stream the result in batches (ExecuteStream).
    #[arg(long)]
    stream: bool,
    /// Rows per batch with --stream.
    #[arg(long)]
    batch_size: Option<u32>,
    /// Redis bulk strings as bytes even when they are valid UTF-8.
    #[arg(long)]
    raw_bytes: bool,
    /// A named parameter for cypher, as name=value (value typed as for
    /// positional params); repeat for more.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    named: Vec<String>,
    /// The graph (falkordb) or database (neo4j) to run in.
    #[arg(long)]
    database: Option<String>,
    /// Run inside this transaction (from `omnigate tx begin`).
    #[arg(long = "tx", value_name = "ID")]
    tx_id: Option<String>,
    #[command(flatten)]
    ts: params::TsArgs,
    /// The statement; placeholders are $1..$n (cypher: $name).
    statement: String,
    /// Parameters: text, or typed as int:42, float:1.5, bool:true, null:, bytes:00ff, decimal:1.10, uuid:..., json:..., str:...
    params: Vec<String>,
}

/// `omnigate describe`.
#[derive(Debug, Args)]
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
            message: format!("{:?}: {}", status.code(), status.message()),
            code: 1,
        }
    }
}

fn failure(message: impl Into<String>, code: i32) -> Failure {
    Failure {
        message: message.into(),
        code,
    }
}

/// `omnigate exec`: prints the result.
pub async fn exec(args: ExecArgs) -> Result<String, Failure> {
    let params = args
        .params
        .iter()
        .enumerate()
        .map(|(i, raw)| params::parse_param(&format!("${}", i + 1), raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| failure(m, 2))?;
    let named_params = args
        .named
        .iter()
        .map(|pair| params::parse_named(pair))
        .collect::<Result<_, _>>()
        .map_err(|m| failure(m, 2))?;
    let message = pb::ExecuteRequest {
        dialect: args.dialect,
        statement: args.statement,
        params,
        named_params,
        target: args.target.unwrap_or_default(),
        tx_id: args.tx_id.unwrap_or_default(),
        options: Some(pb::ExecuteOptions {
            max_rows: args.max_rows.unwrap_or(0),
            timeout: None,
            read_only: args.read_only,
            batch_size: args.batch_size.unwrap_or(0),
            raw_bytes: args.raw_bytes,
            database: args.database.unwrap_or_default(),
            ts: args.ts.to_proto().map_err(|m| failure(m, 2))?,
        }),
    };
    let mut request = tonic::Request::new(message);
    if let Some(timeout) = args.timeout {
        request.set_timeout(timeout);
    }
    let mut client = connect(&args.client).await?;
    let response = if args.stream {
        let mut stream = client.execute_stream(request).await?.into_inner();
        let mut all = pb::ExecuteResponse::default();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if all.columns.is_empty() {
                all.columns = batch.columns;
            }
            all.rows.extend(batch.rows);
            all.rows_affected += batch.rows_affected;
            all.engine = batch.engine;
        }
        all
    } else {
        client.execute(request).await?.into_inner()
    };
    Ok(if args.client.json {
        format!("{}\n", output::result_json(&response))
    } else {
        output::result_table(&response)
    })
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

/// `omnigate check-config`.
pub fn check_config(path: &std::path::Path) -> Result<String, Failure> {
    let config = Config::load(path, &ProcessEnv).map_err(|e| failure(e.to_string(), 2))?;
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
