//! One app's side of outgoing HTTP: its name, its policy, and its place
//! among the requests in flight (at most its `max_concurrent`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use crate::policy::HttpPolicy;

/// One app's side of outgoing HTTP: its name (for logs), its policy and
/// the count of its requests in flight. Cheap to clone; make a new one
/// when the policy changes.
#[derive(Clone, Debug)]
pub struct AppHttp {
    inner: Arc<AppHttpInner>,
}

#[derive(Debug)]
struct AppHttpInner {
    name: String,
    policy: HttpPolicy,
    in_flight: AtomicU32,
}

impl AppHttp {
    /// The outgoing HTTP of the app `name` (used in logs).
    pub fn new(name: impl Into<String>, policy: HttpPolicy) -> AppHttp {
        AppHttp {
            inner: Arc::new(AppHttpInner {
                name: name.into(),
                policy,
                in_flight: AtomicU32::new(0),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn policy(&self) -> &HttpPolicy {
        &self.inner.policy
    }

    /// How many of the app's requests are in flight now.
    pub fn in_flight(&self) -> u32 {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn take_slot(&self) -> Option<Slot> {
        let max = self.inner.policy.max_concurrent;
        self.inner
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot {
                app: self.clone(),
                held: AtomicBool::new(true),
            })
    }
}

#[derive(Debug)]
pub(crate) struct Slot {
    app: AppHttp,
    held: AtomicBool,
}

impl Slot {
    /// Idempotent: an abort and the task's end may both release.
    pub(crate) fn release(&self) {
        if self.held.swap(false, Ordering::AcqRel) {
            self.app.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
