//! TLS to PostgreSQL with rustls (ring provider).

use std::path::Path;

use tokio_postgres_rustls::MakeRustlsConnect;

use super::KIND;
use crate::Error;

/// A connector trusting the CAs in `ca_file`, or the web PKI roots.
pub(crate) fn connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, Error> {
    crate::tls::client_config(KIND, ca_file, crate::tls::DefaultRoots::WebPki)
        .map(MakeRustlsConnect::new)
}
