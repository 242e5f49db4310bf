//! TLS on the gRPC listener (rustls with the ring provider): the
//! certificate and key are read again when their files change (a renewed
//! certificate is served to new connections without a restart), and an
//! optional client CA turns on mutual TLS, whose verified client
//! certificate names a principal; the CA file is read again when it
//! changes too (a rotated client CA verifies new connections without a
//! restart).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use x509_cert::der::Decode;

use omnigate::config::{ClientName, FileStamp, TlsConfig};

/// How long a client may take over its TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The server's certificate, reloaded when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Stamps)>,
}

type Stamps = (Option<FileStamp>, Option<FileStamp>);

fn modified(path: &Path) -> Option<FileStamp> {
    FileStamp::of(path)
}

impl ReloadingCert {
    fn load(&self) -> Result<CertifiedKey, String> {
        load_key(&self.cert, &self.key, &self.provider)
    }

    /// Reads the files again if they changed; a pair that does not load
    /// (e.g. caught between the two writes of a renewal) keeps the old one
    /// until the next check.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let stamps = (modified(&self.cert), modified(&self.key));
        if self.current.read().unwrap_or_else(|e| e.into_inner()).1 == stamps {
            return Ok(false);
        }
        let key = self.load()?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(key), stamps);
        Ok(true)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()).0,
        ))
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

fn load_key(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let certs = read_certs(cert)?;
    let text = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    let der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut text.as_slice())
        .map_err(|e| format!("{}: not a PEM key: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key in it", key.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(CertifiedKey::new(certs, signing))
}

/// The client CA's verifier, rebuilt when the CA file changes.
#[derive(Debug)]
struct ReloadingVerifier {
    ca: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<dyn ClientCertVerifier>, Option<FileStamp>)>,
}

impl ReloadingVerifier {
    fn new(ca: &Path, provider: &Arc<CryptoProvider>) -> Result<ReloadingVerifier, String> {
        let stamp = modified(ca);
        Ok(ReloadingVerifier {
            current: RwLock::new((client_verifier(ca, provider)?, stamp)),
            ca: ca.to_owned(),
            provider: Arc::clone(provider),
        })
    }

    /// Reads the CA file again if it changed; one that does not load keeps
    /// the previous CA until the next check.
    fn reload_if_changed(&self) -> Result<bool, String> {
        let stamp = modified(&self.ca);
        if self.current.read().unwrap_or_else(|e| e.into_inner()).1 == stamp {
            return Ok(false);
        }
        let verifier = client_verifier(&self.ca, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (verifier, stamp);
        Ok(true)
    }

    fn now(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()).0)
    }
}

/// Verifies client certificates against the CA in `ca`; a client without
/// one may still send a token.
fn client_verifier(
    ca: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(ca)? {
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("{}: {e}", ca.display()))
}

impl ClientCertVerifier for ReloadingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// None: the CA's subjects live behind the reload's lock, and a hint
    /// list is optional (a client with one certificate sends it).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.now()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.now().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.now().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.now().supported_verify_schemes()
    }
}

/// The listener's TLS: the acceptor and the certificate it reloads.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    cert: Arc<ReloadingCert>,
    client_ca: Option<Arc<ReloadingVerifier>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert.cert)
            .field("key", &self.cert.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS for `config`; `Err` says which file is wrong.
    pub fn new(config: &TlsConfig) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let first = load_key(&config.cert, &config.key, &provider)?;
        let cert = Arc::new(ReloadingCert {
            cert: config.cert.clone(),
            key: config.key.clone(),
            provider: Arc::clone(&provider),
            current: RwLock::new((
                Arc::new(first),
                (modified(&config.cert), modified(&config.key)),
            )),
        });
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let client_ca = config
            .client_ca
            .as_deref()
            .map(|ca| ReloadingVerifier::new(ca, &provider).map(Arc::new))
            .transpose()?;
        let builder = match &client_ca {
            Some(verifier) => builder
                .with_client_cert_verifier(Arc::clone(verifier) as Arc<dyn ClientCertVerifier>),
            None => builder.with_no_client_auth(),
        };
        let mut server =
            builder.with_cert_resolver(Arc::clone(&cert) as Arc<dyn ResolvesServerCert>);
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            cert,
            client_ca,
        })
    }

    /// An acceptor for another protocol's listener: the same certificate
    /// and client verification, offering `alpn` (the PostgreSQL front end:
    /// `postgresql`).
    pub fn acceptor(&self, alpn: &[&[u8]]) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::clone(self.acceptor.config());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }

    /// Checks the certificate files and the client CA every `every`, for
    /// as long as the returned task runs.
    pub fn watch(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let cert = Arc::clone(&self.cert);
        let client_ca = self.client_ca.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match cert.reload_if_changed() {
                    Ok(true) => tracing::info!("the TLS certificate changed: reloaded"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "the TLS certificate files do not load; serving the previous ones")
                    }
                }
                match client_ca.as_ref().map(|ca| ca.reload_if_changed()) {
                    Some(Ok(true)) => tracing::info!("the client CA changed: reloaded"),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "the client CA file does not load; verifying with the previous one")
                    }
                    Some(Ok(false)) | None => {}
                }
            }
        })
    }

    /// The connections of `listener` once their handshakes complete (each
    /// handshake runs on its own task, bounded; one that fails is logged
    /// and dropped).
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                // Until the server drops its end (it stopped): then the
                // listener closes too.
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(tls)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }
}

/// The name of a verified client certificate (the end-entity one), as
/// `which` says: its subject's common name, or its first DNS name.
pub fn client_name(cert: &CertificateDer<'_>, which: ClientName) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    match which {
        ClientName::SubjectCn => cert.tbs_certificate.subject.0.iter().find_map(|rdn| {
            rdn.0.iter().find_map(|atv| {
                (atv.oid == x509_cert::der::oid::db::rfc4519::CN).then(|| {
                    std::str::from_utf8(atv.value.value())
                        .ok()
                        .map(str::to_owned)
                })?
            })
        }),
        ClientName::SanDns => {
            let (_, san) = cert
                .tbs_certificate
                .get::<x509_cert::ext::pkix::SubjectAltName>()
                .ok()??;
            san.0.into_iter().find_map(|name| match name {
                x509_cert::ext::pkix::name::GeneralName::DnsName(dns) => {
                    Some(dns.as_str().to_owned())
                }
                _ => None,
            })
        }
    }
}
