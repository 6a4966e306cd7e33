//! # elmbox-abi
//!
//! What elmbox's host and guest agree on, in one place so neither side can
//! drift. Each concept has one definition here, used by both sides:
//!
//! - [`settings`]: an app's settings, fixed when it is loaded (and so kept in
//!   every snapshot of it), how events reach it ([`EventFormat`]), and how a
//!   built module serves stdio ([`StdioConfig`]). Sent as JSON.
//! - [`error`]: why an app could not load or could not handle an event
//!   ([`AppError`]), worded once for the host library and built modules alike.
//! - [`http`]: outgoing HTTP requests the app starts, and their responses,
//!   as frames of JSON metadata and body bytes.
//! - [`records`]: the binary records the host reads from guest memory
//!   ([`Reply`], [`MemoryReport`]).
//! - [`console`]: console lines with their levels, as frames and as printed.
//! - [`migration`]: the ports and flags of a migration from one version to
//!   the next.
//! - [`lines`]: the line protocol that `elmbox run` and a built module both
//!   serve on stdin and stdout, as one driver.
//!
//! The guest's exports that use them are listed in `guest/src/lib.rs`.

pub mod console;
pub mod error;
pub mod http;
pub mod lines;
pub mod migration;
pub mod records;
pub mod settings;

pub use console::Level;
pub use error::{AppError, FaultSite, PortDirection, Thrown};
pub use http::{HttpAction, HttpOutcome, HttpRequest, HttpResponse};
pub use records::{MemoryReport, Reply};
pub use settings::{AppSettings, DispatchMode, EventFormat, ModuleSettings, StdioConfig};

/// Bumped whenever an export, a record or a setting changes.
pub const ABI_VERSION: u32 = 8;
