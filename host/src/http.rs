//! An app's outgoing HTTP, as the library sees it: the requests each call
//! started or aborted ([`App::http_actions`]), handing the app the answer
//! to one of them ([`App::deliver_http`]), and the requests it still waits
//! on ([`App::waiting_http`]).
//!
//! The library sends nothing: whoever runs the app decides whether and how
//! (`elmbox serve` and `elmbox run --allow-http` use the `elmbox-outgoing`
//! crate), and answers every request it will not send with
//! [`HttpResponse::network_error`], so that the app's elm/http gets its
//! `NetworkError` instead of waiting for ever.

use std::time::SystemTime;

use serde_json::Value;

use crate::app::{json_text, parse_outputs, App};
use crate::error::Result;
use crate::guest;

pub use elmbox_abi::http::{HttpAction, HttpOutcome, HttpRequest, HttpResponse};

impl App {
    /// The HTTP requests the last call started, and those it aborted, in
    /// order. Each started request waits in the app until it is answered
    /// ([`App::deliver_http`]); an aborted one's answer is ignored.
    pub fn http_actions(&self) -> &[HttpAction] {
        &self.http
    }

    /// [`App::http_actions`], taken out of the app.
    pub fn take_http_actions(&mut self) -> Vec<HttpAction> {
        std::mem::take(&mut self.http)
    }

    /// Hands the app the answer to one of its requests at the clock's
    /// current instant; returns what it sent on its outgoing port then.
    /// An answer no request waits for changes nothing (`[]`); one that
    /// answers another request than the one waiting under its id is
    /// refused ([`crate::AppError::HttpResponseMismatch`]).
    pub fn deliver_http(&mut self, response: &HttpResponse) -> Result<Vec<Value>> {
        self.deliver_http_encoded(None, &response.encode(), parse_outputs)
    }

    /// [`App::deliver_http`] at the wall-clock time `at`: the clock first
    /// catches up, as for [`App::dispatch_at`].
    pub fn deliver_http_at(
        &mut self,
        at: SystemTime,
        response: &HttpResponse,
    ) -> Result<Vec<Value>> {
        let instant = self.clock().instant_at(at);
        self.deliver_http_encoded(Some(instant), &response.encode(), parse_outputs)
    }

    /// [`App::deliver_http_at`], with the outputs as JSON array text.
    pub fn deliver_http_json_at(
        &mut self,
        at: SystemTime,
        response: &HttpResponse,
    ) -> Result<String> {
        let instant = self.clock().instant_at(at);
        self.deliver_http_encoded(Some(instant), &response.encode(), json_text)
    }

    /// [`App::deliver_http`], with the outputs as JSON array text.
    pub fn deliver_http_json(&mut self, response: &HttpResponse) -> Result<String> {
        self.deliver_http_encoded(None, &response.encode(), json_text)
    }

    /// An encoded response (as a log keeps it) at an instant of the app's
    /// own clock (ms since load; `None`: where it is).
    pub(crate) fn deliver_http_encoded<T>(
        &mut self,
        instant: Option<u64>,
        encoded: &[u8],
        take: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        self.check_alive()?;
        let (store, guest) = self.guest_parts();
        if let Err(e) = guest.write_input(store, &[encoded]) {
            return Err(self.crashed(e));
        }
        let at = instant.map_or(-1.0, |ms| ms as f64);
        let (store, guest) = self.guest_parts();
        let status = guest::call(&guest.http_response, store, (encoded.len() as u32, at));
        self.finish(status, take)
    }

    /// Every request the app sent and has no answer for, in the order it
    /// sent them: what a host sends (again) after it restored the app from
    /// a snapshot or a log, whose first run may have sent them already.
    pub fn waiting_http(&mut self) -> Result<Vec<HttpRequest>> {
        self.check_alive()?;
        let (store, guest) = self.guest_parts();
        let status = guest::call(&guest.http_waiting, store, ());
        self.finish(status, |_| Ok(()))?;
        let waiting = self
            .take_http_actions()
            .into_iter()
            .filter_map(|action| match action {
                HttpAction::Send(request) => Some(request),
                HttpAction::Abort { .. } => None,
            })
            .collect();
        Ok(waiting)
    }
}
