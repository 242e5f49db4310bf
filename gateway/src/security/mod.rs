//! Who may call and what each caller may do.
//!
//! Authentication happens once per call, at the edge: a bearer token (its
//! SHA-256 compared in constant time with each principal's) or a verified
//! client certificate's name. The principal then travels in the call's
//! [`CallContext`](crate::gateway::CallContext); the pipeline checks its
//! [`Grant`] and admits the call under its [`Limiter`], once, after
//! routing and before the driver.
//!
//! Principals come from the config's `[principals.*]` and from
//! `[security] tokens_file`, which is read again when it changes: a call
//! holds the principal it was admitted as, so a revoked token fails the
//! next call, never one in flight.

mod grant;
mod limits;
pub mod tokens;
mod tokens_file;

pub use tokens::ScramVerifier;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

pub use grant::Grant;
pub use limits::{Limiter, Permit};

use crate::config::{FileStamp, PrincipalConfig, SecurityConfig, TokensFile};
use crate::error::{ConfigError, Error, Result};
use tokens::TokenHash;
use tokens_file::toml_error;

/// A caller the gateway knows.
#[derive(Debug)]
pub struct Principal {
    /// Its name (the key of its `[principals.*]` table).
    pub name: String,
    /// What it may do.
    pub grant: Grant,
    /// Its limits (shared with the principal it replaced, when a reload
    /// changed its grant but not its limits).
    pub limiter: Arc<Limiter>,
    config: PrincipalConfig,
    token: Option<TokenHash>,
    /// Its token's SCRAM verifier, for PostgreSQL-wire logins.
    scram: Option<ScramVerifier>,
}

impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Principal {}

impl Principal {
    /// A principal from its config; `Err` says which key is wrong.
    pub fn new(name: &str, config: &PrincipalConfig) -> std::result::Result<Principal, String> {
        Self::replacing(name, config, None)
    }

    /// A principal from its config that replaces `old`: with the same
    /// limits, it keeps `old`'s limiter and so its state (calls in
    /// flight, the rate so far).
    fn replacing(
        name: &str,
        config: &PrincipalConfig,
        old: Option<&Principal>,
    ) -> std::result::Result<Principal, String> {
        let limiter = match old {
            Some(old) if old.config.limits == config.limits => Arc::clone(&old.limiter),
            _ => Arc::new(Limiter::new(&config.limits)),
        };
        let token = match &config.token_sha256 {
            Some(hex) => Some(
                tokens::from_hex(hex)
                    .map_err(|e| format!("principals.{name}.token_sha256: {e}"))?,
            ),
            None => None,
        };
        let scram = match &config.scram_sha256 {
            Some(text) => Some(
                tokens::parse_scram(text)
                    .map_err(|e| format!("principals.{name}.scram_sha256: {e}"))?,
            ),
            None => None,
        };
        Ok(Principal {
            name: name.to_owned(),
            grant: Grant::new(name, config)?,
            limiter,
            config: config.clone(),
            token,
            scram,
        })
    }
}

/// What a caller presented.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The value of its `authorization` metadata.
    pub authorization: Option<&'a str>,
    /// The name of its verified client certificate (mutual TLS).
    pub certificate: Option<&'a str>,
    /// A login: a principal's name and its token as the password (a
    /// PostgreSQL-wire client's cleartext password).
    pub login: Option<(&'a str, &'a str)>,
}

/// The principals known now.
#[derive(Debug, Default)]
struct Principals {
    by_name: BTreeMap<String, Arc<Principal>>,
}

/// The gateway's security state.
#[derive(Debug)]
pub struct Security {
    config: SecurityConfig,
    /// The config's own principals (a config reload replaces them).
    inline: RwLock<BTreeMap<String, PrincipalConfig>>,
    /// The tokens file (a config reload may name another).
    tokens_file: RwLock<Option<std::path::PathBuf>>,
    /// Held from reading the principals' sources to storing what they
    /// give, by the tokens file's watcher and by a config reload alike:
    /// one must not store principals built from what the other replaced.
    reloading: std::sync::Mutex<()>,
    /// No principals and no tokens file.
    open: AtomicBool,
    current: RwLock<Arc<Principals>>,
    /// The tokens file's modification time and length when last read.
    seen: RwLock<Option<FileStamp>>,
    /// The tokens file's stamp when it last failed to load (`Some(None)`:
    /// it could not be read at all): the failure is reported once, not at
    /// every poll, until the file changes.
    failed: RwLock<Option<Option<FileStamp>>>,
}

/// The one message for a token that is wrong, unknown or revoked: nothing
/// that tells a guesser which.
const INVALID: &str = "the credentials are not valid";

