//! # elmbox
//!
//! Runs the JavaScript that `elm make` produces for a `Platform.worker`
//! program inside QuickJS compiled to WebAssembly. Each app gets its own
//! sandbox; its script is evaluated **once**, and events are plain function
//! calls, so memory stays bounded however many events it handles.
//!
//! ```no_run
//! use elmbox::{AppConfig, Runtime};
//!
//! # fn main() -> Result<(), elmbox::Error> {
//! let runtime = Runtime::new()?;                       // compile the guest once
//! let js = std::fs::read("counter.js").unwrap();       // `elm make --optimize` output
//! let mut app = runtime.load(&js, AppConfig::default())?;
//! let replies = app.dispatch(r#"{"type":"click"}"#)?;  // values sent on `respond`
//! app.advance_time(1000)?;                             // fire timers due in 1 s
//! println!("{replies:?} {:?}", app.memory()?);
//! # Ok(()) }
//! ```
//!
//! An app can also be pre-initialised: [`Runtime::build`] snapshots it
//! into a standalone module (a WASI command, see `elmbox build`), and
//! [`Runtime::image`] loads such a module as an [`AppImage`] whose instances
//! start with the app already running, evaluating no JavaScript.
//!
//! Compiling the guest is most of a runtime's start (~0.8 s);
//! [`RuntimeBuilder::code_cache`] keeps the compiled guest on disk so that
//! later starts take milliseconds, and [`Runtime::load_module`] starts one
//! app from such a module by restoring its state into that compiled guest.
//!
//! Many apps from many owners share one process through a [`Pool`]: one
//! engine with the pooling allocator, apps by name, each with its own
//! limits, faults contained and restored from the app's snapshot.
//!
//! ## Layers
//! Each module uses only those listed before it: `store` (what a wasmtime
//! store holds, stack size, deadlines, driving a call), `clock` (an app's
//! clock and the wall clock), `guest` (the host
//! half of the guest ABI), `limits` and `config` (the sandbox's bounds and
//! the app's settings), `app` (one loaded app; `http` its outgoing HTTP
//! requests and their answers), `runtime` (the compiled
//! guest; `code_cache` keeps it on disk), `snapshot` and `image`
//! (pre-initialised apps), `pool` (many apps in one process), `durable`
//! (apps whose state lives in a store). `console`, `stats`, `error` and
//! `app_name` (the one rule for app names) sit beside them. What the host and guest agree on is the `elmbox-abi` crate.
//!
//! ## Features
//! - `embedded-guest` (default): the guest module is built into the library
//!   ([`Runtime::new`]). Without it, give the guest at run time with
//!   [`Runtime::from_guest`]; nothing needs the guest at compile time.
//! - `measure`: the dispatch modes that reproduce the anti-patterns elmbox
//!   replaces (`DispatchMode`), for soaks and
//!   benchmarks.
//! - `postgres`: the PostgreSQL state store (`durable::postgres`), so that
//!   [`durable::StateLocation`] opens `postgres://…` URLs as well as state
//!   directories. It brings the `postgres` client (and a tokio runtime per
//!   connection); without it a URL is refused, saying so.

mod app;
pub mod app_name;
pub mod clock;
mod code_cache;
mod config;
mod console;
pub mod durable;
mod error;
mod guest;
pub mod http;
mod image;
mod limits;
pub mod migration;
mod module_state;
mod pool;
mod runtime;
mod snapshot;
mod state;
pub mod stats;
mod store;

pub use app::App;
pub use clock::AppClock;
#[cfg(feature = "measure")]
pub use config::DispatchMode;
pub use config::{AppConfig, EventFormat};
pub use console::{Console, ConsoleLine, Level};
pub use durable::{DurableApp, DurableOptions, OnNewCode, Opened, Restoring, Submitted};
pub use elmbox_abi::{AppSettings, ModuleSettings, StdioConfig};
pub use error::{AppError, Error, FaultSite, PortDirection, Result, Thrown};
pub use guest::GuestId;
pub use image::AppImage;
pub use limits::SandboxLimits;
pub use pool::{FaultPolicy, Pool, PoolConfig};
#[cfg(feature = "embedded-guest")]
pub use runtime::GUEST_WASM;
pub use runtime::{Runtime, RuntimeBuilder};
pub use snapshot::BuildOptions;
pub use state::{GlobalValue, SandboxState};
pub use stats::{MemoryStats, Trend};
pub use store::WASM_STACK_BYTES;

/// docs/LIBRARY.md's Rust examples, compiled by `cargo test --doc` so they keep
/// up with the API.
#[cfg(doctest)]
#[doc = include_str!("../../docs/LIBRARY.md")]
struct LibraryExamples;
