//! A durable app's outgoing HTTP. The answer to one of its requests is an
//! input of its log ([`Input::HttpResponse`]), handled and recorded like an
//! event, so that a replay hands it to the app again instead of calling
//! the other service again. A request leaves an input only once the input
//! is durable ([`Submitted::take_http_actions`]): an input lost in a crash
//! has called nobody.
//!
//! What is at-least-once: a request sent whose answer was not yet durable
//! at a crash is still waiting after the restore ([`DurableApp::waiting_http`])
//! and is sent again, with the same [`DurableApp::idempotency_key`], so the
//! service can tell a retry from a new call.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::{AppError, Error, Result};
use crate::http::{HttpRequest, HttpResponse};

use super::log::Input;
use super::{DurableApp, Submitted};

impl DurableApp {
    /// Hands the app the answer to one of its requests at the wall-clock
    /// time `at` (its clock catches up first, as for an event), and records
    /// it; answered once durable, like an event.
    pub fn submit_http_response_at(
        &mut self,
        at: SystemTime,
        response: &HttpResponse,
    ) -> Result<Submitted> {
        let instant = self.app.clock().instant_at(at);
        self.submit_at(instant, Input::HttpResponse(response.encode()))
    }

    /// [`DurableApp::submit_http_response_at`] at the clock's instant (an
    /// app on virtual time).
    pub fn submit_http_response(&mut self, response: &HttpResponse) -> Result<Submitted> {
        self.submit_at(self.clock_ms, Input::HttpResponse(response.encode()))
    }

    /// The requests the app sent and has no answer for, in the order it
    /// sent them. After [`DurableApp::open`] (a restart, a takeover, a
    /// wake, a deploy) these are to be sent: their first sending, if there
    /// was one, was not answered durably.
    pub fn waiting_http(&mut self) -> Result<Vec<HttpRequest>> {
        self.app.waiting_http()
    }

    /// The `Idempotency-Key`s of the app's requests (see
    /// [`IdempotencyKeys`]); they change only with a fresh deploy.
    pub fn idempotency_keys(&self) -> IdempotencyKeys {
        let mut history = Sha256::new();
        history.update(self.name.as_bytes());
        history.update(b"\n");
        history.update(self.settings.epoch_ms.to_le_bytes());
        history.update(self.settings.random_seed.unwrap_or(0).to_le_bytes());
        let tag: String = history.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        IdempotencyKeys {
            prefix: format!("{}/{tag}/", self.name),
        }
    }
}

/// The `Idempotency-Key` of each of an app's requests: the app's name, a
/// tag of its history (the instant its clock started and its random seed,
/// both fixed at its creation or its last fresh deploy and kept in the
/// store) and the request's number in that history, `NAME/TAG/N`. A
/// request sent again after a restore has the key its first sending had;
/// no two requests of an app, nor of two apps, share one. (Unless a
/// library user fixes both the epoch and the seed, as tests do: a fresh
/// start then has the tag of the history before it.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKeys {
    prefix: String,
}

impl IdempotencyKeys {
    /// The keys `APP/TAG/N` of an app whose history nothing keeps (an
    /// `elmbox run` without `--state`): `tag` must be new for each run.
    pub fn new(app: &str, tag: &str) -> IdempotencyKeys {
        IdempotencyKeys {
            prefix: format!("{app}/{tag}/"),
        }
    }

    /// The key of the request `id`.
    pub fn key(&self, id: u64) -> String {
        format!("{}{id}", self.prefix)
    }
}

/// Whether `error` is a recorded response refused because it answers
/// another request than the one the app waits on under its id.
pub(super) fn answers_another_request(error: &Error) -> bool {
    matches!(
        error,
        Error::App {
            error: AppError::HttpResponseMismatch { .. },
            ..
        }
    )
}
