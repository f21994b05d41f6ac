//! What one load run measured: completed calls, errors, throughput and latency percentiles.

use std::time::Duration;

#[derive(Default)]
pub struct Samples {
    /// Of the successful calls in the window.
    pub latencies: Vec<Duration>,
    /// Failed calls in the window.
    pub errors: u64,
    /// Every call made, warm-up included.
    pub all: u64,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.all += other.all;
    }
}

pub struct Summary {
    pub errors: u64,
    /// Every call made, warm-up included.
    pub all: u64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Summary {
    /// Summarises the samples of a window of `elapsed`.
    pub fn of(mut samples: Samples, elapsed: Duration) -> Self {
        samples.latencies.sort_unstable();
        let percentile = |p: f64| {
            let n = samples.latencies.len();
            if n == 0 {
                return f64::NAN;
            }
            let index = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
            samples.latencies[index].as_secs_f64() * 1e3
        };
        Self {
            errors: samples.errors,
            all: samples.all,
            throughput: samples.latencies.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
        }
    }
}

/// The median of a few measurements.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