/// A call that presented no credentials to a gateway with principals.
pub(crate) fn no_credentials() -> Error {
    Error::Unauthenticated {
        why: "no credentials: send the metadata `authorization: Bearer <token>`",
    }
}

impl Security {
    /// The security state for `config` and the config's own principals;
    /// reads the tokens file.
    pub fn new(
        config: SecurityConfig,
        inline: BTreeMap<String, PrincipalConfig>,
    ) -> std::result::Result<Security, ConfigError> {
        let security = Security {
            open: AtomicBool::new(inline.is_empty() && config.tokens_file.is_none()),
            tokens_file: RwLock::new(config.tokens_file.clone()),
            reloading: std::sync::Mutex::new(()),
            config,
            inline: RwLock::new(inline),
            current: RwLock::new(Arc::default()),
            seen: RwLock::new(None),
            failed: RwLock::new(None),
        };
        let principals = security.load(None).map_err(invalid)?;
        *security.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(principals);
        Ok(security)
    }

    /// Open: no principals and no tokens file; every caller may do
    /// everything.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Replaces the config's own principals and the tokens file (a config
    /// reload), keeping the principals whose config is unchanged; `Err`
    /// leaves both as they were.
    pub fn replace(
        &self,
        inline: BTreeMap<String, PrincipalConfig>,
        tokens_file: Option<std::path::PathBuf>,
    ) -> std::result::Result<(), String> {
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let mut current = self.inline.write().unwrap_or_else(|e| e.into_inner());
        let kept = std::mem::replace(&mut *current, inline);
        let kept_file = std::mem::replace(&mut *self.file_slot(), tokens_file);
        let moved = *self.file_slot() != kept_file;
        let old = self.principals();
        match self.load_with(&current, Some(&old)) {
            Ok(principals) => {
                if moved {
                    // A failure of the old file says nothing of the new one.
                    *self.failed.write().unwrap_or_else(|e| e.into_inner()) = None;
                }
                self.open.store(
                    current.is_empty() && self.tokens_file().is_none(),
                    Ordering::Relaxed,
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(principals);
                Ok(())
            }
            Err(e) => {
                *current = kept;
                *self.file_slot() = kept_file;
                Err(e)
            }
        }
    }

    fn file_slot(&self) -> std::sync::RwLockWriteGuard<'_, Option<std::path::PathBuf>> {
        self.tokens_file.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The tokens file now.
    fn tokens_file(&self) -> Option<std::path::PathBuf> {
        self.tokens_file
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The settings.
    pub fn config(&self) -> &SecurityConfig {
        &self.config
    }

    fn principals(&self) -> Arc<Principals> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Who presented `credentials`: `Ok(None)` on an open gateway,
    /// `Err(Unauthenticated)` when they name nobody.
    pub fn authenticate(&self, credentials: Credentials<'_>) -> Result<Option<Arc<Principal>>> {
        if self.is_open() {
            return Ok(None);
        }
        let principals = self.principals();
        if let Some(name) = credentials.certificate
            && let Some(p) = principals
                .by_name
                .values()
                .find(|p| p.config.certificate.as_deref() == Some(name))
        {
            return Ok(Some(Arc::clone(p)));
        }
        let (user, token) = match (credentials.login, credentials.authorization) {
            (Some((user, password)), _) => (Some(user), password),
            // The scheme is case-insensitive (RFC 7235).
            (None, Some(authorization)) => (
                None,
                bearer_token(authorization).ok_or(Error::Unauthenticated { why: INVALID })?,
            ),
            (None, None) => return Err(no_credentials()),
        };
        let presented = tokens::hash(token.trim());
        // Every principal is compared, so the time taken does not tell
        // which one came close.
        let mut found = None;
        for p in principals.by_name.values() {
            if let Some(hash) = &p.token
                && tokens::same(hash, &presented)
            {
                found = Some(Arc::clone(p));
            }
        }
        found
            .filter(|p| user.is_none_or(|u| u == p.name))
            .map(Some)
            .ok_or(Error::Unauthenticated { why: INVALID })
    }

    /// The principal named `name`, when there is one.
    pub fn principal(&self, name: &str) -> Option<Arc<Principal>> {
        self.principals().by_name.get(name).cloned()
    }

    /// The principals whose grant is read-only and allows `engine` in
    /// `dialect`, by name.
    pub fn read_only_on(&self, engine: &str, dialect: omnigate_drivers::Dialect) -> Vec<String> {
        self.principals()
            .by_name
            .values()
            .filter(|p| p.grant.read_only && p.grant.check_engine(&p.name, engine, dialect).is_ok())
            .map(|p| p.name.clone())
            .collect()
    }

    /// The SCRAM verifier of principal `name`'s token, when it has one
    /// and the token itself is still listed (`token_sha256`): taking the
    /// token away revokes every way of logging in with it.
    pub fn scram_verifier(&self, name: &str) -> Option<ScramVerifier> {
        let principals = self.principals();
        let principal = principals.by_name.get(name)?;
        principal.token.as_ref()?;
        principal.scram.clone()
    }

    /// `principal` as it is now, for a session that logged in as it and
    /// keeps calling: the current principal of that name while its
    /// credentials are the ones it logged in with (its grant and limits
    /// may have changed: the current ones apply), `None` once they were
    /// revoked or changed (the session must end).
    pub fn current(&self, principal: &Principal) -> Option<Arc<Principal>> {
        let principals = self.principals();
        let now = principals.by_name.get(&principal.name)?;
        let same_token = match (&now.token, &principal.token) {
            (Some(a), Some(b)) => tokens::same(a, b),
            (None, None) => true,
            _ => false,
        };
        let same = same_token
            && now.scram == principal.scram
            && now.config.certificate == principal.config.certificate;
        same.then(|| Arc::clone(now))
    }

    /// Reads the tokens file again if it changed; `Ok(true)` when the
    /// principals were replaced. A bad file leaves them as they were, and
    /// is reported once (`Err`), not again until it changes.
    pub fn reload_if_changed(&self) -> std::result::Result<bool, String> {
        let _reloading = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = self.tokens_file() else {
            return Ok(false);
        };
        let stamp = FileStamp::of(&path);
        if stamp.is_some() && stamp == *self.seen.read().unwrap_or_else(|e| e.into_inner()) {
            return Ok(false);
        }
        if *self.failed.read().unwrap_or_else(|e| e.into_inner()) == Some(stamp) {
            return Ok(false);
        }
        let old = self.principals();
        match self.load(Some(&old)) {
            Ok(principals) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(principals);
                *self.failed.write().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(true)
            }
            Err(e) => {
                *self.failed.write().unwrap_or_else(|e| e.into_inner()) = Some(stamp);
                Err(e)
            }
        }
    }

    /// Checks the tokens file (whichever the config names now) every
    /// `reload_poll` in the background, for as long as `security` lives.
    pub fn watch(security: &Arc<Security>) {
        let weak = Arc::downgrade(security);
        let every = security.config.reload_poll;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(security) = weak.upgrade() else {
                    return;
                };
                match security.reload_if_changed() {
                    Ok(true) => tracing::info!(
                        principals = security.principals().by_name.len(),
                        "the tokens file changed: principals reloaded"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::error!(
                        error = %e,
                        "the tokens file is not valid; the principals stay as they were"
                    ),
                }
            }
        });
    }

    /// The config's principals and the tokens file's, keeping the
    /// principals (and their limiters' state) whose config is unchanged.
    fn load(&self, old: Option<&Principals>) -> std::result::Result<Principals, String> {
        let inline = self.inline.read().unwrap_or_else(|e| e.into_inner());
        self.load_with(&inline, old)
    }

    fn load_with(
        &self,
        inline: &BTreeMap<String, PrincipalConfig>,
        old: Option<&Principals>,
    ) -> std::result::Result<Principals, String> {
        let mut configs = inline.clone();
        if let Some(path) = &self.tokens_file() {
            let before = FileStamp::of(path);
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
            let file: TokensFile = toml::from_str(&text).map_err(|e| {
                format!(
                    "the tokens file {}: {}",
                    path.display(),
                    toml_error(&text, &e)
                )
            })?;
            for (name, config) in file.principals {
                if configs.insert(name.clone(), config).is_some() {
                    return Err(format!(
                        "principals.{name} is in both the config and the tokens file {}",
                        path.display()
                    ));
                }
            }
            *self.seen.write().unwrap_or_else(|e| e.into_inner()) = before;
        }
        let mut by_name = BTreeMap::new();
        for (name, config) in configs {
            let before = old.and_then(|o| o.by_name.get(&name));
            let principal = match before {
                Some(p) if p.config == config => Arc::clone(p),
                _ => Arc::new(Principal::replacing(&name, &config, before.map(|p| &**p))?),
            };
            by_name.insert(name, principal);
        }
        Ok(Principals { by_name })
    }
}

/// The token of an `authorization` value `Bearer <token>`, the scheme in
/// any case.
fn bearer_token(authorization: &str) -> Option<&str> {
    let scheme = authorization.get(..7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| authorization[7..].trim())
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid {
        file: None,
        message,
    }
}

#[cfg(test)]
mod tests;
