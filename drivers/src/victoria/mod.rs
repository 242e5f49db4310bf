//! The `victoriametrics` engine: the `ts` dialect over VictoriaMetrics'
//! HTTP API, through a reqwest client with keep-alive connections and a
//! bound on requests in flight.
//!
//! Writes go to `/write` (InfluxDB line protocol, validated here first so a
//! bad line writes nothing; gzip above `gzip_above` bytes); queries to
//! `/api/v1/query` and `/api/v1/query_range`; `DELETE` to
//! `/api/v1/admin/tsdb/delete_series`. Run the server with
//! `-dedup.minScrapeInterval` (e.g. `1ms`) so that a write replayed after a
//! failure leaves one sample per series and time: the cross-engine
//! transactions replay writes on recovery.

mod answer;
mod config;
mod error;
mod transaction;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value as Json;

use answer::parse_result;
pub use config::VictoriaConfig;
use error::{from_reqwest, from_status};

use crate::pool::{AcquireError, FrontConfig, PoolFront, PoolSize};
use crate::ts::{Series, TsStatement, When, classify, describe_objects, now_millis, series_rows};
use crate::{
    BeginOptions, BoxError, DescribeOptions, Dialect, DriverTransaction, EngineDescriptor,
    EngineError, Error, ExecuteOptions, Health, PoolStats, Result, ResultSet, RowStream,
    SchemaObject, Statement, StorageDriver,
};

/// The engine kind's name.
pub const KIND: &str = "victoriametrics";

/// The VictoriaMetrics engine. A clone shares the client (a transaction
/// holds one).
#[derive(Debug, Clone)]
pub struct VictoriaDriver {
    descriptor: EngineDescriptor,
    http: Arc<Http>,
}

#[derive(Debug)]
struct Http {
    base: String,
    client: reqwest::Client,
    slots: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    front: PoolFront,
    config: VictoriaConfig,
    /// Whether the server deduplicates samples of one series and time
    /// (`-dedup.minScrapeInterval`), which makes a replayed write harmless.
    dedup: bool,
}

/// The body of a 2xx answer, or the answer's error.
fn body_of(status: u16, body: Bytes) -> Result<Bytes> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(from_status(status, &String::from_utf8_lossy(&body)))
    }
}

/// Seconds with milliseconds, as the API takes times.
fn seconds(millis: i64) -> String {
    format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000))
}

impl VictoriaDriver {
    /// Builds the client and checks `/health`; fails when the server cannot
    /// be reached.
    pub async fn connect(name: impl Into<String>, config: VictoriaConfig) -> Result<Self> {
        if !config.url.starts_with("http://") {
            return Err(Error::InvalidStatement(EngineError::new(
                KIND,
                None,
                "the victoriametrics url is http://host:port",
            )));
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(config.pool.max_connections.max(1))
            .pool_idle_timeout(config.idle_timeout)
            .connect_timeout(config.pool.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Internal(EngineError::new(KIND, None, e.to_string())))?;
        let name = name.into();
        let mut http = Http {
            front: PoolFront::new(FrontConfig {
                engine: name.clone(),
                kind: KIND,
                server: "VictoriaMetrics",
                settings: config.pool,
            }),
            base: config.url.trim_end_matches('/').to_owned(),
            client,
            slots: tokio::sync::Semaphore::new(config.pool.max_connections.max(1)),
            waiting: AtomicUsize::new(0),
            config,
            dedup: false,
        };
        http.health().await?;
        http.dedup = http.deduplicates().await;
        if !http.dedup {
            tracing::warn!(
                engine = %name,
                "VictoriaMetrics runs without -dedup.minScrapeInterval: ts writes cannot join a \
                 transaction that spans engines (set -dedup.minScrapeInterval=1ms)"
            );
        }
        Ok(VictoriaDriver {
            descriptor: EngineDescriptor {
                name,
                kind: KIND,
                dialects: <Self as crate::EngineKind>::DIALECTS.to_vec(),
            },
            http: Arc::new(http),
        })
    }
}

impl Http {
    /// Sends a request within the bound on requests in flight; returns the
    /// status and body. Fails fast while the server is known to be down.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        limit: Option<Duration>,
    ) -> Result<(u16, Bytes)> {
        let _slot = self.front.acquire(self.slot()).await?;
        self.answer(request, limit).await
    }

    /// A slot among the requests in flight (the pool of this engine).
    async fn slot(
        &self,
    ) -> std::result::Result<tokio::sync::SemaphorePermit<'_>, AcquireError<BoxError>> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let slot =
            tokio::time::timeout(self.config.pool.acquire_timeout, self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match slot {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(AcquireError::Exhausted),
        }
    }

