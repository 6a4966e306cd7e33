//! Per-app bounds: what one app may send in, use, or make the guest do.

use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits};

/// Limits enforced for one app. Defaults suit a trusted app; tighten them for
/// multi-tenant hosting.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest event accepted, in bytes; larger ones are refused before they
    /// reach the guest.
    pub max_event_bytes: usize,
    /// Largest response (the JSON array of one call's outputs), in bytes.
    pub max_output_bytes: usize,
    /// Cap on the guest's linear memory (`None`: wasm's 4 GiB). The guest
    /// starts at ~8.4 MiB (most of it its 8 MiB C stack), so caps below
    /// ~10 MiB leave an app no room.
    pub max_memory_bytes: Option<usize>,
    /// CPU time one call may take (`None`: unbounded). Enforced by epoch
    /// interruption with a 1 ms tick, on a runtime made with
    /// [`Runtime::with_deadlines`](crate::Runtime::with_deadlines); an app past
    /// it is stopped mid-call and marked failed.
    pub deadline: Option<Duration>,
    /// QuickJS heap limit in bytes (`None`: no limit). Past it, allocations
    /// throw a JavaScript out-of-memory error inside the app.
    pub js_memory_limit: Option<usize>,
    /// Timer callbacks allowed at one virtual instant before the app is
    /// declared runaway (a `setTimeout(f, 0)` that re-arms itself forever).
    pub same_instant_timer_limit: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 1 << 20,
            max_output_bytes: 16 << 20,
            max_memory_bytes: None,
            deadline: None,
            js_memory_limit: None,
            same_instant_timer_limit: 100_000,
        }
    }
}

/// wasmtime's [`StoreLimits`], plus a note of the last memory growth it
/// refused, so an error can name the cap instead of the symptom.
pub(crate) struct CapLimiter {
    pub(crate) inner: StoreLimits,
    pub(crate) memory_refused: Option<usize>,
}

impl ResourceLimiter for CapLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_refused = Some(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
