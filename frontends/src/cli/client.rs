//! The connection to a running gateway: its address, TLS (https://, with
//! the gateway's CA and a client certificate for mutual TLS) and the
//! bearer token sent with every call.

use std::path::PathBuf;

use omnigate_proto::v1 as pb;
use pb::gateway_client::GatewayClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{ClientArgs, Failure, failure};

/// A client of the gateway that sends the bearer token, if any, with
/// every call.
pub(crate) type Client = GatewayClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to each call.
#[derive(Debug, Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub(crate) async fn connect(args: &ClientArgs) -> Result<Client, Failure> {
    let bearer = match &args.token {
        Some(token) => Some(
            format!("Bearer {}", token.trim())
                .parse()
                .map_err(|_| failure("the token holds characters a header cannot", 2))?,
        ),
        None => None,
    };
    Ok(
        GatewayClient::with_interceptor(channel(args).await?, Bearer(bearer))
            .max_decoding_message_size(usize::MAX),
    )
}

/// A connection to the gateway at `args.addr` (TLS with https://).
pub(crate) async fn channel(args: &ClientArgs) -> Result<Channel, Failure> {
    let addr = &args.addr;
    // `unix:/path` (a Unix socket, `[server] unix_socket`) as tonic reads it.
    let url = if addr.contains("://") || addr.starts_with("unix:") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| failure(format!("not a gateway address: {url}: {e}"), 2))?;
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(client_tls(args)?)
            .map_err(|e| failure(format!("TLS: {e}"), 2))?;
    }
    endpoint.connect().await.map_err(|e| {
        failure(
            format!("cannot reach the gateway at {url}: {e} (is `omnigate serve` running?)"),
            2,
        )
    })
}

/// The TLS settings for an https:// gateway: its CA, and the client's
/// certificate for mutual TLS.
fn client_tls(args: &ClientArgs) -> Result<tonic::transport::ClientTlsConfig, Failure> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| failure(format!("cannot read {}: {e}", path.display()), 2))
    };
    let ca = args.ca.as_ref().ok_or_else(|| {
        failure(
            "an https:// gateway needs --ca (the CA that signed its certificate)",
            2,
        )
    })?;
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            read(cert)?,
            read(key)?,
        ));
    }
    Ok(tls)
}
