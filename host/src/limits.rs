//! Per-app bounds: what one app may send in or make the guest do.

/// Limits enforced for one app. Defaults suit a trusted app; tighten them for
/// multi-tenant hosting.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest event accepted, in bytes; larger ones are refused before they
    /// reach the guest.
    pub max_event_bytes: usize,
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
            js_memory_limit: None,
            same_instant_timer_limit: 100_000,
        }
    }
}
