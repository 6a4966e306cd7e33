//! A durable app on the wall clock: its inputs at given instants, when its
//! earliest timer is due, and that due time kept in the store
//! ([`Write::TimerDue`]) so that whoever opens the store knows when to
//! wake the app without opening it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{unix_ms, AppClock};
use crate::error::Result;

use super::log::Input;
use super::store::Write;
use super::{DurableApp, Submitted};

impl DurableApp {
    /// Sends one event at the wall-clock time `at` (see [`App::dispatch_at`](crate::App::dispatch_at))
    /// and records it with that instant, so that a replay sees the time the
    /// app saw.
    pub fn submit_event_at(&mut self, at: SystemTime, event: &[u8]) -> Result<Submitted> {
        let instant = self.app.clock().instant_at(at);
        self.submit_at(instant, Input::Event(event.to_vec()))
    }

    /// Moves the app's clock to the wall-clock time `at`, firing the timers
    /// due by then (see [`App::advance_to`](crate::App::advance_to)), and records it: what a
    /// scheduler calls at [`DurableApp::next_due`].
    pub fn submit_advance_to(&mut self, at: SystemTime) -> Result<Submitted> {
        let instant = self.app.clock().instant_at(at);
        self.submit_at(instant, Input::Wake)
    }

    /// [`DurableApp::submit_event_at`], answered once durable.
    pub fn dispatch_json_at(&mut self, at: SystemTime, event: impl AsRef<[u8]>) -> Result<String> {
        self.submit_event_at(at, event.as_ref())?.wait()
    }

    /// [`DurableApp::submit_advance_to`], answered once durable.
    pub fn advance_to_json(&mut self, at: SystemTime) -> Result<String> {
        self.submit_advance_to(at)?.wait()
    }

    /// The app's clock after its last input.
    pub fn clock(&self) -> AppClock {
        self.app.clock()
    }

    /// When the app's earliest armed timer is due, on the wall clock.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.app.next_due()
    }

    /// How many timers the last input fired.
    pub fn timers_fired(&self) -> u32 {
        self.app.timers_fired()
    }

    /// Once the app is restored: reads the due time the store keeps, and
    /// corrects it if the app's clock says otherwise.
    pub(super) fn keep_timer_due_as_stored(&mut self) -> Result<()> {
        let kept = self.store.timer_due(&self.name)?;
        self.kept_due = Some(kept.map(|unix_ms| self.instant_of_unix_ms(unix_ms)));
        self.keep_timer_due(true)
    }

    /// Keeps in the store when the app's earliest timer is due
    /// ([`Write::TimerDue`]), if it changed: `exact`ly, or (after each
    /// input) only if it is now earlier than the kept one. A kept time
    /// earlier than the timer costs at most a needless wake-up; a later
    /// one would be a late timer. So a ticking app writes nothing per tick.
    pub(super) fn keep_timer_due(&mut self, exact: bool) -> Result<()> {
        let next = self.app.clock().next_due_ms;
        let stale = match (self.kept_due, next) {
            (None, _) => true,
            (Some(kept), _) if exact => kept != next,
            (Some(None), Some(_)) => true,
            (Some(Some(kept)), Some(next)) => next < kept,
            (Some(_), None) => false,
        };
        if !stale {
            return Ok(());
        }
        let clock = self.app.clock();
        let due_unix_ms = next.map(|ms| unix_ms(clock.wall_time_of(ms)));
        self.committer.write(Write::TimerDue {
            app: self.name.clone(),
            due_unix_ms,
        })?;
        self.kept_due = Some(next);
        Ok(())
    }

    /// The app's instant at the wall-clock time `unix_ms`, as kept.
    fn instant_of_unix_ms(&self, unix_ms: i64) -> u64 {
        let clock = AppClock {
            now_ms: 0,
            ..self.app.clock()
        };
        let at = UNIX_EPOCH + Duration::from_millis(unix_ms.max(0) as u64);
        clock.instant_at(at)
    }
}
