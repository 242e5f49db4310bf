//! The two pictures: the benchmark's latency chart (`bench.svg`) and the
//! soak's plot over time (`soak.svg`). Both are plain SVG sized so every
//! label fits the canvas (monospace text, so a label's width is known
//! from its length), with axes, units and a legend.

mod latency;
mod soak;

pub use latency::{LatencyRow, latency_chart};
pub use soak::soak_chart;

/// The font size of ordinary text, px.
pub(super) const FONT: f64 = 11.0;
/// A monospace character's advance as a fraction of the font size
/// (DejaVu Sans Mono and most others: 0.6).
pub(super) const CHAR_W: f64 = 0.6;

/// The width of `text` drawn at `size` px in a monospace font.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * CHAR_W
}

/// `text` escaped for SVG.
pub(super) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The colour a path is drawn in.
pub(super) fn duration_label(us: f64) -> String {
    let (value, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    if value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Tick values from 0 to at least `max`, 4 to 8 of them, steps of 1, 2
/// or 5 times a power of ten.
pub(super) fn linear_ticks(max: f64) -> Vec<f64> {
    let max = if max > 0.0 && max.is_finite() {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| max / s <= 6.0)
        .unwrap_or(10.0 * magnitude);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A tick value as text: no trailing zeros, thousands as `k`.
pub(super) fn tick_label(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", trim(v / 1000.0))
    } else {
        trim(v)
    }
}

pub(super) fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A count with thousands separated: `8,591,098`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A `<text>` element of an SVG: where it starts and ends horizontally
/// (from its `x`, `text-anchor`, `font-size` and length), its baseline,
/// and what it says.
#[derive(Debug)]
pub struct Label {
    /// Left edge, px.
    pub left: f64,
    /// Right edge, px.
    pub right: f64,
    /// Baseline, px.
    pub y: f64,
    /// The text, unescaped.
    pub text: String,
}

/// Every `<text>` of an SVG written by this module, measured.
pub fn labels(svg: &str) -> Vec<Label> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_owned())
    };
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find("<text") {
        rest = &rest[open..];
        let Some(tag_end) = rest.find('>') else { break };
        let Some(close) = rest.find("</text>") else {
            break;
        };
        let tag = &rest[..tag_end];
        let text = rest[tag_end + 1..close]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        let number = |name: &str, default: f64| {
            attr(tag, name)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(default)
        };
        let size = number("font-size", FONT);
        let width = text_width(&text, size);
        let x = number("x", 0.0);
        let left = match attr(tag, "text-anchor").as_deref() {
            Some("end") => x - width,
            Some("middle") => x - width / 2.0,
            _ => x,
        };
        out.push(Label {
            left,
            right: left + width,
            y: number("y", 0.0),
            text,
        });
        rest = &rest[close + 7..];
    }
    out
}

