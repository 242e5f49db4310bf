//! The `omnigate` binary: `omnigate serve` runs the gateway; the other
//! subcommands call a running one. See `omnigate --help`.

use std::process::ExitCode;

use clap::Parser;
use omnigate::cli::{self, Cli, Command, Failure, ServeArgs};
use omnigate::config::{Config, LogConfig, LogFormat, ProcessEnv};
use omnigate::{Gateway, server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Exec(args) => print(cli::exec(*args).await),
        Command::Engines(args) => print(cli::engines(args).await),
        Command::Describe(args) => print(cli::describe(args).await),
        Command::Tx(args) => print(cli::tx::tx(args).await),
        Command::Engine(args) => print(cli::engine::engine(args).await),
        Command::Token { action } => print(cli::token(action)),
        Command::CheckConfig { config } => print(cli::check_config(&config)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(u8::try_from(failure.code).unwrap_or(1))
        }
    }
}

fn print(result: Result<String, Failure>) -> Result<(), Failure> {
    result.map(|text| print!("{text}"))
}

fn init_logging(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let fail = |message: String| Failure { message, code: 2 };
    let mut config = match &args.config {
        Some(path) => Config::load(path, &ProcessEnv),
        None => Config::from_env(&ProcessEnv),
    }
    .map_err(|e| fail(e.to_string()))?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
    init_logging(&config.log);
    let gateway = Gateway::builder()
        .config(config.clone())
        .build()
        .await
        .map_err(|e| fail(e.to_string()))?;
    server::serve(gateway, &config.server, server::shutdown_signal())
        .await
        .map_err(|e| Failure {
            message: e.to_string(),
            code: 1,
        })
}
