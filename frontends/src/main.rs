//! The `omnigate` binary: `omnigate serve` runs the gateway; the other
//! subcommands call a running one. See `omnigate --help`.

use std::process::ExitCode;

use clap::Parser;
use omnigate::Gateway;
use omnigate::config::{Config, LogFormat, ProcessEnv};
use omnigate_frontends::cli::{self, Cli, Command, Failure, ServeArgs};
use omnigate_frontends::grpc::server;
use tracing_subscriber::EnvFilter;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// jemalloc unless mimalloc was asked for: glibc's malloc kept a spike's
// freed memory (RSS 40 MB → 270 MB after spikes it had freed).
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        // The server's runtime is the config's choice.
        Command::Serve(args) => serve(args),
        command => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(client(command)),
            Err(e) => Err(Failure {
                message: format!("cannot start the runtime: {e}"),
                code: 1,
            }),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(u8::try_from(failure.code).unwrap_or(1))
        }
    }
}

/// The subcommands that call a running gateway.
async fn client(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve(_) => Ok(()),
        Command::Exec(args) => cli::exec(*args).await,
        Command::Engines(args) => print(cli::engines(args).await),
        Command::Health(args) => print(cli::health::health(args).await),
        Command::Describe(args) => print(cli::describe(args).await),
        Command::Tx(args) => print(cli::tx::tx(args).await),
        Command::Engine(args) => print(cli::engine::engine(args).await),
        Command::Token { action } => print(cli::token(action)),
        Command::CheckConfig { config } => print(cli::check_config(&config)),
    }
}

fn print(result: Result<String, Failure>) -> Result<(), Failure> {
    result.map(|text| print!("{text}"))
}

/// Logs to stderr as configured; with the `otlp` feature and
/// `[tracing] otlp_endpoint`, exports the call spans too (flushed by the
/// handle returned).
fn init_logging(config: &Config) -> Result<Option<Telemetry>, String> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    if let Some(problem) = cli::unsupported_by_build(config) {
        return Err(problem);
    }
    let log = &config.log;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let fmt = match log.format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otlp")]
    if let Some((export, telemetry)) = omnigate_frontends::telemetry::layer(&config.tracing)? {
        registry.with(export).init();
        return Ok(Some(telemetry));
    }
    registry.init();
    Ok(None)
}

#[cfg(feature = "otlp")]
use omnigate_frontends::telemetry::Telemetry;

/// Without the `otlp` feature there is nothing to flush.
#[cfg(not(feature = "otlp"))]
#[derive(Debug)]
struct Telemetry;

#[cfg(not(feature = "otlp"))]
impl Telemetry {
    async fn shutdown(self) {}
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    let fail = |message: String| Failure { message, code: 2 };
    // The file as read now and at each reload, with the command line's
    // overrides on top.
    let (listen, log_format) = (args.listen, args.log_format);
    let load = move |path: Option<&std::path::Path>| {
        let mut config = match path {
            Some(path) => Config::load(path, &ProcessEnv),
            None => Config::from_env(&ProcessEnv),
        }?;
        if let Some(listen) = listen {
            config.server.listen = listen;
        }
        if let Some(format) = log_format {
            config.log.format = format;
        }
        Ok::<_, omnigate::error::ConfigError>(config)
    };
    let config = load(args.config.as_deref()).map_err(|e| fail(e.to_string()))?;
    let runtime = server::runtime(&config.server)
        .map_err(|e| fail(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(args, config, load))
}

/// Serves on the runtime `serve` built.
async fn run(
    args: ServeArgs,
    config: Config,
    load: impl Fn(Option<&std::path::Path>) -> Result<Config, omnigate::error::ConfigError>
    + Send
    + 'static,
) -> Result<(), Failure> {
    let fail = |message: String| Failure { message, code: 2 };
    let telemetry = init_logging(&config).map_err(fail)?;
    let gateway = Gateway::builder()
        .config(config.clone())
        .build()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let watcher = omnigate::watch_config(
        gateway.clone(),
        args.config.clone(),
        config.server.reload_poll,
        move |path| load(Some(path)),
    );
    let served = server::serve(gateway, &config.server, server::shutdown_signal()).await;
    watcher.abort();
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    served.map_err(|e| Failure {
        message: e.to_string(),
        code: 1,
    })
}
