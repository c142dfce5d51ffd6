//! Events laid out on event time at the configured rate: the stream behind [`crate::write_events`].

use crate::{GenConfig, Generator};
use topsellers_model::{PurchaseEvent, TimestampMs};

/// Event time advances in steps of this size; the events due in a step are spread evenly over it.
const STEP_MS: u64 = 100;

/// An iterator of `n` events with times from `start_ms` on, following the rate pattern, so the mean
/// rate is `rate_per_sec`. Deterministic for a config.
pub struct Timeline {
    generator: Generator,
    start_ms: TimestampMs,
    remaining: u64,
    elapsed_ms: u64,
    /// Events of the current step: (index in step, count in step).
    in_step: (u64, u64),
}

impl Timeline {
    pub fn new(config: &GenConfig, n: u64, start_ms: TimestampMs) -> Timeline {
        Timeline {
            generator: Generator::new(config.clone()),
            start_ms,
            remaining: n,
            elapsed_ms: 0,
            in_step: (0, 0),
        }
    }

    /// The generator, for its catalog.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }
}

impl Iterator for Timeline {
    type Item = PurchaseEvent;

    fn next(&mut self) -> Option<PurchaseEvent> {
        if self.remaining == 0 {
            return None;
        }
        while self.in_step.0 == self.in_step.1 {
            // Steps with nothing due are skipped; the rate is positive, so some step has events.
            let due = self.generator.events_due(self.elapsed_ms, STEP_MS) as u64;
            self.in_step = (0, due);
            if due == 0 {
                self.elapsed_ms += STEP_MS;
            }
        }
        let (index, due) = self.in_step;
        let offset = self.elapsed_ms + index * STEP_MS / due;
        self.in_step.0 += 1;
        if self.in_step.0 == due {
            self.elapsed_ms += STEP_MS;
        }
        self.remaining -= 1;
        Some(
            self.generator
                .next_event(self.start_ms.saturating_add(offset as i64)),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_follow_the_mean_rate_and_never_go_backwards_for_on_time_sales() {
        let config = GenConfig {
            late_fraction: 0.0,
            duplicate_fraction: 0.0,
            ..GenConfig::default()
        };
        let events: Vec<PurchaseEvent> = Timeline::new(&config, 10_000, 1_000).collect();
        assert_eq!(events.len(), 10_000);
        assert!(events
            .windows(2)
            .all(|w| w[0].event_time_ms <= w[1].event_time_ms));
        let span = events.last().unwrap().event_time_ms - 1_000;
        // 10 000 events at 200/s: about 50 s.
        assert!((40_000..=60_000).contains(&span), "{span}");
        assert_eq!(Timeline::new(&config, 0, 0).next(), None);
    }
}
