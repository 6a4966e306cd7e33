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
//! Many apps from many owners share one process through a [`Pool`]: one
//! engine with the pooling allocator, apps by name, each with its own
//! limits, faults contained and restored from the app's snapshot.
//!
//! Modules: [`runtime`] (engine and compiled guest), [`app`] (one loaded
//! app), [`snapshot`] and [`image`] (pre-initialised apps), [`pool`] (many
//! apps in one process), [`config`] and
//! [`limits`] (how to start it), [`console`], [`stats`] (memory figures and
//! the bounded-memory verdict), [`error`].

pub mod app;
pub mod config;
pub mod console;
pub mod error;
mod guest;
pub mod image;
pub mod limits;
pub mod pool;
pub mod runtime;
pub mod snapshot;
pub mod stats;

pub use app::App;
pub use config::{AppConfig, DispatchMode, EventFormat};
pub use console::{Console, ConsoleLine, Level};
pub use error::{Error, PortDirection, Result};
pub use image::AppImage;
pub use limits::Limits;
pub use pool::{FaultPolicy, Pool, PoolConfig};
pub use runtime::Runtime;
pub use snapshot::BuildOptions;
pub use stats::{MemoryStats, Trend};
