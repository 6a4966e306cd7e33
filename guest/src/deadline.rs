//! CPU deadlines, kept inside the sandbox: QuickJS polls its interrupt
//! handler every 10,000 interpreter ticks (calls, loop back-edges, regular
//! expression steps), and the handler compares the time since the host's
//! call began with the app's budget ([`set_budget`], from the host's
//! `SandboxLimits::deadline`). Past it, the app's JavaScript is stopped by
//! an uncatchable error, the loops that run jobs and timers stop, and the
//! call reports [`AppError::DeadlineExceeded`], which is fatal: Elm's
//! runtime may have been stopped mid-update.
//!
//! The host's engine then needs no epoch checks in the compiled guest (a
//! check at every function entry and loop of QuickJS's own code, ~22% of a
//! busy app's time). What runs without polling is bounded otherwise: native
//! work by the size of its input, which the memory cap bounds; timers by the
//! same-instant limit; the guest's own loops by what the app can ask.

use std::cell::Cell;
use std::time::{Duration, Instant};

use elmbox_abi::AppError;
use rquickjs::qjs;

thread_local! {
    static BUDGET: Cell<Option<Duration>> = const { Cell::new(None) };
    static CALL_BEGAN: Cell<Option<Instant>> = const { Cell::new(None) };
    static INTERRUPTED: Cell<bool> = const { Cell::new(false) };
}

/// Sets how long each call may run (`None`: for ever). An instance
/// restored from a snapshot keeps the budget of the one snapshotted, so the
/// host sets it for every instance.
pub fn set_budget(budget: Option<Duration>) {
    BUDGET.set(budget);
}

/// A call from the host begins: its time starts now.
pub fn begin_call() {
    INTERRUPTED.set(false);
    CALL_BEGAN.set(BUDGET.get().map(|_| Instant::now()));
}

/// Whether this call ran past its budget, and its JavaScript was stopped.
pub fn interrupted() -> bool {
    INTERRUPTED.get()
}

/// The error a call that ran past its budget reports.
pub fn exceeded() -> AppError {
    AppError::DeadlineExceeded {
        limit_ms: BUDGET.get().map_or(0, |b| b.as_millis() as u64),
    }
}

/// `result`, unless the call ran past its budget.
pub fn checked<R>(result: Result<R, AppError>) -> Result<R, AppError> {
    match interrupted() {
        true => Err(exceeded()),
        false => result,
    }
}

/// Makes QuickJS ask [`past_budget`] as it runs.
pub fn install(rt: *mut qjs::JSRuntime) {
    unsafe { qjs::JS_SetInterruptHandler(rt, Some(past_budget), std::ptr::null_mut()) };
}

unsafe extern "C" fn past_budget(_rt: *mut qjs::JSRuntime, _opaque: *mut std::ffi::c_void) -> i32 {
    if INTERRUPTED.get() {
        return 1;
    }
    let past = match (BUDGET.get(), CALL_BEGAN.get()) {
        (Some(budget), Some(began)) => began.elapsed() > budget,
        _ => false,
    };
    INTERRUPTED.set(past);
    i32::from(past)
}
