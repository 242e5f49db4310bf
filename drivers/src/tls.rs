//! TLS to the engines' servers with rustls (ring provider): one client
//! configuration, trusting the CAs of a PEM file, or else the web PKI
//! roots or the system's CAs.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;

use crate::{EngineError, Error};

/// Whom to trust when no CA file is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultRoots {
    /// The web PKI roots built in (`webpki-roots`).
    WebPki,
    /// The system's CAs (`rustls-native-certs`), as the redis crate's own
    /// connections trust them.
    System,
}

/// A client configuration trusting the CAs in `ca_file`, or else
/// `default`; errors name `kind` and say what to fix in the file.
pub(crate) fn client_config(
    kind: &'static str,
    ca_file: Option<&Path>,
    default: DefaultRoots,
) -> Result<rustls::ClientConfig, Error> {
    let tls_error =
        |message: String| Error::InvalidStatement(EngineError::new(kind, None, message));
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                tls_error(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let mut reader = pem.as_slice();
            for cert in rustls_pemfile::certs(&mut reader) {
                let cert = cert.map_err(|e| {
                    tls_error(format!("the CA file {} is not PEM: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    tls_error(format!(
                        "the CA file {} holds a bad certificate: {e}",
                        path.display()
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(tls_error(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None if default == DefaultRoots::WebPki => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if let Some(e) = found.errors.first() {
                return Err(tls_error(format!("cannot read the system's CAs: {e}")));
            }
            // (A certificate the system holds and rustls cannot parse is
            // skipped, as the redis crate's connections skip it.)
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