    /// The server's answer to `request`; what it says of the server's state
    /// goes to the backoff.
    async fn answer(
        &self,
        request: reqwest::RequestBuilder,
        limit: Option<Duration>,
    ) -> Result<(u16, Bytes)> {
        let request = match limit {
            Some(limit) => request.timeout(limit),
            None => request,
        };
        let answer = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        }
        .await
        .map_err(|e| from_reqwest(e, limit));
        self.front.observe(&answer);
        answer
    }

    /// The body of a 2xx answer, or the answer's error.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        limit: Option<Duration>,
    ) -> Result<Bytes> {
        let (status, body) = self.send(request, limit).await?;
        body_of(status, body)
    }

    /// The `data` of a JSON answer.
    async fn data(
        &self,
        request: reqwest::RequestBuilder,
        limit: Option<Duration>,
    ) -> Result<Json> {
        let body = self.call(request, limit).await?;
        let mut json: Json = serde_json::from_slice(&body).map_err(|e| {
            Error::Internal(EngineError::new(
                KIND,
                None,
                format!("unreadable answer: {e}"),
            ))
        })?;
        Ok(json.get_mut("data").map(Json::take).unwrap_or(Json::Null))
    }

    /// `/health` answers, past the fail-fast gate, within the probe's time
    /// (also at startup, where no probe wraps it).
    async fn health(&self) -> Result<()> {
        let _slot = self.front.checkout(self.slot()).await?;
        let request = self.client.get(format!("{}/health", self.base));
        let limit = Some(crate::pool::PROBE_TIMEOUT);
        let (status, body) = self.answer(request, limit).await?;
        body_of(status, body).map(drop)
    }

    /// Whether the server's `/flags` set a deduplication interval above
    /// zero (it lists the flags set on its command line).
    async fn deduplicates(&self) -> bool {
        let request = self.client.get(format!("{}/flags", self.base));
        let Ok(flags) = self.call(request, Some(crate::pool::PROBE_TIMEOUT)).await else {
            return false;
        };
        String::from_utf8_lossy(&flags).lines().any(|line| {
            line.strip_prefix("-dedup.minScrapeInterval=")
                .map(|v| v.trim_matches('"'))
                .and_then(|v| humantime::parse_duration(v).ok())
                .is_some_and(|d| !d.is_zero())
        })
    }

    /// Imports samples in the Prometheus text format (a transaction's
    /// writes, each with its time).
    async fn import(&self, body: &str) -> Result<()> {
        if body.is_empty() {
            return Ok(());
        }
        let request = self
            .client
            .post(format!("{}/api/v1/import/prometheus", self.base))
            .body(body.to_owned());
        self.call(request, None).await?;
        self.flush_if_asked(None).await
    }

    /// Makes written samples readable at once when the config asks.
    async fn flush_if_asked(&self, limit: Option<Duration>) -> Result<()> {
        if self.config.read_your_writes {
            let flush = self
                .client
                .post(format!("{}/internal/force_flush", self.base));
            self.call(flush, limit).await?;
        }
        Ok(())
    }

    async fn write(&self, text: &str, options: &ExecuteOptions) -> Result<()> {
        // Comment lines are skipped here, as the parser skipped them.
        let body: String = if text.contains('#') {
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .flat_map(|l| [l, "\n"])
                .collect()
        } else {
            text.to_owned()
        };
        let mut request = self
            .client
            .post(format!("{}/write", self.base))
            .query(&[("precision", options.ts.precision.as_str())]);
        request = if body.len() > self.config.gzip_above {
            use std::io::Write as _;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(body.as_bytes())
                .and_then(|()| gz.finish())
                .map(|zipped| request.header("Content-Encoding", "gzip").body(zipped))
                .map_err(|e| Error::Internal(EngineError::new(KIND, None, e.to_string())))?
        } else {
            request.body(body)
        };
        self.call(request, options.timeout).await?;
        self.flush_if_asked(options.timeout).await
    }

    async fn query(&self, text: &str, when: When, limit: Option<Duration>) -> Result<Vec<Series>> {
        let mut params = vec![("query", text.to_owned())];
        if let Some(limit) = limit {
            params.push(("timeout", format!("{}ms", limit.as_millis().max(1))));
        }
        let path = match when {
            When::Instant(t) => {
                params.push(("time", seconds(t)));
                "query"
            }
            When::Range { start, end, step } => {
                params.push(("start", seconds(start)));
                params.push(("end", seconds(end)));
                params.push(("step", format!("{step}ms")));
                "query_range"
            }
        };
        let request = self
            .client
            .post(format!("{}/api/v1/{path}", self.base))
            .form(&params);
        let data = self.data(request, limit).await?;
        parse_result(&data)
    }

    /// How many series match `selector`, over all time. (`start=0` would
    /// read as "no start", which VictoriaMetrics takes as a recent window.)
    async fn matching_series(&self, selector: &str, limit: Option<Duration>) -> Result<usize> {
        let request = self
            .client
            .post(format!("{}/api/v1/series", self.base))
            .form(&[("match[]", selector), ("start", "1")]);
        Ok(self
            .data(request, limit)
            .await?
            .as_array()
            .map_or(0, Vec::len))
    }

    async fn delete(&self, selector: &str, limit: Option<Duration>) -> Result<u64> {
        let count = self.matching_series(selector, limit).await?;
        let request = self
            .client
            .post(format!("{}/api/v1/admin/tsdb/delete_series", self.base))
            .form(&[("match[]", selector)]);
        self.call(request, limit).await?;
        Ok(count as u64)
    }

    async fn strings(&self, path: &str) -> Result<Vec<String>> {
        let request = self
            .client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(&[("start", "1")]);
        let data = self.data(request, Some(Duration::from_secs(30))).await?;
        Ok(data
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl StorageDriver for VictoriaDriver {
    fn descriptor(&self) -> &EngineDescriptor {
        &self.descriptor
    }

    async fn execute(
        &self,
        dialect: Dialect,
        statement: &Statement,
        options: &ExecuteOptions,
    ) -> Result<ResultSet> {
        self.descriptor.accept(dialect, statement)?;
        match classify(
            KIND,
            statement,
            options,
            now_millis(),
            crate::ts::Reader::Server,
        )? {
            TsStatement::Write { count, .. } => {
                self.http.write(&statement.text, options).await?;
                Ok(ResultSet {
                    rows_affected: count,
                    ..ResultSet::default()
                })
            }
            TsStatement::Query { text, when, .. } => {
                let result = series_rows(self.http.query(&text, when, options.timeout).await?);
                crate::ResultLimits::new(options).check(result)
            }
            TsStatement::Delete { selector, .. } => Ok(ResultSet {
                rows_affected: self.http.delete(&selector, options.timeout).await?,
                ..ResultSet::default()
            }),
        }
    }

    /// A range query runs in slices of `stream_points` steps, one slice in
    /// memory at a time.
    async fn execute_stream(
        &self,
        dialect: Dialect,
        statement: Statement,
        options: ExecuteOptions,
    ) -> Result<RowStream> {
        self.descriptor.accept(dialect, &statement)?;
        let execute = options.without_limits();
        let (text, when) = match classify(
            KIND,
            &statement,
            &execute,
            now_millis(),
            crate::ts::Reader::Server,
        )? {
            TsStatement::Query { text, when, .. } => (text, when),
            _ => {
                let result = self.execute(dialect, &statement, &execute).await?;
                return Ok(RowStream::from_result(result, options.batch_size()));
            }
        };
        let http = Arc::clone(&self.http);
        let slice_points = self.http.config.stream_points.max(1);
        Ok(crate::ts::stream_slices(
            when,
            slice_points,
            options.batch_size(),
            move |slice| {
                let http = Arc::clone(&http);
                let text = text.clone();
                async move {
                    Ok(series_rows(
                        http.query(&text, slice, execute.timeout).await?,
                    ))
                }
            },
        ))
    }

    async fn begin(&self, options: &BeginOptions) -> Result<Box<dyn DriverTransaction>> {
        Ok(Box::new(transaction::VictoriaTransaction {
            driver: self.clone(),
            options: options.clone(),
            queued: Vec::new(),
        }))
    }

    async fn replay(&self, _marker: &str, redo: &[crate::Redo]) -> Result<()> {
        transaction::replay(&self.http, redo).await
    }

    async fn describe(&self, options: &DescribeOptions) -> Result<Vec<SchemaObject>> {
        let metrics = self.http.strings("label/__name__/values").await?;
        let mut labels = Vec::new();
        for name in self.http.strings("labels").await? {
            if name != "__name__" {
                let values = self.http.strings(&format!("label/{name}/values")).await?;
                labels.push((name, values));
            }
        }
        let mut objects = describe_objects(metrics, labels);
        objects.retain(|o| options.wants(&o.name));
        Ok(objects)
    }

    async fn health(&self) -> Health {
        self.http.front.probe(self.http.health()).await
    }

    fn pool_stats(&self) -> PoolStats {
        let max = self.http.config.pool.max_connections.max(1);
        self.http.front.metrics().stats(PoolSize {
            max_size: max,
            size: max - self.http.slots.available_permits(),
            idle: 0,
            waiting: self.http.waiting.load(Ordering::Relaxed),
        })
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![
            (
                "connect_failures".into(),
                u64::from(self.http.front.connect_failures()),
            ),
            // 1 when the server deduplicates, which cross-engine
            // transactions need.
            ("deduplicates".into(), u64::from(self.http.dedup)),
        ]
    }
}

crate::kind::engine_kind!(
    VictoriaDriver,
    VictoriaConfig,
    [Ts],
    VictoriaDriver::connect
);
