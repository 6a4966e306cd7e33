//! The one input buffer the host writes into (`elmbox_input`): the load
//! settings and source, an event, or the stdio settings.

use std::cell::RefCell;

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Input buffers above this are released after use, so one large event does
/// not pin its size for the rest of the instance's life.
const KEEP: usize = 64 << 10;

/// Makes the buffer `len` bytes long; returns where the host writes them.
pub fn reserve(len: usize) -> *mut u8 {
    INPUT.with_borrow_mut(|input| {
        input.resize(len, 0);
        input.as_mut_ptr()
    })
}

/// Runs `f` on the first `len` bytes the host wrote, then lets a large
/// buffer go.
pub fn take<R>(len: u32, f: impl FnOnce(&[u8]) -> R) -> R {
    let result = INPUT.with_borrow(|input| f(&input[..(len as usize).min(input.len())]));
    INPUT.with_borrow_mut(|input| {
        if input.capacity() > KEEP {
            *input = Vec::new();
        }
    });
    result
}
