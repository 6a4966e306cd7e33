//! The QuickJS runtime and the one context an app runs in.
//!
//! Built on rquickjs directly rather than through `javy::Runtime`, because
//! javy always creates its runtime with rquickjs's default allocator, and
//! that is three layers deep on WASI: rquickjs's `RustAllocator` writes a size
//! header in front of every block, then Rust's global allocator, then
//! wasi-libc's dlmalloc. QuickJS allocates on nearly every Elm record and
//! closure, so here it calls libc's `malloc` family directly: one layer, which
//! also knows each block's real size (`malloc_usable_size`), so the heap
//! figures and the GC threshold count real bytes. The intrinsics are the ones
//! javy's default configuration gives.

use std::ffi::c_void;
use std::mem::ManuallyDrop;

use rquickjs::allocator::Allocator;
use rquickjs::context::intrinsic::{
    Date, Eval, Json, MapSet, Promise, Proxy, RegExp, RegExpCompiler, TypedArrays,
};
use rquickjs::{Context, Runtime};

/// What a runtime is created with; `usize::MAX` means no limit.
pub struct EngineLimits {
    pub gc_threshold: usize,
    pub memory_limit: usize,
    pub max_stack_size: usize,
}

/// A QuickJS runtime with its one context.
///
/// Never torn down, as with javy: values the app's ports and timers keep
/// alive (in thread-locals, dropped in no set order) would otherwise outlive
/// their runtime, and an instance's memory goes away with the instance.
pub struct Engine {
    context: ManuallyDrop<Context>,
    _runtime: ManuallyDrop<Runtime>,
}

impl Engine {
    pub fn new(limits: &EngineLimits) -> rquickjs::Result<Engine> {
        let runtime = Runtime::new_with_alloc(LibcAllocator)?;
        runtime.set_gc_threshold(limits.gc_threshold);
        runtime.set_memory_limit(limits.memory_limit);
        runtime.set_max_stack_size(limits.max_stack_size);
        let context = Context::custom::<(
            Date,
            Eval,
            RegExpCompiler,
            RegExp,
            Json,
            Proxy,
            MapSet,
            TypedArrays,
            Promise,
        )>(&runtime)?;
        Ok(Engine {
            context: ManuallyDrop::new(context),
            _runtime: ManuallyDrop::new(runtime),
        })
    }

    pub fn context(&self) -> &Context {
        &self.context
    }
}

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn calloc(count: usize, size: usize) -> *mut c_void;
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn malloc_usable_size(ptr: *mut c_void) -> usize;
}

/// libc's allocator (wasi-libc's dlmalloc in the module, glibc natively),
/// handed to QuickJS as is. Its blocks are aligned for any type, which
/// covers the `usize` alignment rquickjs asks for.
struct LibcAllocator;

unsafe impl Allocator for LibcAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        unsafe { malloc(size).cast() }
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        unsafe { calloc(count, size).cast() }
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        unsafe { free(ptr.cast()) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        unsafe { realloc(ptr.cast(), new_size).cast() }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        unsafe { malloc_usable_size(ptr.cast()) }
    }
}
