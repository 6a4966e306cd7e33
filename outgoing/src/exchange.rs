//! One request of an app, from its checks to its response: the URL, method
//! and headers checked as a browser's `fetch` would and against the app's
//! [`HttpPolicy`] before anything touches the network; then sent, its
//! redirects followed only to allowed hosts, and its response read up to
//! the app's limit, within its timeout.

use bytes::Bytes;
use elmbox_abi::{HttpOutcome, HttpRequest};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::app::AppHttp;
use crate::error::error_chain;
#[cfg(doc)]
use crate::policy::HttpPolicy;

/// The header that lets a server recognise a request sent again.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Redirects followed for one request at most (browsers follow 20).
pub const MAX_REDIRECTS: usize = 10;

/// How a request ended, for the caller's metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ended {
    /// A response arrived, whatever its status.
    Ok,
    /// The URL's host is not in the app's allowlist: nothing was sent.
    NotAllowed,
    /// A redirect pointed to a host not in the allowlist: not followed.
    RedirectNotAllowed,
    /// More than [`MAX_REDIRECTS`] redirects.
    TooManyRedirects,
    /// The response body was over the app's `max_response_bytes`.
    TooLarge,
    /// The request's timeout passed.
    Timeout,
    /// The app had `max_concurrent` requests in flight already.
    TooMany,
    /// Not an absolute http or https URL (nor was a redirect's).
    BadUrl,
    /// A method or header that is not valid HTTP, or that a browser refuses.
    BadRequest,
    /// The connection, DNS, TLS or HTTP exchange failed.
    Network,
}

impl Ended {
    /// Every way a request can end, to set up metrics ahead.
    pub const ALL: [Ended; 10] = [
        Ended::Ok,
        Ended::NotAllowed,
        Ended::RedirectNotAllowed,
        Ended::TooManyRedirects,
        Ended::TooLarge,
        Ended::Timeout,
        Ended::TooMany,
        Ended::BadUrl,
        Ended::BadRequest,
        Ended::Network,
    ];

    /// A short snake_case name, for a metric label or a log field.
    pub fn label(&self) -> &'static str {
        match self {
            Ended::Ok => "ok",
            Ended::NotAllowed => "not_allowed",
            Ended::RedirectNotAllowed => "redirect_not_allowed",
            Ended::TooManyRedirects => "too_many_redirects",
            Ended::TooLarge => "too_large",
            Ended::Timeout => "timeout",
            Ended::TooMany => "too_many",
            Ended::BadUrl => "bad_url",
            Ended::BadRequest => "bad_request",
            Ended::Network => "network",
        }
    }
}

/// A request that ends without a response: why, for the app's log.
#[derive(Debug)]
pub(crate) struct Refused {
    ended: Ended,
    reason: String,
}

impl Refused {
    pub(crate) fn new(ended: Ended, reason: impl Into<String>) -> Refused {
        Refused {
            ended,
            reason: reason.into(),
        }
    }

    pub(crate) fn into_parts(self) -> (HttpOutcome, Ended) {
        let outcome = HttpOutcome::NetworkError {
            reason: self.reason,
        };
        (outcome, self.ended)
    }
}

/// A request checked against its app's policy, ready to send.
pub(crate) struct Exchange {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
}

/// Checks `request` for `app` without touching the network.
pub(crate) fn prepare(
    app: &AppHttp,
    request: &HttpRequest,
    idempotency_key: &str,
) -> Result<Exchange, Refused> {
    let url = Url::parse(&request.url).map_err(|error| {
        Refused::new(
            Ended::BadUrl,
            format!("`{}` is not an absolute URL: {error}", request.url),
        )
    })?;
    check_url(&url, "the URL")?;
    if !app.policy().allows(&url) {
        tracing::warn!(
            app = app.name(),
            request_id = request.id,
            method = request.method,
            host = host_and_port(&url),
            "outgoing HTTP: host not allowed"
        );
        return Err(Refused::new(Ended::NotAllowed, not_allowed_reason(&url)));
    }
    let method = method(&request.method)?;
    let mut headers = HeaderMap::with_capacity(request.headers.len() + 1);
    for (name, value) in &request.headers {
        let Some((name, value)) = header(name, value)? else {
            continue;
        };
        headers.append(name, value);
    }
    if !headers.contains_key(IDEMPOTENCY_KEY) {
        let key = HeaderValue::from_str(idempotency_key).map_err(|_| {
            Refused::new(
                Ended::BadRequest,
                format!("the idempotency key `{idempotency_key}` is not a valid header value"),
            )
        })?;
        headers.insert(IDEMPOTENCY_KEY, key);
    }
    let body = (!request.body.is_empty()).then(|| Bytes::from(request.body.clone()));
    Ok(Exchange {
        method,
        url,
        headers,
        body,
    })
}

