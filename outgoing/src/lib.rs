//! The host's client for the outgoing HTTP requests of sandboxed Elm apps.
//!
//! An app's `XMLHttpRequest` (all elm/http uses) reaches the host as an
//! [`elmbox_abi::HttpRequest`]; the host answers it with one
//! [`elmbox_abi::HttpResponse`]. This crate decides whether the request may
//! be sent ([`HttpPolicy`]: an allowlist of hosts, empty by default, and
//! limits on size, time and concurrency), sends it with one process-wide
//! [`OutgoingClient`], and produces that response. `elmbox serve` and
//! `elmbox run` both use it, on a tokio runtime.

mod app;
mod client;
mod error;
mod exchange;
mod policy;
mod tls;

pub use app::AppHttp;
pub use client::{InFlight, OutgoingClient};
pub use error::ClientError;
pub use exchange::{Ended, MAX_REDIRECTS};
pub use policy::{AllowedHost, AllowedHostError, HttpPolicy};
pub use url::{Host, Url};
