//! TLS to the engines' servers with rustls (ring provider): one client
//! configuration, trusting the CAs of a PEM file or the web PKI roots.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;

use crate::{EngineError, Error};

/// A client configuration trusting the CAs in `ca_file`, or the web PKI
/// roots; errors name `kind` and say what to fix in the file.
pub(crate) fn client_config(
    kind: &'static str,
    ca_file: Option<&Path>,
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
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
