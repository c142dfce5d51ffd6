//! How many events are due when: a deterministic function of elapsed time.
//!
//! The schedule is the integral of the rate, `expected(t)` = events expected in `[0, t)`. The count due
//! in `(a, a + step]` is `floor(expected(a + step)) - floor(expected(a))`, so the total over any
//! sequence of steps is the same however time is sliced, and nothing is lost to rounding.
//!
//! Bursts are drawn per 10-second segment from a hash of (seed, segment), not from the event stream,
//! so the schedule does not depend on how many events were generated or in which order it is asked.

use crate::RatePattern;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEGMENT_MS: u64 = 10_000;
/// Chance that a segment holds a burst.
const BURST_PROBABILITY: f64 = 0.15;
const BURST_MIN_MS: u64 = 2_000;
const BURST_MAX_MS: u64 = 6_000;
const BURST_MIN_FACTOR: f64 = 5.0;
const BURST_MAX_FACTOR: f64 = 10.0;

/// Mean rate over base rate in bursty mode: bursts add `(factor - 1) x base` for their duration.
fn bursty_mean_factor() -> f64 {
    let mean_share = (BURST_MIN_MS + BURST_MAX_MS) as f64 / 2.0 / SEGMENT_MS as f64;
    let mean_extra = (BURST_MIN_FACTOR + BURST_MAX_FACTOR) / 2.0 - 1.0;
    1.0 + BURST_PROBABILITY * mean_share * mean_extra
}

/// A burst within one segment: `[start_ms, end_ms)` relative to the segment start.
#[derive(Clone, Copy, Debug)]
struct Burst {
    start_ms: u64,
    end_ms: u64,
    factor: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct RateSchedule {
    seed: u64,
    pattern: RatePattern,
    /// Events per millisecond outside bursts.
    base_per_ms: f64,
    /// `prefix[i]` = expected events before segment `i`; grows as time advances (8 bytes per 10 s).
    prefix: Vec<f64>,
}

impl RateSchedule {
    pub(crate) fn new(seed: u64, pattern: RatePattern, mean_per_sec: f64) -> RateSchedule {
        let mean_per_ms = mean_per_sec.max(0.0) / 1000.0;
        let base_per_ms = match pattern {
            RatePattern::Steady => mean_per_ms,
            RatePattern::Bursty => mean_per_ms / bursty_mean_factor(),
        };
        RateSchedule {
            seed,
            pattern,
            base_per_ms,
            prefix: vec![0.0],
        }
    }

    /// Events due in `(elapsed_ms, elapsed_ms + step_ms]`.
    pub(crate) fn due(&mut self, elapsed_ms: u64, step_ms: u64) -> usize {
        let end = elapsed_ms.saturating_add(step_ms);
        let due = self.expected(end).floor() - self.expected(elapsed_ms).floor();
        due.max(0.0) as usize
    }

    /// Expected events in `[0, t_ms)`.
    fn expected(&mut self, t_ms: u64) -> f64 {
        let segment = t_ms / SEGMENT_MS;
        while self.prefix.len() as u64 <= segment {
            let i = self.prefix.len() as u64 - 1;
            let next = self.prefix[i as usize] + self.within_segment(i, SEGMENT_MS);
            self.prefix.push(next);
        }
        self.prefix[segment as usize] + self.within_segment(segment, t_ms % SEGMENT_MS)
    }

    /// Expected events in the first `offset_ms` of a segment.
    fn within_segment(&self, segment: u64, offset_ms: u64) -> f64 {
        let mut events = self.base_per_ms * offset_ms as f64;
        if let Some(b) = self.burst(segment) {
            let overlap = offset_ms.min(b.end_ms).saturating_sub(b.start_ms);
            events += self.base_per_ms * (b.factor - 1.0) * overlap as f64;
        }
        events
    }

    fn burst(&self, segment: u64) -> Option<Burst> {
        if self.pattern == RatePattern::Steady {
            return None;
        }
        let mut rng = StdRng::seed_from_u64(splitmix64(self.seed ^ splitmix64(segment)));
        if !rng.gen_bool(BURST_PROBABILITY) {
            return None;
        }
        let length = rng.gen_range(BURST_MIN_MS..=BURST_MAX_MS);
        let start_ms = rng.gen_range(0..=SEGMENT_MS - length);
        Some(Burst {
            start_ms,
            end_ms: start_ms + length,
            factor: rng.gen_range(BURST_MIN_FACTOR..BURST_MAX_FACTOR),
        })
    }
}

/// A well-mixed 64-bit hash, so neighbouring segments get unrelated bursts.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_is_exact_however_time_is_sliced() {
        let mut s = RateSchedule::new(1, RatePattern::Steady, 200.0);
        let by_ms: usize = (0..10_000).map(|t| s.due(t, 1)).sum();
        let by_second: usize = (0..10).map(|i| s.due(i * 1000, 1000)).sum();
        assert_eq!((by_ms, by_second), (2_000, 2_000));
        // A slow rate still produces its events, just not every step.
        let mut slow = RateSchedule::new(1, RatePattern::Steady, 0.5);
        assert_eq!((0..20).map(|i| slow.due(i * 1000, 1000)).sum::<usize>(), 10);
    }

    #[test]
    fn bursty_keeps_the_mean_and_has_bursts_of_five_to_ten_times_the_base() {
        let mut s = RateSchedule::new(42, RatePattern::Bursty, 200.0);
        let hours = 6;
        let seconds = hours * 3600;
        let per_second: Vec<usize> = (0..seconds).map(|i| s.due(i * 1000, 1000)).collect();
        let total: usize = per_second.iter().sum();
        let mean = total as f64 / seconds as f64;
        assert!((mean - 200.0).abs() < 200.0 * 0.03, "mean {mean}");
        let base = 200.0 / bursty_mean_factor();
        let busiest = *per_second.iter().max().unwrap() as f64;
        assert!(
            busiest > 4.5 * base && busiest <= 10.0 * base + 1.0,
            "busiest {busiest}, base {base}"
        );
        let quiet = per_second
            .iter()
            .filter(|&&n| (n as f64) < 1.5 * base)
            .count();
        assert!(
            quiet as f64 > 0.8 * seconds as f64,
            "most seconds run at the base rate"
        );
        // Same seed, same schedule, also when asked out of order.
        let mut again = RateSchedule::new(42, RatePattern::Bursty, 200.0);
        assert_eq!(again.due(5_000_000, 1000), per_second[5000]);
    }
}