/// The canvas size an SVG declares.
pub fn canvas(svg: &str) -> (f64, f64) {
    let get = |name: &str| {
        let start = svg.find(&format!(" {name}=\"")).map(|i| i + name.len() + 3);
        start
            .and_then(|s| svg[s..].split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (get("width"), get("height"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use omnigate_tests::soak::{Restart, Sample, SoakReport};

    use super::*;

    /// Every label lies inside the canvas; returns them.
    fn inside(svg: &str) -> Vec<Label> {
        let (width, height) = canvas(svg);
        assert!(width > 0.0 && height > 0.0, "no canvas size");
        let labels = labels(svg);
        assert!(!labels.is_empty());
        for l in &labels {
            assert!(
                l.left >= 0.0 && l.right <= width && l.y > 0.0 && l.y <= height,
                "{l:?} is outside the {width}×{height} canvas"
            );
        }
        labels
    }

    fn says(labels: &[Label], text: &str) -> bool {
        labels.iter().any(|l| l.text.contains(text))
    }

    #[test]
    fn latency_chart_fits_its_labels_and_has_a_scale_and_a_legend() {
        let mut rows = Vec::new();
        for workload in ["pg_point_read", "redis_pipeline_8_long_name"] {
            for concurrency in [1, 64] {
                for path in ["direct", "library", "grpc", "pgbouncer", "twemproxy"] {
                    rows.push(LatencyRow {
                        workload: workload.into(),
                        concurrency,
                        path: path.into(),
                        p50_us: 44,
                        p99_us: 80,
                    });
                }
            }
        }
        // The figures that were cut at the right edge before.
        rows[3].p50_us = 847_359;
        rows[3].p99_us = 1_057_791;
        let svg = latency_chart(&rows);
        let labels = inside(&svg);
        assert!(says(&labels, "847359 / 1057791"));
        for legend in [
            "direct driver",
            "library (in process)",
            "gRPC (omnigate serve)",
            "pgbouncer",
            "twemproxy",
            "p99",
        ] {
            assert!(says(&labels, legend), "no legend entry {legend}");
        }
        // Decades from 10 µs to 10 s, and the units.
        for tick in ["10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s"] {
            assert!(says(&labels, tick), "no scale tick {tick}");
        }
        assert!(says(&labels, "p50 / p99 µs"));
        assert!(says(&labels, "64 tasks  pgbouncer"));
    }

    #[test]
    fn latency_chart_reads_bench_json() {
        let json = serde_json::json!({"results": [
            {"workload": "w", "path": "grpc", "concurrency": 16, "p50_us": 5, "p99_us": 9, "ops": 1}
        ]});
        let rows = LatencyRow::from_json(&json).unwrap_or_default();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].concurrency, rows[0].p99_us), (16, 9));
        assert!(LatencyRow::from_json(&serde_json::json!({})).is_err());
        inside(&latency_chart(&rows));
        // Nothing measured still draws a frame.
        inside(&latency_chart(&[]));
    }

    #[test]
    fn soak_chart_fits_its_labels_and_has_axes_and_legends() {
        let samples: Vec<Sample> = (1..=180_u32)
            .map(|i| Sample {
                at_s: f64::from(i) * 10.0,
                calls: BTreeMap::from([
                    ("OK".to_owned(), 50_000 + u64::from(i) * 100),
                    ("UNAVAILABLE".to_owned(), u64::from(i % 18 == 0) * 400),
                ]),
                p50_us: 2_000,
                p99_us: 15_000 + u64::from(i % 18 == 0) * 2_000_000,
                rss_kib: 25_000,
                fds: 58,
                pools: BTreeMap::new(),
            })
            .collect();
        let report = SoakReport {
            samples,
            restarts: ["postgres", "redis", "falkordb", "victoriametrics"]
                .iter()
                .enumerate()
                .map(|(i, e)| Restart {
                    engine: (*e).into(),
                    killed_at_s: 180.0 * (i + 1) as f64,
                    serving_after_ms: Some(300),
                })
                .collect(),
            ..SoakReport::default()
        };
        let svg = soak_chart(&report);
        let labels = inside(&svg);
        for legend in [
            "OK (10,629,000 calls)",
            "failed (4,000)",
            "p50",
            "p99",
            "RSS",
            "fds",
            "P postgres, R redis, F falkordb, V victoriametrics",
        ] {
            assert!(says(&labels, legend), "no legend entry {legend}");
        }
        for unit in ["per second", "ms", "MiB", "minutes since the start"] {
            assert!(says(&labels, unit), "no unit {unit}");
        }
        // Minutes along the time axis, 0 to 30.
        assert!(labels.iter().any(|l| l.text == "0"));
        assert!(labels.iter().any(|l| l.text == "30"));
        // An empty report still draws.
        inside(&soak_chart(&SoakReport::default()));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            linear_ticks(6412.6),
            vec![0.0, 2000.0, 4000.0, 6000.0, 8000.0]
        );
        assert_eq!(linear_ticks(61.0), vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(
            linear_ticks(30.0),
            vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(duration_label(1_000.0), "1 ms");
        assert_eq!(duration_label(1_500.0), "1.5 ms");
        assert_eq!(thousands(8_591_098), "8,591,098");
        assert_eq!(thousands(16), "16");
    }
}
