//! A PostgreSQL-wire client's login: the startup `database` names an `sql`
//! engine, the `user` a principal, and the password is its token — checked
//! by SCRAM-SHA-256 against the principal's verifier (`scram_sha256`), or,
//! for a principal without one, sent in cleartext over TLS only. A gateway
//! without principals lets any user in (as gRPC takes anonymous calls).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use omnigate::drivers::Dialect;
use omnigate::security::Credentials;
use omnigate::{Caller, Gateway};
use pgwire::api::ClientInfo;
use pgwire::api::ConnectionManager;
use pgwire::api::auth::cleartext::CleartextPasswordAuth;
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::mechanism::{AuthMechanism, AuthMechanismFactory, AuthState};
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthDriver, AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::errors::fatal;
use super::session::Session;

/// What every connection's login shares.
pub(super) struct Logins {
    gateway: Gateway,
    driver: AuthDriver<DefaultServerParameterProvider>,
    scram: Arc<dyn AuthMechanismFactory>,
    cleartext: Arc<dyn AuthMechanismFactory>,
}

impl Logins {
    /// Logins against `gateway`'s principals, each registered with
    /// `connections` for cancel requests.
    pub(super) fn new(gateway: Gateway, connections: Arc<ConnectionManager>) -> Self {
        let source = Arc::new(Principals(gateway.clone()));
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = format!("16.0 (Omnigate {})", env!("CARGO_PKG_VERSION"));
        Logins {
            gateway,
            // Each login gets a backend key, registered for CancelRequest.
            driver: AuthDriver::new(parameters).with_connection_manager(connections),
            scram: Arc::new(ScramAuth::new(Arc::clone(&source) as Arc<dyn AuthSource>)),
            cleartext: Arc::new(CleartextPasswordAuth::new(source)),
        }
    }
}

/// The principals as pgwire asks for them.
#[derive(Debug)]
struct Principals(Gateway);

#[async_trait]
impl AuthSource for Principals {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // Tokens are never stored: only a verifier or a hash is.
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_owned(),
        ))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<()>> {
        let user = login.user().unwrap_or_default();
        let password = std::str::from_utf8(presented).unwrap_or_default();
        let credentials = Credentials {
            login: Some((user, password)),
            ..Credentials::default()
        };
        match self.0.authenticate(credentials) {
            Ok(_) => Ok(None),
            Err(_) => Err(invalid_password(user)),
        }
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().unwrap_or_default();
        let secret = match self.0.security().scram_verifier(user) {
            Some(verifier) => ScramSecret::Verifier {
                salt: verifier.salt,
                iterations: verifier.iterations as usize,
                stored_key: verifier.stored_key,
                server_key: verifier.server_key,
            },
            // No one's: the exchange runs and fails as a wrong password.
            None => {
                let random = || uuid::Uuid::new_v4().as_bytes().repeat(2);
                ScramSecret::Verifier {
                    salt: uuid::Uuid::new_v4().as_bytes().to_vec(),
                    iterations: 4096,
                    stored_key: random(),
                    server_key: random(),
                }
            }
        };
        Ok((secret, None))
    }
}

/// The one failure a wrong user or password gets (PostgreSQL's words):
/// nothing that tells a guesser which was wrong.
fn invalid_password(user: &str) -> PgWireError {
    PgWireError::UserError(Box::new(fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )))
}

/// Lets a client in without a password (a gateway without principals).
struct Trust;

