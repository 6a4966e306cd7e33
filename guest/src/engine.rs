//! The QuickJS runtime and its one context, with the intrinsics an Elm app
//! can reach and the host's limits.
//!
//! rquickjs directly rather than through javy: javy 8.1 pins rquickjs 0.12
//! (quickjs-ng 0.15), and the engine of rquickjs 0.14 (quickjs-ng 0.16, with
//! its small-block arena) is faster per event (docs/PERFORMANCE.md, "The
//! engine"). javy's `Runtime` was this file's job; its console and
//! `Math.random` were replaced by ours (`console`, `random`) already.

use std::mem::ManuallyDrop;

use rquickjs::context::intrinsic::{
    Date, Eval, Json, MapSet, Promise, Proxy, RegExp, RegExpCompiler, TypedArrays,
};
use rquickjs::{Context, Runtime};

/// The standard objects an app gets: what javy gave by default (no
/// `TextEncoder`, `WeakRef` or `performance`, which elm/core never uses).
type Intrinsics = (
    Date,
    Eval,
    RegExpCompiler,
    RegExp,
    Json,
    Proxy,
    MapSet,
    TypedArrays,
    Promise,
);

/// The host's limits on the JavaScript heap, in bytes; `usize::MAX` is none.
pub struct Limits {
    pub gc_threshold: usize,
    pub memory_limit: usize,
    pub max_stack_size: usize,
}

/// One runtime with one context.
///
/// Neither is ever dropped: an app's session lives as long as its instance,
/// whose memory the host discards whole, and freeing every object first would
/// only cost time (javy makes the same choice). It also spares the order of
/// drops between the runtime and the `Persistent` values that sessions hold.
pub struct Engine {
    context: ManuallyDrop<Context>,
    _runtime: ManuallyDrop<Runtime>,
}

impl Engine {
    pub fn new(limits: Limits) -> rquickjs::Result<Engine> {
        let runtime = Runtime::new()?;
        runtime.set_gc_threshold(limits.gc_threshold);
        runtime.set_memory_limit(limits.memory_limit);
        runtime.set_max_stack_size(limits.max_stack_size);
        let context = Context::custom::<Intrinsics>(&runtime)?;
        Ok(Engine {
            context: ManuallyDrop::new(context),
            _runtime: ManuallyDrop::new(runtime),
        })
    }

    pub fn context(&self) -> &Context {
        &self.context
    }
}
