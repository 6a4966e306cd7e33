//! The binary records the host reads straight from guest memory, at
//! addresses the guest hands out once.

/// What a call hands back, at the fixed address `elmbox_reply` returns:
/// ten little-endian `u32`s (wasm32 pointers and lengths), then the
/// app's clock after the call as two `u64`s and an `f64`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reply {
    /// 0 when the call succeeded, 1 when `error` holds a JSON `AppError`.
    pub status: u32,
    /// A JSON array of the outgoing-port values.
    pub outputs_ptr: u32,
    pub outputs_len: u32,
    /// Console frames (see [`crate::console::frames`]).
    pub console_ptr: u32,
    pub console_len: u32,
    pub error_ptr: u32,
    pub error_len: u32,
    /// Timers armed before the call that fired during it (those that came
    /// due, not the zero-delay ones the call set off).
    pub timers_fired: u32,
    /// The outgoing HTTP requests the call started or aborted: frames of
    /// [`crate::http::HttpAction`]s.
    pub http_ptr: u32,
    pub http_len: u32,
    /// The clock's instant, in ms since the app was loaded.
    pub clock_ms: u64,
    /// When the earliest armed timer is due, in ms since load;
    /// [`Reply::NO_TIMER`] when none is armed.
    pub next_due_ms: u64,
    /// What `Date.now()` reads at instant 0: `Date.now()` is
    /// `epoch_ms + clock_ms`.
    pub epoch_ms: f64,
}

impl Reply {
    pub const SIZE: usize = 10 * 4 + 3 * 8;
    /// `next_due_ms` when no timer is armed.
    pub const NO_TIMER: u64 = u64::MAX;

    /// Decodes the record as the host reads it from guest memory.
    pub fn from_le_bytes(bytes: &[u8]) -> Option<Reply> {
        let w = |i: usize| {
            Some(u32::from_le_bytes(
                bytes.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        let d =
            |i: usize| -> Option<[u8; 8]> { bytes.get(40 + 8 * i..48 + 8 * i)?.try_into().ok() };
        Some(Reply {
            status: w(0)?,
            outputs_ptr: w(1)?,
            outputs_len: w(2)?,
            console_ptr: w(3)?,
            console_len: w(4)?,
            error_ptr: w(5)?,
            error_len: w(6)?,
            timers_fired: w(7)?,
            http_ptr: w(8)?,
            http_len: w(9)?,
            clock_ms: u64::from_le_bytes(d(0)?),
            next_due_ms: u64::from_le_bytes(d(1)?),
            epoch_ms: f64::from_le_bytes(d(2)?),
        })
    }

    /// When the earliest timer is due, if one is armed.
    pub fn next_due(&self) -> Option<u64> {
        (self.next_due_ms != Reply::NO_TIMER).then_some(self.next_due_ms)
    }
}

/// QuickJS's own accounting, at the address `elmbox_memory` returns: nine
/// little-endian `i64`s.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryReport {
    pub malloc_size: i64,
    pub malloc_count: i64,
    pub memory_used_size: i64,
    pub obj_count: i64,
    pub str_count: i64,
    pub atom_count: i64,
    pub js_func_count: i64,
    pub pending_timers: i64,
    pub clock_ms: i64,
}

impl MemoryReport {
    pub const SIZE: usize = 9 * 8;

    pub fn from_le_bytes(bytes: &[u8]) -> Option<MemoryReport> {
        let f = |i: usize| {
            Some(i64::from_le_bytes(
                bytes.get(8 * i..8 * i + 8)?.try_into().ok()?,
            ))
        };
        Some(MemoryReport {
            malloc_size: f(0)?,
            malloc_count: f(1)?,
            memory_used_size: f(2)?,
            obj_count: f(3)?,
            str_count: f(4)?,
            atom_count: f(5)?,
            js_func_count: f(6)?,
            pending_timers: f(7)?,
            clock_ms: f(8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_match_their_repr_c_layout() {
        assert_eq!(std::mem::size_of::<Reply>(), Reply::SIZE);
        assert_eq!(std::mem::size_of::<MemoryReport>(), MemoryReport::SIZE);
    }

    #[test]
    fn records_decode_field_by_field() {
        let mut words: Vec<u8> = (1u32..=10).flat_map(|w| w.to_le_bytes()).collect();
        words.extend(9u64.to_le_bytes());
        words.extend(Reply::NO_TIMER.to_le_bytes());
        words.extend(1.5f64.to_le_bytes());
        let reply = Reply::from_le_bytes(&words).unwrap();
        assert_eq!(
            reply,
            Reply {
                status: 1,
                outputs_ptr: 2,
                outputs_len: 3,
                console_ptr: 4,
                console_len: 5,
                error_ptr: 6,
                error_len: 7,
                timers_fired: 8,
                http_ptr: 9,
                http_len: 10,
                clock_ms: 9,
                next_due_ms: Reply::NO_TIMER,
                epoch_ms: 1.5,
            }
        );
        assert_eq!(reply.next_due(), None);
        assert_eq!(Reply::from_le_bytes(&words[..Reply::SIZE - 1]), None);
        let fields: Vec<u8> = (10i64..19).flat_map(|f| f.to_le_bytes()).collect();
        assert_eq!(
            MemoryReport::from_le_bytes(&fields),
            Some(MemoryReport {
                malloc_size: 10,
                malloc_count: 11,
                memory_used_size: 12,
                obj_count: 13,
                str_count: 14,
                atom_count: 15,
                js_func_count: 16,
                pending_timers: 17,
                clock_ms: 18,
            })
        );
        assert_eq!(MemoryReport::from_le_bytes(&fields[..71]), None);
    }

    /// The guest hands the host its records by address: the bytes of a
    /// record in memory must decode to the same record.
    #[test]
    fn records_decode_from_their_own_memory() {
        let reply = Reply {
            status: 0,
            outputs_ptr: 0x1000,
            outputs_len: 2,
            console_ptr: 0x2000,
            console_len: 0,
            error_ptr: 0x3000,
            error_len: u32::MAX,
            timers_fired: 3,
            http_ptr: 0x4000,
            http_len: 17,
            clock_ms: 1 << 40,
            next_due_ms: 7,
            epoch_ms: 1.7e12,
        };
        let bytes: [u8; Reply::SIZE] = unsafe { std::mem::transmute(reply) };
        assert_eq!(Reply::from_le_bytes(&bytes), Some(reply));
    }
}
