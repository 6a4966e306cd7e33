//! The bounds the host puts on an app's sandbox ([`SandboxLimits`]): what
//! it may send in and out, the linear memory it may use, the CPU time a
//! call may take. Any instance of any app can take them; they live on the
//! [`Runtime`](crate::Runtime) that starts it, and are checked where that
//! runtime is made. What is fixed inside the app when it is loaded (its
//! QuickJS heap limit, its timer limit) is in
//! [`AppConfig`](crate::AppConfig) instead.

use std::time::Duration;

use crate::error::{Error, Result};

/// Bounds enforced by the host for each app. The defaults suit a trusted
/// app; tighten them for multi-tenant hosting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Largest event accepted, in bytes; larger ones are refused before they
    /// reach the guest.
    pub max_event_bytes: usize,
    /// Largest response (the JSON array of one call's outputs), in bytes.
    pub max_output_bytes: usize,
    /// Cap on the guest's linear memory (`None`: wasm's 4 GiB). The guest
    /// starts at ~8.4 MiB (most of it its 8 MiB C stack), so caps below
    /// ~10 MiB leave an app no room.
    pub max_memory_bytes: Option<usize>,
    /// Time one call may take (`None`: unbounded), counted inside the
    /// sandbox from the call's start and checked by QuickJS's interrupt
    /// handler every 10,000 interpreter ticks, on a runtime with deadlines
    /// ([`Runtime::with_deadlines`](crate::Runtime::with_deadlines)); an
    /// app past it is stopped mid-call and marked failed.
    pub deadline: Option<Duration>,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            max_event_bytes: 1 << 20,
            max_output_bytes: 16 << 20,
            max_memory_bytes: None,
            deadline: None,
        }
    }
}

impl SandboxLimits {
    /// Refuses limits an engine cannot keep: a deadline without epoch
    /// interruption, a memory cap below the guest's initial memory.
    pub(crate) fn check(&self, initial_memory_bytes: usize, deadlines: bool) -> Result<()> {
        if let Some(bytes) = self.max_memory_bytes {
            if bytes < initial_memory_bytes {
                return Err(Error::Config(format!(
                    "a linear memory cap of {bytes} bytes is below the guest's initial \
                     {initial_memory_bytes} bytes"
                )));
            }
        }
        if self.deadline.is_some() && !deadlines {
            return Err(Error::Config(
                "CPU deadlines need a runtime made with Runtime::with_deadlines() \
                 (or RuntimeBuilder::deadlines(true))"
                    .into(),
            ));
        }
        Ok(())
    }
}
