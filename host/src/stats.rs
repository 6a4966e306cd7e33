//! Memory figures, and the verdict on whether memory stays bounded.

use std::time::Duration;

use elmbox_abi::MemoryReport;

/// One app's memory at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStats {
    /// Size of the guest's linear memory. Wasm memory never shrinks, so this
    /// is the high-water mark of everything the guest ever held at once.
    pub linear_memory_bytes: u64,
    /// Bytes QuickJS has allocated (its `malloc_size`).
    pub js_heap_bytes: u64,
    /// Bytes QuickJS counts as in use by JS values (its `memory_used_size`).
    pub js_used_bytes: u64,
    pub js_allocations: u64,
    pub js_objects: u64,
    pub js_strings: u64,
    pub js_functions: u64,
    pub js_atoms: u64,
    pub pending_timers: u64,
    /// Virtual milliseconds since the app was loaded.
    pub clock_ms: u64,
}

impl MemoryStats {
    pub(crate) fn from_guest(linear: u64, js: &MemoryReport) -> MemoryStats {
        let n = |v: i64| v.max(0) as u64;
        MemoryStats {
            linear_memory_bytes: linear,
            js_heap_bytes: n(js.malloc_size),
            js_used_bytes: n(js.memory_used_size),
            js_allocations: n(js.malloc_count),
            js_objects: n(js.obj_count),
            js_strings: n(js.str_count),
            js_functions: n(js.js_func_count),
            js_atoms: n(js.atom_count),
            pending_timers: n(js.pending_timers),
            clock_ms: n(js.clock_ms),
        }
    }
}

/// Resident set size of this process, where the OS reports it.
pub fn process_rss_bytes() -> Option<u64> {
    memory_stats::memory_stats().map(|m| m.physical_mem as u64)
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to fill.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0;
    match ok {
        true => Duration::new(now.tv_sec as u64, now.tv_nsec as u32),
        false => Duration::ZERO,
    }
}

/// Least-squares slope of `bytes` against `events`: bytes gained per event.
pub fn growth_per_event(samples: &[(u64, u64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_x = samples.iter().map(|s| s.0 as f64).sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y) in samples {
        let dx = x as f64 - mean_x;
        sxy += dx * (y as f64 - mean_y);
        sxx += dx * dx;
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Whether a series stays bounded: its growth per event after warm-up is
/// under `max_bytes_per_event`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub bytes_per_event: f64,
    pub bounded: bool,
}

impl Trend {
    /// Judges `samples` (events so far, bytes), ignoring the first `warmup`.
    pub fn judge(samples: &[(u64, u64)], warmup: usize, max_bytes_per_event: f64) -> Option<Trend> {
        let slope = growth_per_event(samples.get(warmup..)?)?;
        Some(Trend {
            bytes_per_event: slope,
            bounded: slope <= max_bytes_per_event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_series_has_zero_growth() {
        let s: Vec<_> = (1..=10).map(|i| (i * 1000, 5_000_000)).collect();
        assert_eq!(growth_per_event(&s), Some(0.0));
        assert!(Trend::judge(&s, 2, 0.5).unwrap().bounded);
    }

    #[test]
    fn leaking_series_is_flagged_after_warmup() {
        // 250 bytes per event, the memo's leak, with a noisy warm-up spike.
        let mut s: Vec<_> = (1..=10)
            .map(|i| (i * 1000, 1_000_000 + i * 250_000))
            .collect();
        s[0].1 = 9_000_000;
        let t = Trend::judge(&s, 1, 0.5).unwrap();
        assert!((t.bytes_per_event - 250.0).abs() < 1e-6);
        assert!(!t.bounded);
    }

    #[test]
    fn too_few_samples_give_no_verdict() {
        assert_eq!(Trend::judge(&[(1, 1), (2, 2)], 1, 0.5), None);
    }
}
