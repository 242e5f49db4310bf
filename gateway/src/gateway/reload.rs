//! Reloading the config while serving. The new file is checked whole and
//! its engines started before anything changes; then the engines, limits,
//! schema cache and the config's principals are swapped in at once. A call
//! keeps the engine it started on (a changed engine's old driver lives
//! until its last call ends), and a bad file changes nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Gateway, Limits, Live};
use crate::cache::MetadataCache;
use crate::config::{Config, FileStamp, LogLocation};
use crate::engines::EngineEntry;
use crate::error::ConfigError;
use crate::router::Router;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Engines started.
    pub added: Vec<String>,
    /// Engines taken out (calls running on them finish).
    pub removed: Vec<String>,
    /// Engines rebuilt or given new codecs.
    pub changed: Vec<String>,
    /// Whether the config's principals changed.
    pub principals: bool,
    /// Settings that changed in the file but are read only at startup, by
    /// key: they keep their running values until a restart.
    pub need_restart: Vec<String>,
}

impl Gateway {
    /// The config the live state was built from (the last one applied).
    pub async fn current_config(&self) -> Config {
        self.inner.config.lock().await.clone()
    }

    /// Applies `new` (a config read again): all of it, or on `Err` none.
    pub async fn reload(&self, mut new: Config) -> Result<Reloaded, ConfigError> {
        let mut running = self.inner.config.lock().await;
        let mut report = Reloaded {
            need_restart: keep_startup_settings(&running, &mut new),
            ..Reloaded::default()
        };
        let live = self.live();
        let log_engine = match running.transactions.location(&running.engines) {
            Ok(LogLocation::Table(engine)) => Some(engine),
            _ => None,
        };
        let mut router = Router::default();
        // Engines given to the builder, not by the config, stay as they are.
        for entry in live.router.engines() {
            if !running.engines.contains_key(entry.name()) {
                router.insert(Arc::clone(entry));
            }
        }
        let mut kept_for_restart = Vec::new();
        for (name, config) in &new.engines {
            let old = running
                .engines
                .get(name)
                .and_then(|was| Some((was, live.router.by_name(name).ok()?)));
            let failed = |source| ConfigError::Engine {
                name: name.clone(),
                source,
            };
            let entry = match old {
                Some((was, entry)) if was == config => Arc::clone(entry),
                Some((was, entry))
                    if log_engine.as_deref() == Some(name) && was.driver != config.driver =>
                {
                    report
                        .need_restart
                        .push(format!("engines.{name} (it holds the transaction log)"));
                    kept_for_restart.push((name.clone(), was.clone()));
                    Arc::clone(entry)
                }
                Some((was, entry)) => {
                    report.changed.push(name.clone());
                    Arc::new(entry.succeed(was, config).await.map_err(failed)?)
                }
                None => {
                    report.added.push(name.clone());
                    Arc::new(EngineEntry::start(name, config).await.map_err(failed)?)
                }
            };
            router.insert(entry);
        }
        new.engines.extend(kept_for_restart);
        report.removed = running
            .engines
            .keys()
            .filter(|name| !new.engines.contains_key(*name))
            .cloned()
            .collect();
        // Taking every principal away must not open a public listener.
        let security = &running.security;
        // Every listener counts: the other protocols' too.
        let public = std::iter::once(running.server.listen)
            .chain(running.frontends.listens())
            .find(|addr| !addr.ip().is_loopback());
        // Open: no principals and no tokens file. Refused whenever the new
        // config would open a gateway that is not open now, whether its
        // principals came from the config or from a tokens file.
        if let Some(public) = public
            && new.principals.is_empty()
            && new.security.tokens_file.is_none()
            && !self.inner.security.is_open()
            && !security.allow_anonymous
        {
            return Err(ConfigError::Invalid {
                file: None,
                message: format!(
                    "principals: the new file has none, which would let anyone reaching {public} \
                     run any statement; keep a principal, or set [security] allow_anonymous = \
                     true and restart"
                ),
            });
        }
        if new.principals != running.principals
            || new.security.tokens_file != running.security.tokens_file
        {
            self.inner
                .security
                .replace(new.principals.clone(), new.security.tokens_file.clone())
                .map_err(|message| ConfigError::Invalid {
                    file: None,
                    message,
                })?;
            report.principals = true;
        }
        // Nothing can fail from here: the new state goes live at once.
        let engines_changed = !(report.changed.is_empty() && report.removed.is_empty());
        let cache = if new.cache == running.cache && !engines_changed {
            live.cache.clone()
        } else {
            MetadataCache::new(&new.cache)
        };
        self.inner.live.store(Arc::new(Live {
            router: Arc::new(router),
            limits: Limits::from(&new),
            cache,
        }));
        *running = new;
        Ok(report)
    }
}

