//! Latency summaries.

use std::time::Duration;

/// Sorted samples of one measurement.
#[derive(Debug)]
pub(crate) struct Samples(Vec<Duration>);

impl Samples {
    pub(crate) fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Samples(samples)
    }

    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[at.min(self.0.len() - 1)]
    }

    pub(crate) fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    pub(crate) fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// The latency at every whole percentile, 0 to 100, in microseconds (for the chart).
    pub(crate) fn percentiles_us(&self) -> Vec<f64> {
        if self.0.is_empty() {
            return Vec::new();
        }
        (0..=100)
            .map(|p| self.quantile(f64::from(p) / 100.0).as_secs_f64() * 1e6)
            .collect()
    }
}

/// A latency in the unit that keeps three significant digits readable.
pub(crate) fn ms(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else {
        format!("{:.3} ms", micros / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_known_samples() {
        let s = Samples::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(s.p50(), Duration::from_millis(51));
        assert_eq!(s.p99(), Duration::from_millis(99));
        assert_eq!(Samples::new(vec![]).p99(), Duration::ZERO);
        assert_eq!(ms(Duration::from_nanos(2500)), "2.5 µs");
        assert_eq!(ms(Duration::from_micros(12_345)), "12.345 ms");
    }
}