/// Refuses what is not an absolute http or https URL, or one with
/// credentials in it (a fetch() refuses those; they would end up in logs).
fn check_url(url: &Url, which: &str) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::new(
            Ended::BadUrl,
            format!(
                "{which} `{url}` is not http or https (its scheme is `{}`)",
                url.scheme()
            ),
        ));
    }
    if url.host().is_none() {
        return Err(Refused::new(
            Ended::BadUrl,
            format!("{which} `{url}` has no host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::new(
            Ended::BadUrl,
            format!(
                "{which} has a user name or password in it: send them in an Authorization header instead"
            ),
        ));
    }
    Ok(())
}

fn not_allowed_reason(url: &Url) -> String {
    let host = host_and_port(url);
    // The host alone when the port is the scheme's, as one would write it.
    let entry = if url.port().is_none() {
        url.host_str().unwrap_or_default().to_owned()
    } else {
        host.clone()
    };
    format!(
        "this app may not send requests to {host}: allow it with `allow-http={entry}` when deploying, or `--allow-http {entry}` with elmbox run"
    )
}

/// `host:port`, the port the scheme's when the URL gives none.
fn host_and_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The method, as a browser's `open` takes it: the six it knows in upper
/// case whatever the case given, others as given, CONNECT, TRACE and TRACK
/// refused.
fn method(given: &str) -> Result<Method, Refused> {
    const NORMALISED: [&str; 6] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
    if is_forbidden_method(given) {
        return Err(Refused::new(
            Ended::BadRequest,
            format!("the method `{given}` is not allowed (a browser refuses it too)"),
        ));
    }
    let known = NORMALISED
        .iter()
        .find(|known| known.eq_ignore_ascii_case(given));
    let method = known.copied().unwrap_or(given);
    Method::from_bytes(method.as_bytes()).map_err(|_| {
        Refused::new(
            Ended::BadRequest,
            format!("`{given}` is not a valid HTTP method"),
        )
    })
}

fn is_forbidden_method(method: &str) -> bool {
    ["CONNECT", "TRACE", "TRACK"]
        .iter()
        .any(|forbidden| forbidden.eq_ignore_ascii_case(method.trim()))
}

/// The header to send for the app's `name: value`: none for a header a
/// browser would not let it set (the Fetch standard's forbidden request
/// headers, dropped as a browser drops them), an error for one that is not
/// valid HTTP.
fn header(name: &str, value: &str) -> Result<Option<(HeaderName, HeaderValue)>, Refused> {
    let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        Refused::new(
            Ended::BadRequest,
            format!("the header name `{name}` is not valid HTTP"),
        )
    })?;
    // A browser trims the value's leading and trailing whitespace.
    let value = value.trim_matches([' ', '\t', '\r', '\n']);
    let header_value = HeaderValue::from_str(value).map_err(|_| {
        Refused::new(
            Ended::BadRequest,
            format!("the value of the header `{name}` is not valid HTTP: `{value}`"),
        )
    })?;
    if is_forbidden_header(header_name.as_str(), value) {
        return Ok(None);
    }
    Ok(Some((header_name, header_value)))
}

/// <https://fetch.spec.whatwg.org/#forbidden-request-header>; `name` is in
/// lower case.
fn is_forbidden_header(name: &str, value: &str) -> bool {
    const FORBIDDEN: [&str; 21] = [
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
    ];
    if FORBIDDEN.contains(&name) || name.starts_with("proxy-") || name.starts_with("sec-") {
        return true;
    }
    // The headers that smuggle a method past the method's own check.
    matches!(
        name,
        "x-http-method" | "x-http-method-override" | "x-method-override"
    ) && value.split(',').any(is_forbidden_method)
}

