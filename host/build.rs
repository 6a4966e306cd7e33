//! With the `embedded-guest` feature, embeds the guest module (built by
//! `make guest`) into the library.

use std::path::PathBuf;

fn main() {
    if std::env::var_os("CARGO_FEATURE_EMBEDDED_GUEST").is_none() {
        return;
    }
    println!("cargo:rerun-if-env-changed=ELMBOX_GUEST_WASM");
    let path = match std::env::var_os("ELMBOX_GUEST_WASM") {
        Some(p) => PathBuf::from(p),
        // Read when the script runs, not baked in when it is compiled: cargo
        // may reuse the compiled script for a checkout in another folder.
        None => PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
            .join("../target/wasm32-wasip1/release/elmbox_guest.wasm"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    if !path.is_file() {
        panic!(
            "the elmbox guest module is missing at {}: build it first with `make guest` \
             (or `make build`), point ELMBOX_GUEST_WASM at it, or build elmbox without \
             its `embedded-guest` feature and use Runtime::from_guest",
            path.display()
        );
    }
    let path = path.canonicalize().expect("guest path resolves");
    println!("cargo:rustc-env=ELMBOX_GUEST_WASM_PATH={}", path.display());
}
