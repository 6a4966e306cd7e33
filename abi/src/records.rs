//! The binary records the host reads straight from guest memory, at
//! addresses the guest hands out once.

/// What a call hands back, at the fixed address `elmbox_reply` returns: seven
/// little-endian `u32`s (wasm32 pointers and lengths).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
}

impl Reply {
    pub const SIZE: usize = 7 * 4;

    /// Decodes the record as the host reads it from guest memory.
    pub fn from_le_bytes(bytes: &[u8]) -> Option<Reply> {
        let w = |i: usize| {
            Some(u32::from_le_bytes(
                bytes.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        Some(Reply {
            status: w(0)?,
            outputs_ptr: w(1)?,
            outputs_len: w(2)?,
            console_ptr: w(3)?,
            console_len: w(4)?,
            error_ptr: w(5)?,
            error_len: w(6)?,
        })
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
        let words: Vec<u8> = (1u32..=7).flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(
            Reply::from_le_bytes(&words),
            Some(Reply {
                status: 1,
                outputs_ptr: 2,
                outputs_len: 3,
                console_ptr: 4,
                console_len: 5,
                error_ptr: 6,
                error_len: 7,
            })
        );
        assert_eq!(Reply::from_le_bytes(&words[..27]), None);
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
        };
        let bytes: [u8; Reply::SIZE] = unsafe { std::mem::transmute(reply) };
        assert_eq!(Reply::from_le_bytes(&bytes), Some(reply));
    }
}
