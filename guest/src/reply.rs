//! What a call hands back to the host: the outgoing-port values it produced,
//! the console lines it printed, and, if it failed, a JSON error.
//!
//! The host learns the address of [`Reply`] once (`elmbox_reply`) and reads it
//! after every call, so a call costs one host-to-guest transition, not three.

use std::cell::RefCell;

use serde::Serialize;

use elmbox_abi::console::push_frame;
pub use elmbox_abi::{HttpAction, Level, Reply};

/// Console bytes kept per call; past this a runaway logger is cut short and the
/// host is told how many bytes were dropped, so memory stays bounded.
const CONSOLE_LIMIT: usize = 4 << 20;

#[derive(Default)]
struct Buffers {
    /// A JSON array under construction: `[` + values joined by `,`.
    outputs: Vec<u8>,
    /// Frames of `level: u8, len: u32 LE, utf8 bytes`.
    console: Vec<u8>,
    console_dropped: usize,
    error: Vec<u8>,
    /// Frames of the outgoing HTTP requests started or aborted.
    http: Vec<u8>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
    static REPLY: RefCell<Reply> = RefCell::new(Reply::default());
}

/// Starts a call: forgets what the previous one produced.
pub fn begin() {
    crate::timers::begin_call();
    crate::deadline::begin_call();
    BUFFERS.with_borrow_mut(|b| {
        b.outputs.clear();
        b.outputs.push(b'[');
        b.console.clear();
        b.console_dropped = 0;
        b.error.clear();
        b.http.clear();
    });
}

/// Appends one outgoing-port value, already serialised as JSON.
pub fn push_output(json: &[u8]) {
    BUFFERS.with_borrow_mut(|b| {
        if b.outputs.len() > 1 {
            b.outputs.push(b',');
        }
        b.outputs.extend_from_slice(json);
    });
}

/// Forgets the outputs of this call so far (a migration's export answers
/// with the exported value alone).
pub fn clear_outputs() {
    BUFFERS.with_borrow_mut(|b| {
        b.outputs.clear();
        b.outputs.push(b'[');
    });
}

/// Bytes of outputs so far in this call (the JSON array, still open).
pub fn outputs_len() -> usize {
    BUFFERS.with_borrow(|b| b.outputs.len())
}

/// Appends the values of `array`, a JSON array's text.
pub fn push_array(array: &[u8]) {
    let inner = array.trim_ascii();
    let inner = inner.strip_prefix(b"[").unwrap_or(inner);
    let inner = inner.strip_suffix(b"]").unwrap_or(inner).trim_ascii();
    if !inner.is_empty() {
        push_output(inner);
    }
}

/// Appends one outgoing HTTP request started, or aborted.
pub fn push_http(action: &HttpAction) {
    BUFFERS.with_borrow_mut(|b| elmbox_abi::http::push_action(action, &mut b.http));
}

/// Appends one console line.
pub fn push_console(level: Level, text: &str) {
    BUFFERS.with_borrow_mut(|b| {
        if b.console.len() + text.len() > CONSOLE_LIMIT {
            b.console_dropped += text.len();
            return;
        }
        push_frame(&mut b.console, level, text);
    });
}

/// Ends a call: publishes the buffers in [`Reply`] and returns its status.
pub fn finish<E: Serialize>(result: Result<(), E>) -> u32 {
    BUFFERS.with_borrow_mut(|b| {
        b.outputs.push(b']');
        if b.console_dropped > 0 {
            let note = format!(
                "elmbox: {} bytes of console output dropped in this call (limit {} bytes)",
                b.console_dropped, CONSOLE_LIMIT
            );
            push_frame(&mut b.console, Level::Warn, &note);
        }
        let status = match result {
            Ok(()) => 0,
            Err(e) => {
                // Serialising our own error types cannot fail.
                b.error = serde_json::to_vec(&e).unwrap_or_default();
                1
            }
        };
        REPLY.with_borrow_mut(|r| {
            r.status = status;
            r.outputs_ptr = b.outputs.as_ptr() as u32;
            r.outputs_len = b.outputs.len() as u32;
            r.console_ptr = b.console.as_ptr() as u32;
            r.console_len = b.console.len() as u32;
            r.error_ptr = b.error.as_ptr() as u32;
            r.error_len = b.error.len() as u32;
            r.timers_fired = crate::timers::take_fired();
            r.http_ptr = b.http.as_ptr() as u32;
            r.http_len = b.http.len() as u32;
        });
        stamp_clock();
        status
    })
}

/// Puts the clock as it is now in [`Reply`]: after every call, and when the
/// host sets the epoch.
pub fn stamp_clock() {
    REPLY.with_borrow_mut(|r| {
        r.clock_ms = crate::timers::elapsed();
        r.next_due_ms = crate::timers::next_due().unwrap_or(u64::MAX);
        r.epoch_ms = crate::timers::epoch_ms();
    });
}

/// The last call's outputs (a JSON array) and console frames, for callers
/// inside the guest: the native engine and the standalone line protocol.
pub fn last<R>(f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
    BUFFERS.with_borrow(|b| f(&b.outputs, &b.console))
}

/// The HTTP actions of the call so far, taken out of the reply: for the
/// standalone line protocol, which answers them itself.
pub fn take_http() -> Vec<u8> {
    BUFFERS.with_borrow_mut(|b| std::mem::take(&mut b.http))
}

/// The address the host reads replies from; stable for the instance's life.
pub fn address() -> *const Reply {
    REPLY.with(|r| r.as_ptr() as *const Reply)
}
