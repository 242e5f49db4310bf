//! Scraping the gateway's `/metrics`.

use std::net::SocketAddr;

use prometheus_parse::{Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET /metrics, parsed, and its text (the server may run on the test's
/// runtime: the client must not block it).
pub async fn scrape_at(addr: SocketAddr) -> (Scrape, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the metrics endpoint accepts");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: omnigate\r\nConnection: close\r\n\r\n")
        .await
        .expect("the request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("the response is read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    (Scrape::parse(lines).expect("the text format parses"), body)
}

/// The value of `name` whose labels include `labels`.
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => f64::NAN,
        })
}