#[async_trait]
impl AuthMechanism for Trust {
    async fn begin(&mut self, _client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<AuthState> {
        Ok(AuthState::Ok {
            final_message: None,
            identity: None,
        })
    }

    async fn next(
        &mut self,
        _client: &(dyn ClientInfo + Send + Sync),
        _message: PasswordMessageFamily,
    ) -> PgWireResult<AuthState> {
        Err(PgWireError::NoAuthenticationInProgress)
    }
}

/// A SCRAM login whose first message is checked against the SASL initial
/// response's layout before pgwire reads it (pgwire reads its fields
/// without bounds: a short one panicked its decoder). One that does not
/// hold exactly its fields ends the login with `08P01`, as PostgreSQL
/// ends it.
struct CheckedScram {
    inner: Box<dyn AuthMechanism>,
    first: bool,
}

#[async_trait]
impl AuthMechanism for CheckedScram {
    async fn begin(&mut self, client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<AuthState> {
        self.inner.begin(client).await
    }

    async fn next(
        &mut self,
        client: &(dyn ClientInfo + Send + Sync),
        message: PasswordMessageFamily,
    ) -> PgWireResult<AuthState> {
        if std::mem::take(&mut self.first)
            && let PasswordMessageFamily::Raw(body) = &message
            && let Err(why) = super::framing::check_sasl_initial(body)
        {
            return Err(PgWireError::UserError(Box::new(fatal(
                "08P01",
                format!("invalid message format: a malformed SASL initial response ({why})"),
            ))));
        }
        self.inner.next(client, message).await
    }
}

/// One connection's login, ending in its session's engine and caller.
pub(super) struct Login {
    pub(super) logins: Arc<Logins>,
    pub(super) session: Arc<Session>,
}

impl Login {
    /// On the startup message: the engine the `database` names, and the
    /// mechanism the `user` logs in with.
    async fn start<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let gateway = &self.logins.gateway;
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let database = client
            .metadata()
            .get("database")
            .cloned()
            .unwrap_or_else(|| user.clone());
        // Checked once the client is known: nothing before that tells a
        // stranger which engines exist.
        self.session.set_engine(database);
        if let Some(name) = client.metadata().get("application_name") {
            self.session.set_application_name(name);
        }
        let security = gateway.security();
        // An unknown user, and a principal without a verifier over plain
        // TCP, get the same SCRAM exchange as everyone (against a verifier
        // nobody can match): a guesser learns nothing until a password is
        // right. Without a verifier, a principal logs in over TLS only.
        let mechanism = if security.is_open() {
            Box::new(Trust) as Box<dyn AuthMechanism>
        } else if security.scram_verifier(&user).is_none() && client.is_secure() {
            self.logins.cleartext.create()
        } else {
            if security.scram_verifier(&user).is_none() && security.principal(&user).is_some() {
                tracing::debug!(
                    principal = %user,
                    "a PostgreSQL-wire login without TLS, for a principal without a scram_sha256 verifier: refused"
                );
            }
            Box::new(CheckedScram {
                inner: self.logins.scram.create(),
                first: true,
            })
        };
        let outcome = self
            .logins
            .driver
            .begin_authentication(client, mechanism)
            .await?;
        self.finish(client, outcome).await
    }

    /// After a mechanism's step: on success, the session's caller, checked
    /// against its grant, then the end of the startup.
    async fn finish<C>(&self, client: &mut C, outcome: AuthOutcome) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let AuthOutcome::Authenticated { final_message, .. } = outcome else {
            return Ok(());
        };
        let gateway = &self.logins.gateway;
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let database = self.session.engine();
        let router = gateway.router();
        let serves_sql = router
            .by_name(&database)
            .is_ok_and(|e| e.driver.descriptor().dialects.contains(&Dialect::Sql));
        if !serves_sql {
            let engines: Vec<&str> = router
                .engines()
                .filter(|e| e.driver.descriptor().dialects.contains(&Dialect::Sql))
                .map(|e| e.name())
                .collect();
            return Err(PgWireError::UserError(Box::new(fatal(
                "3D000",
                format!(
                    "database \"{}\" does not exist: connect to an sql engine of the gateway ({})",
                    omnigate::error::short(&database),
                    engines.join(", ")
                ),
            ))));
        }
        let caller = match gateway.security().principal(&user) {
            Some(principal) if !gateway.security().is_open() => {
                let engine = self.session.engine();
                if !principal.grant.may_use(&engine) {
                    return Err(PgWireError::UserError(Box::new(fatal(
                        "42501",
                        format!(
                            "principal {user} may not use engine {engine} \
                             (principals.{user}.engines)"
                        ),
                    ))));
                }
                Caller::Principal(principal)
            }
            _ => Caller::Anonymous,
        };
        self.session.set_caller(caller);
        self.logins
            .driver
            .complete_authentication(client, final_message)
            .await?;
        super::cancel::take_over(&*client);
        Ok(())
    }
}

#[async_trait]
impl StartupHandler for Login {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.session.activity().touch();
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if let Some(refusal) = self.session.refusal() {
                    return Err(PgWireError::UserError(Box::new(refusal)));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                self.start(client).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let outcome = self
                    .logins
                    .driver
                    .advance_authentication(client, message)
                    .await?;
                self.finish(client, outcome).await
            }
            _ => Ok(()),
        }
    }
}
