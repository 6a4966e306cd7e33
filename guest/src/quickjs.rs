//! Raw QuickJS calls that rquickjs does not wrap the way elmbox needs them:
//! evaluating a classic global script with syntax errors told apart, running
//! promise jobs, and reaching the runtime for memory figures and the GC.

use std::ffi::CString;

use rquickjs::{qjs, Ctx};

use crate::error::{AppError, Thrown, ThrownFromJs};

/// The QuickJS runtime behind a context.
pub fn runtime_ptr(ctx: &Ctx<'_>) -> *mut qjs::JSRuntime {
    unsafe { qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) }
}

/// Whether QuickJS counts the real size of the blocks it allocates.
///
/// QuickJS allocates straight from libc's `malloc` (one layer; rquickjs's
/// Rust allocator would add three, with a size header per block) and asks
/// `malloc_usable_size` for sizes, but on WASI only when compiled with the
/// Makefile's `GUEST_CFLAGS`: without them it counts every block as 0 bytes,
/// and its heap figures and GC threshold would mean nothing.
pub fn counts_block_sizes(ctx: &Ctx<'_>) -> bool {
    const PROBE: usize = 64;
    let rt = runtime_ptr(ctx);
    unsafe {
        let block = qjs::js_malloc_rt(rt, PROBE as _);
        if block.is_null() {
            // Out of memory already: the load fails on its own, and says so.
            return true;
        }
        let size = qjs::js_malloc_usable_size_rt(rt, block) as usize;
        qjs::js_free_rt(rt, block);
        size >= PROBE
    }
}

/// Compiles, then runs, the app as a classic global script (non-strict, so the
/// `(function(scope){…}(this))` wrapper of Elm output gets the global object).
/// Compiling first separates syntax errors from errors the script throws.
pub fn run_script(ctx: &Ctx<'_>, source: &[u8], filename: &str) -> Result<(), AppError> {
    let file = filename.replace('\0', "");
    let c_filename = CString::new(file.clone()).unwrap_or_default();
    // QuickJS wants a NUL after the last byte.
    let mut text = Vec::with_capacity(source.len() + 1);
    text.extend_from_slice(source);
    text.push(0);
    let raw = ctx.as_raw().as_ptr();
    unsafe {
        let compiled = qjs::JS_Eval(
            raw,
            text.as_ptr().cast(),
            source.len() as _,
            c_filename.as_ptr(),
            (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
        );
        if qjs::JS_IsException(compiled) {
            let thrown = Thrown::from_value(ctx, ctx.catch());
            let (line, column) = position(thrown.stack.as_deref().unwrap_or(""), &file);
            return Err(AppError::Syntax {
                file,
                message: thrown.message,
                line,
                column,
            });
        }
        let result = qjs::JS_EvalFunction(raw, compiled);
        if qjs::JS_IsException(result) {
            return Err(AppError::ScriptThrew {
                file,
                thrown: Thrown::from_value(ctx, ctx.catch()),
            });
        }
        qjs::JS_FreeValue(raw, result);
    }
    Ok(())
}

/// Line and column of the first `filename:LINE:COL` in a stack trace.
fn position(stack: &str, filename: &str) -> (Option<u32>, Option<u32>) {
    let needle = format!("{filename}:");
    let Some(start) = stack.find(&needle) else {
        return (None, None);
    };
    let mut numbers = stack[start + needle.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|n| n.parse().ok());
    (numbers.next().flatten(), numbers.next().flatten())
}

/// Runs queued promise jobs until none is left; reports the first that threw.
pub fn run_jobs(ctx: &Ctx<'_>) -> Result<(), Thrown> {
    let rt = runtime_ptr(ctx);
    let mut first_error = None;
    loop {
        let mut job_ctx = std::ptr::null_mut();
        // A job stopped at the deadline stops them all: one could queue
        // another for ever.
        if crate::deadline::interrupted() {
            break;
        }
        match unsafe { qjs::JS_ExecutePendingJob(rt, &mut job_ctx) } {
            0 => break,
            r if r < 0 => {
                first_error.get_or_insert_with(|| Thrown::from_value(ctx, ctx.catch()));
            }
            _ => {}
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// QuickJS's own memory accounting.
pub fn memory_usage(ctx: &Ctx<'_>) -> qjs::JSMemoryUsage {
    let mut usage = unsafe { std::mem::zeroed::<qjs::JSMemoryUsage>() };
    unsafe { qjs::JS_ComputeMemoryUsage(runtime_ptr(ctx), &mut usage) };
    usage
}

/// Runs QuickJS's cycle collector now.
pub fn collect_garbage(ctx: &Ctx<'_>) {
    unsafe { qjs::JS_RunGC(runtime_ptr(ctx)) }
}