/// Puts back into `new` the settings read only at startup, and names the
/// ones that differed.
fn keep_startup_settings(running: &Config, new: &mut Config) -> Vec<String> {
    let mut named = Vec::new();
    macro_rules! keep {
        ($($key:ident).+) => {
            if new.$($key).+ != running.$($key).+ {
                named.push(stringify!($($key).+).replace(' ', ""));
                new.$($key).+ = running.$($key).+.clone();
            }
        };
    }
    keep!(server.listen);
    keep!(server.unix_socket);
    keep!(server.unix_socket_mode);
    keep!(server.max_request_bytes);
    keep!(server.max_response_bytes);
    keep!(server.shutdown_grace);
    keep!(server.health_interval);
    keep!(server.reload_poll);
    keep!(server.runtime);
    keep!(server.worker_threads);
    keep!(log);
    keep!(metrics);
    keep!(tracing);
    keep!(frontends);
    // The tokens file may move (read at once, watched from then on); the
    // listeners' TLS, reflection and anonymity are the server's.
    keep!(security.reload_poll);
    keep!(security.allow_anonymous);
    keep!(security.reflection);
    keep!(security.tls);
    keep!(transactions);
    // Where an engine keeps the gateway's tables: moving it under running
    // transactions would hide their markers from recovery.
    for (name, engine) in &mut new.engines {
        if let (
            crate::config::DriverConfig::Postgres(next),
            Some(crate::config::DriverConfig::Postgres(was)),
        ) = (
            &mut engine.driver,
            running.engines.get(name).map(|e| &e.driver),
        ) && next.gateway_schema != was.gateway_schema
        {
            named.push(format!("engines.{name}.gateway_schema"));
            next.gateway_schema = was.gateway_schema.clone();
        }
    }
    named
}

/// Reloads the config from `path` on SIGHUP and when the file changes
/// (checked every `poll`), for as long as the task runs. `load` reads the
/// file as the process did at startup (environment and command-line
/// overrides included). What changed, and why a file was refused, is
/// logged. Without a path, SIGHUP is logged and ignored.
pub fn watch_config(
    gateway: Gateway,
    path: Option<PathBuf>,
    poll: Duration,
    load: impl Fn(&std::path::Path) -> Result<Config, ConfigError> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangup = Hangup::new();
        let mut seen = path.as_deref().and_then(FileStamp::of);
        loop {
            let why = tokio::select! {
                () = hangup.recv() => "SIGHUP",
                () = tokio::time::sleep(poll.max(Duration::from_millis(10))) => "the file changed",
            };
            let Some(path) = &path else {
                if why == "SIGHUP" {
                    tracing::warn!(
                        "SIGHUP: the gateway was started without --config; nothing to reload"
                    );
                }
                continue;
            };
            let stamp = FileStamp::of(path);
            if why != "SIGHUP" && stamp == seen {
                continue;
            }
            seen = stamp;
            let outcome = match load(path) {
                Ok(config) => gateway.reload(config).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(done) => {
                    tracing::info!(
                        trigger = why,
                        added = ?done.added,
                        removed = ?done.removed,
                        changed = ?done.changed,
                        principals_changed = done.principals,
                        "config reloaded"
                    );
                    for key in &done.need_restart {
                        tracing::warn!(key = %key, "changed in the config file; takes effect after a restart");
                    }
                }
                Err(e) => tracing::error!(
                    trigger = why,
                    error = %e,
                    "the new config was refused whole; the running config stays"
                ),
            }
        }
    })
}

/// SIGHUP, where there are signals.
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let hup = signal(SignalKind::hangup())
                .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP"))
                .ok();
            Hangup(hup)
        }
        #[cfg(not(unix))]
        Hangup()
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(hup) = &mut self.0
            && hup.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}
