//! Exponential backoff with jitter between retries (KIP-580).

use std::time::Duration;

/// Default [`Backoff::min`]: 100 ms (Java `retry.backoff.ms`).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Default [`Backoff::max`]: 1 s (Java `retry.backoff.max.ms`).
pub const DEFAULT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Waits that double from `min` up to `max`, each moved by up to ±`jitter` of itself so
/// clients that failed together do not retry together (KIP-580; the Java client's default
/// jitter is 20%).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first wait. Default [`DEFAULT_RETRY_BACKOFF`].
    pub min: Duration,
    /// The longest wait. Default [`DEFAULT_RETRY_BACKOFF_MAX`].
    pub max: Duration,
    /// The fraction (0 to 1) by which each wait may move either way. Default 0.2.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { min: DEFAULT_RETRY_BACKOFF, max: DEFAULT_RETRY_BACKOFF_MAX, jitter: 0.2 }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.min.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(self.max);
        let j = self.jitter.clamp(0.0, 1.0);
        // A fraction in [-1, 1) from a cheap per-call source: the clock's nanoseconds mixed
        // with the attempt; spread, not secrecy, is the point.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mix = (nanos as u64 ^ ((attempt as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let unit = (mix >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        base.mul_f64((1.0 + j * unit).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_min_to_max_within_the_jitter() {
        let b = Backoff::default();
        for (attempt, base_ms) in [(0u32, 100.0), (1, 200.0), (2, 400.0), (3, 800.0), (4, 1000.0), (40, 1000.0)] {
            for _ in 0..50 {
                let d = b.delay(attempt).as_secs_f64() * 1000.0;
                assert!(d >= base_ms * 0.8 - 1e-6 && d <= base_ms * 1.2 + 1e-6, "attempt {attempt}: {d} ms");
            }
        }
        let none = Backoff { jitter: 0.0, ..b };
        assert_eq!(none.delay(2), Duration::from_millis(400));
    }
}
