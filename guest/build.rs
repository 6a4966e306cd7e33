//! Link settings for the guest module.

fn main() {
    // QuickJS on WASI has no stack limit of its own. Each JavaScript call
    // level takes ~320 bytes of this C (shadow) stack in linear memory and
    // ~500 bytes of the host's native wasm stack (8 MiB, see the host's
    // runtime.rs). 8 MiB here holds ~26,000 levels, more than the native
    // stack's ~17,000, so runaway recursion ends as a clean stack-overflow
    // trap instead of running off the end of the shadow stack. Untouched
    // stack pages cost no resident memory.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=8388608");
    }
}
