//! An app's clock as the host sees it ([`AppClock`]), and the mapping
//! between its instants and the wall clock.
//!
//! An app counts time in whole milliseconds since it was loaded; what
//! `Date.now()` reads is its epoch plus that. Virtual time (`elmbox run`)
//! moves the count by given steps; the wall clock (`elmbox serve`, `run
//! --clock wall`) moves it to the instant the wall clock reads, never
//! backwards. Every call tells the host where the clock is and when the
//! earliest timer is due, so a host can wake the app then: that is all an
//! embedder needs to build its own scheduler.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where an app's clock stood after its last call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AppClock {
    /// Milliseconds since the app was loaded.
    pub now_ms: u64,
    /// When its earliest armed timer is due, in the same count.
    pub next_due_ms: Option<u64>,
    /// What `Date.now()` reads at instant 0 (ms since the Unix epoch).
    pub epoch_ms: f64,
}

impl AppClock {
    /// What `Date.now()` reads now.
    pub fn date_now_ms(&self) -> f64 {
        self.epoch_ms + self.now_ms as f64
    }

    /// The app's instant for the wall-clock time `at`: never before the
    /// clock's own (a wall clock set back does not move an app backwards).
    pub fn instant_at(&self, at: SystemTime) -> u64 {
        let unix_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let since_load = (unix_ms - self.epoch_ms).floor();
        let since_load = if since_load > 0.0 {
            since_load.min(u64::MAX as f64) as u64
        } else {
            0
        };
        since_load.max(self.now_ms)
    }

    /// The wall-clock time of the app's instant `ms`: the first whole
    /// millisecond at which [`AppClock::instant_at`] reaches it.
    pub fn wall_time_of(&self, ms: u64) -> SystemTime {
        let unix_ms = (self.epoch_ms + ms as f64).ceil().max(0.0);
        UNIX_EPOCH + Duration::from_millis(unix_ms.min(u64::MAX as f64) as u64)
    }

    /// When the earliest armed timer is due, on the wall clock.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.next_due_ms.map(|ms| self.wall_time_of(ms))
    }
}

/// Milliseconds since the Unix epoch at `at` (0 before it), as a store
/// keeps a timer's due time.
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_instant_is_reached_at_its_wall_time_whatever_the_epoch() {
        for epoch_ms in [1.7e12, 1.7e12 + 0.5, 0.25, 0.0] {
            let clock = AppClock {
                now_ms: 10,
                next_due_ms: Some(1000),
                epoch_ms,
            };
            let due = clock.next_due().unwrap();
            assert_eq!(clock.instant_at(due), 1000, "epoch {epoch_ms}");
            assert_eq!(
                clock.instant_at(due - Duration::from_millis(1)),
                999,
                "epoch {epoch_ms}"
            );
        }
    }

    #[test]
    fn the_clock_never_goes_back() {
        let clock = AppClock {
            now_ms: 5000,
            next_due_ms: None,
            epoch_ms: 1.7e12,
        };
        assert_eq!(clock.instant_at(UNIX_EPOCH), 5000);
        assert_eq!(clock.instant_at(clock.wall_time_of(100)), 5000);
        assert_eq!(clock.instant_at(clock.wall_time_of(6000)), 6000);
    }
}
