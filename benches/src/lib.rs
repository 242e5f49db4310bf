//! What the benchmark binaries share: the drawing of their charts.

pub mod chart;