impl Exchange {
    /// Sends the request, follows its redirects and reads the response,
    /// within the app's timeout and size limit.
    pub(crate) async fn run(
        self,
        http: &reqwest::Client,
        app: &AppHttp,
        request: &HttpRequest,
    ) -> (HttpOutcome, Ended) {
        let policy = app.policy();
        let host = host_and_port(&self.url);
        let sent = self.send(http, app, policy.max_response_bytes);
        let result = match policy.timeout(request.timeout_ms) {
            None => sent.await,
            Some(timeout) => match tokio::time::timeout(timeout, sent).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        app = app.name(),
                        request_id = request.id,
                        method = request.method,
                        host,
                        timeout_ms = timeout.as_millis() as u64,
                        "outgoing HTTP: timed out"
                    );
                    return (HttpOutcome::Timeout, Ended::Timeout);
                }
            },
        };
        match result {
            Ok(outcome) => {
                if let HttpOutcome::Response { status, body, .. } = &outcome {
                    tracing::debug!(
                        app = app.name(),
                        request_id = request.id,
                        method = request.method,
                        host,
                        status,
                        bytes = body.len(),
                        "outgoing HTTP: response"
                    );
                }
                (outcome, Ended::Ok)
            }
            Err(refused) => {
                // The app's limits at work: warn; the network's or the
                // app's own failures: for information.
                let limit = matches!(
                    refused.ended,
                    Ended::TooLarge | Ended::RedirectNotAllowed | Ended::TooManyRedirects
                );
                macro_rules! log {
                    ($level:ident) => {
                        tracing::$level!(
                            app = app.name(),
                            request_id = request.id,
                            method = request.method,
                            host,
                            ended = refused.ended.label(),
                            reason = refused.reason,
                            "outgoing HTTP: no response"
                        )
                    };
                }
                if limit {
                    log!(warn);
                } else {
                    log!(info);
                }
                refused.into_parts()
            }
        }
    }

    async fn send(
        mut self,
        http: &reqwest::Client,
        app: &AppHttp,
        max_bytes: u64,
    ) -> Result<HttpOutcome, Refused> {
        let mut redirects = 0;
        loop {
            let mut hop = reqwest::Request::new(self.method.clone(), self.url.clone());
            *hop.headers_mut() = self.headers.clone();
            *hop.body_mut() = self.body.clone().map(reqwest::Body::from);
            let response = http.execute(hop).await.map_err(network_error)?;
            let Some(next) = redirect_target(&response, &self.url)? else {
                return read_response(response, self.url, max_bytes).await;
            };
            if redirects == MAX_REDIRECTS {
                return Err(Refused::new(
                    Ended::TooManyRedirects,
                    format!("more than {MAX_REDIRECTS} redirects, the last to `{next}`"),
                ));
            }
            redirects += 1;
            check_url(&next, "a redirect's URL")?;
            if !app.policy().allows(&next) {
                return Err(Refused::new(
                    Ended::RedirectNotAllowed,
                    format!(
                        "{} redirected to `{next}`, which is not allowed: {}",
                        self.url,
                        not_allowed_reason(&next)
                    ),
                ));
            }
            self.follow(response.status(), next);
        }
    }

    /// The request to send to `next` after a `status` redirect, as the
    /// Fetch standard has it.
    fn follow(&mut self, status: StatusCode, next: Url) {
        let to_get = match status {
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => self.method == Method::POST,
            StatusCode::SEE_OTHER => !matches!(self.method, Method::GET | Method::HEAD),
            _ => false,
        };
        if to_get {
            self.method = Method::GET;
            self.body = None;
            for name in [
                "content-encoding",
                "content-language",
                "content-location",
                "content-type",
            ] {
                self.headers.remove(name);
            }
        }
        if self.url.origin() != next.origin() {
            self.headers.remove(reqwest::header::AUTHORIZATION);
        }
        self.url = next;
    }
}

/// Where a redirect response points, resolved against the URL it came
/// from; `None` for any other response (a 3xx without `Location` too,
/// which a browser hands to the app as it is).
fn redirect_target(response: &reqwest::Response, from: &Url) -> Result<Option<Url>, Refused> {
    let is_redirect = matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    let Some(location) = response.headers().get(LOCATION).filter(|_| is_redirect) else {
        return Ok(None);
    };
    let bad_location = |why: String| {
        Refused::new(
            Ended::BadUrl,
            format!("{from} redirected to a Location that is not a URL: {why}"),
        )
    };
    let location = location
        .to_str()
        .map_err(|_| bad_location(format!("`{}`", latin1(location.as_bytes()))))?;
    from.join(location)
        .map(Some)
        .map_err(|error| bad_location(format!("`{location}`: {error}")))
}

/// Reads the body up to `max_bytes`: refused by its Content-Length before
/// reading, or as soon as the bytes read pass the limit.
async fn read_response(
    mut response: reqwest::Response,
    mut url: Url,
    max_bytes: u64,
) -> Result<HttpOutcome, Refused> {
    let too_large = |url: &Url| {
        Refused::new(
            Ended::TooLarge,
            format!("the response from {url} is larger than this app's limit of {max_bytes} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes)
    {
        return Err(too_large(&url));
    }
    let status = response.status();
    // As XMLHttpRequest's responseURL: no fragment.
    url.set_fragment(None);
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), latin1(value.as_bytes())))
        .collect();
    // Known and within the limit: that much at once.
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(network_error)? {
        let needed = body.len() + chunk.len();
        if needed as u64 > max_bytes {
            return Err(too_large(&url));
        }
        if needed > body.capacity() {
            // Doubling, but never past the limit.
            let grown = needed.max((body.capacity() * 2).min(max_bytes as usize));
            body.reserve_exact(grown - body.len());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpOutcome::Response {
        status: status.as_u16(),
        status_text: status.canonical_reason().unwrap_or_default().to_owned(),
        url: url.to_string(),
        headers,
        body,
    })
}

/// A header value as a browser gives it to JavaScript: one character per
/// byte.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| char::from(byte)).collect()
}

fn network_error(error: reqwest::Error) -> Refused {
    Refused::new(Ended::Network, error_chain(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_for_a_host_not_allowed_says_how_to_allow_it() {
        let url = Url::parse("https://API.example.com/v1").unwrap();
        assert_eq!(
            not_allowed_reason(&url),
            "this app may not send requests to api.example.com:443: allow it with \
             `allow-http=api.example.com` when deploying, or `--allow-http api.example.com` \
             with elmbox run"
        );
        let url = Url::parse("http://[::1]:8080/").unwrap();
        assert!(not_allowed_reason(&url).contains("`allow-http=[::1]:8080`"));
    }

    #[test]
    fn forbidden_headers_are_the_fetch_standards() {
        for name in [
            "host",
            "content-length",
            "connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "te",
            "trailer",
            "expect",
            "cookie",
            "proxy-authorization",
            "proxy-anything",
            "sec-ch-ua",
        ] {
            assert!(is_forbidden_header(name, "x"), "{name}");
        }
        for name in [
            "authorization",
            "content-type",
            "accept",
            "user-agent",
            "idempotency-key",
            "x-proxy",
        ] {
            assert!(!is_forbidden_header(name, "x"), "{name}");
        }
        assert!(is_forbidden_header("x-http-method-override", "GET, trace"));
        assert!(!is_forbidden_header("x-http-method-override", "PUT"));
    }

    #[test]
    fn methods_are_normalised_as_a_browser_does() {
        assert_eq!(method("get").unwrap(), Method::GET);
        assert_eq!(method("Options").unwrap(), Method::OPTIONS);
        assert_eq!(method("patch").unwrap().as_str(), "patch");
        assert_eq!(method("MKCOL").unwrap().as_str(), "MKCOL");
        for refused in ["CONNECT", "track", "", "GE T", "GET\n"] {
            assert_eq!(
                method(refused).unwrap_err().ended,
                Ended::BadRequest,
                "{refused:?}"
            );
        }
    }

    #[test]
    fn every_ending_has_its_own_label() {
        let labels: std::collections::HashSet<_> = Ended::ALL.iter().map(Ended::label).collect();
        assert_eq!(labels.len(), Ended::ALL.len());
        assert!(labels
            .iter()
            .all(|label| label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|layer| layer as _)
            }
        }
        let error = Layer(
            "sending failed: connection refused",
            Some(Box::new(Layer(
                "connection refused",
                Some(Box::new(Layer("os error 111", None))),
            ))),
        );
        assert_eq!(
            error_chain(&error),
            "sending failed: connection refused: os error 111"
        );
    }
}
