//! `OutgoingClient` against real servers on 127.0.0.1: what reaches them,
//! what comes back, and what never connects.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use elmbox_abi::{HttpOutcome, HttpResponse};
use elmbox_outgoing::{ClientError, Ended, HttpPolicy, OutgoingClient};
use support::{
    app, app_with, client, finished, reply, request, send, start, streamed, TempFile, TestServer,
};
use tokio::sync::watch;

fn network_error(response: &HttpResponse) -> &str {
    match &response.outcome {
        HttpOutcome::NetworkError { reason } => reason,
        other => panic!("expected a network error, got {other:?}"),
    }
}

/// The parts of a response that arrived.
struct Got<'a> {
    status: u16,
    status_text: &'a str,
    url: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
}

fn got(response: &HttpResponse) -> Got<'_> {
    match &response.outcome {
        HttpOutcome::Response {
            status,
            status_text,
            url,
            headers,
            body,
        } => Got {
            status: *status,
            status_text,
            url,
            headers,
            body,
        },
        other => panic!("expected a response, got {other:?}"),
    }
}

async fn hello_server() -> TestServer {
    TestServer::start(|_| async { reply(200, &[], "hello") }).await
}

/// A server whose every response waits until `release` is set.
async fn held_server() -> (TestServer, watch::Sender<bool>) {
    let (release, released) = watch::channel(false);
    let server = TestServer::start(move |_| {
        let mut released = released.clone();
        async move {
            let _ = released.wait_for(|go| *go).await;
            reply(200, &[], "released")
        }
    })
    .await;
    (server, release)
}

fn limits(max_response_bytes: u64, default_timeout_ms: u64, max_concurrent: u32) -> HttpPolicy {
    HttpPolicy {
        allow: Vec::new(),
        max_response_bytes,
        default_timeout_ms,
        max_concurrent,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_reaches_the_server_as_sent_with_an_idempotency_key() {
    let server = hello_server().await;
    let client = client();
    let app = app(&server.host());
    let mut get = request("GET", &server.url("/path?q=1&r=%C3%A9"));
    get.id = 42;
    get.headers = vec![
        ("Accept".into(), "text/plain".into()),
        ("X-Trace".into(), "abc".into()),
    ];

    let (response, ended) = send(&client, &app, get.clone()).await;

    assert_eq!(ended, Ended::Ok);
    assert_eq!(response.id, 42);
    assert_eq!(response.request, get.describe());
    let Got {
        status,
        status_text,
        url,
        body,
        ..
    } = got(&response);
    assert_eq!((status, status_text, body), (200, "OK", &b"hello"[..]));
    assert_eq!(url, get.url);
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.uri, "/path?q=1&r=%C3%A9");
    assert_eq!(seen.header("accept"), ["text/plain"]);
    assert_eq!(seen.header("x-trace"), ["abc"]);
    assert_eq!(seen.header("idempotency-key"), ["key-of-the-test"]);
    assert_eq!(seen.header("host"), [server.host().as_str()]);
    assert!(
        seen.header("user-agent")[0].starts_with("elmbox/"),
        "{seen:?}"
    );
    assert!(seen.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sends_its_headers_and_body_as_given() {
    let server = hello_server().await;
    let client = client();
    let app = app(&server.host());
    let mut post = request("POST", &server.url("/submit"));
    post.headers = vec![
        ("Content-Type".into(), "application/octet-stream".into()),
        ("X-B".into(), "1".into()),
        ("X-A".into(), "2".into()),
        ("X-B".into(), "3".into()),
    ];
    post.body = b"\0\xffbinary body".to_vec();

    let (_, ended) = send(&client, &app, post.clone()).await;

    assert_eq!(ended, Ended::Ok);
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/submit");
    assert_eq!(seen.body, post.body);
    assert_eq!(seen.header("content-type"), ["application/octet-stream"]);
    assert_eq!(
        seen.header("content-length"),
        [post.body.len().to_string().as_str()]
    );
    // A name set twice is sent twice, in the app's order.
    assert_eq!(seen.header("x-b"), ["1", "3"]);
    assert_eq!(seen.header("x-a"), ["2"]);
    assert_eq!(seen.header("idempotency-key"), ["key-of-the-test"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_the_app_set_is_kept() {
    let server = hello_server().await;
    let client = client();
    let app = app(&server.host());
    let mut post = request("POST", &server.url("/"));
    post.headers = vec![("IDEMPOTENCY-KEY".into(), "the-app's-own".into())];

    let (_, ended) = send(&client, &app, post).await;

    assert_eq!(ended, Ended::Ok);
    assert_eq!(
        server.seen()[0].header("idempotency-key"),
        ["the-app's-own"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_are_sent_as_a_browser_sends_them() {
    let server = hello_server().await;
    let client = client();
    let app = app(&server.host());
    for (given, sent) in [
        ("post", "POST"),
        ("Delete", "DELETE"),
        ("PATCH", "PATCH"),
        ("patch", "patch"),
        ("PROPFIND", "PROPFIND"),
    ] {
        let (_, ended) = send(&client, &app, request(given, &server.url("/"))).await;
        assert_eq!(ended, Ended::Ok, "{given}");
        assert_eq!(server.seen().last().unwrap().method, sent);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_request_headers_are_dropped() {
    let server = hello_server().await;
    let client = client();
    let app = app(&server.host());
    let mut post = request("POST", &server.url("/"));
    post.headers = [
        ("Host", "evil.test"),
        ("Content-Length", "999"),
        ("Cookie", "session=1"),
        ("Sec-Fetch-Mode", "cors"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("Transfer-Encoding", "chunked"),
        ("X-HTTP-Method-Override", "TRACE"),
        ("X-HTTP-Method", "PUT"),
        ("X-Kept", "  yes  "),
        ("Authorization", "Bearer t"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    post.body = b"abc".to_vec();

    let (_, ended) = send(&client, &app, post).await;

    assert_eq!(ended, Ended::Ok);
    let seen = &server.seen()[0];
    assert_eq!(seen.header("host"), [server.host().as_str()]);
    assert_eq!(seen.header("content-length"), ["3"]);
    assert_eq!(seen.body, b"abc");
    for dropped in [
        "cookie",
        "sec-fetch-mode",
        "proxy-authorization",
        "transfer-encoding",
        "x-http-method-override",
    ] {
        assert!(seen.header(dropped).is_empty(), "{dropped}: {seen:?}");
    }
    assert_eq!(seen.header("x-http-method"), ["PUT"]);
    assert_eq!(seen.header("x-kept"), ["yes"]);
    assert_eq!(seen.header("authorization"), ["Bearer t"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_is_a_response_with_its_headers_and_body() {
    let server = TestServer::start(|_| async {
        reply(
            404,
            &[
                ("X-Reply", "a"),
                ("Content-Type", "text/plain"),
                ("X-Reply", "b"),
                ("X-Latin1", "caf\u{e9}"),
            ],
            "no such thing",
        )
    })
    .await;
    let client = client();
    let app = app(&server.host());
    let get = request("GET", &server.url("/missing#part"));

    let (response, ended) = send(&client, &app, get).await;

    assert_eq!(ended, Ended::Ok);
    let Got {
        status,
        status_text,
        url,
        headers,
        body,
    } = got(&response);
    assert_eq!((status, status_text), (404, "Not Found"));
    // As XMLHttpRequest's responseURL: without the fragment.
    assert_eq!(url, server.url("/missing"));
    assert_eq!(body, b"no such thing");
    let has = |name: &str, value: &str| headers.iter().any(|(n, v)| n == name && v == value);
    assert!(has("x-reply", "a") && has("x-reply", "b"), "{headers:?}");
    assert!(has("content-type", "text/plain"), "{headers:?}");
    assert!(has("content-length", "13"), "{headers:?}");
    // hyper sends `é` as the UTF-8 bytes C3 A9; a browser reads each byte as a character.
    assert!(has("x-latin1", "caf\u{c3}\u{a9}"), "{headers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_without_a_reason_phrase_has_an_empty_status_text() {
    let server = TestServer::start(|_| async { reply(299, &[], "") }).await;
    let (response, ended) = send(
        &client(),
        &app(&server.host()),
        request("GET", &server.url("/")),
    )
    .await;
    assert_eq!(ended, Ended::Ok);
    let Got {
        status,
        status_text,
        ..
    } = got(&response);
    assert_eq!((status, status_text), (299, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_allowed_is_never_connected_to() {
    let server = hello_server().await;
    let client = client();
    let url = server.url("/secret");

    for app in [
        app(""),
        app("localhost"),
        app(&format!("127.0.0.1:{}", server.port() + 1)),
        app("127.0.0.2"),
    ] {
        let (response, ended) = send(&client, &app, request("GET", &url)).await;
        assert_eq!(ended, Ended::NotAllowed);
        let reason = network_error(&response);
        assert!(reason.contains(&server.host()), "{reason}");
        assert!(
            reason.contains(&format!("allow-http={}", server.host())),
            "{reason}"
        );
        assert!(reason.contains("--allow-http"), "{reason}");
    }

    // The same server counts the connection of a request it is allowed:
    // accepted in order, so one connection means none came before.
    let (_, ended) = send(&client, &app(&server.host()), request("GET", &url)).await;
    assert_eq!(ended, Ended::Ok);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_port_allows_any_of_its_ports() {
    let server = hello_server().await;
    let (_, ended) = send(
        &client(),
        &app("127.0.0.1"),
        request("GET", &server.url("/")),
    )
    .await;
    assert_eq!(ended, Ended::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_requests_are_refused_without_a_connection() {
    let server = hello_server().await;
    let client = client();
    let app = app(&server.host());
    let port = server.port();
    let bad_urls = [
        format!("ftp://127.0.0.1:{port}/file"),
        "file:///etc/passwd".to_string(),
        "/relative/path".to_string(),
        "not a url".to_string(),
        format!("http://user:secret@127.0.0.1:{port}/"),
    ];
    for url in &bad_urls {
        let (response, ended) = send(&client, &app, request("GET", url)).await;
        assert_eq!(ended, Ended::BadUrl, "{url}");
        let reason = network_error(&response);
        assert!(!reason.contains("secret"), "{reason}");
    }
    let url = server.url("/");
    let mut bad_name = request("GET", &url);
    bad_name.headers = vec![("Bad Header".into(), "x".into())];
    let mut bad_value = request("GET", &url);
    bad_value.headers = vec![("X-Split".into(), "a\r\nInjected: b".into())];
    let bad = [
        (request("GE T", &url), "`GE T`"),
        (request("CONNECT", &url), "`CONNECT`"),
        (request("trace", &url), "`trace`"),
        (bad_name, "`Bad Header`"),
        (bad_value, "`X-Split`"),
    ];
    for (bad, named) in bad {
        let (response, ended) = send(&client, &app, bad).await;
        assert_eq!(ended, Ended::BadRequest, "{named}");
        let reason = network_error(&response);
        assert!(reason.contains(named), "{reason}");
    }

    let (_, ended) = send(&client, &app, request("GET", &url)).await;
    assert_eq!(ended, Ended::Ok);
    assert_eq!(server.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_network_error_with_its_cause() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let (response, ended) = send(
        &client(),
        &app(&host),
        request("GET", &format!("http://{host}/")),
    )
    .await;
    assert_eq!(ended, Ended::Network);
    let reason = network_error(&response);
    assert!(reason.contains("refused"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_ends_a_request_without_response() {
    let server = TestServer::start(|_| async { std::future::pending().await }).await;
    let client = client();
    let app = app(&server.host());
    let mut get = request("GET", &server.url("/"));
    get.timeout_ms = 200;

    let began = Instant::now();
    let (response, ended) = send(&client, &app, get).await;

    assert_eq!(ended, Ended::Timeout);
    assert_eq!(response.outcome, HttpOutcome::Timeout);
    assert!(began.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_timeout_applies_when_the_request_has_none() {
    let server = TestServer::start(|_| async { std::future::pending().await }).await;
    let app = app_with(&server.host(), limits(1000, 200, 4));
    let began = Instant::now();
    let (_, ended) = send(&client(), &app, request("GET", &server.url("/"))).await;
    assert_eq!(ended, Ended::Timeout);
    assert!(began.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_timeout_wins_over_the_policy_default() {
    // Answers after 400 ms: past the policy's 50 ms, within the request's 60 s.
    let server = TestServer::start(|_| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        reply(200, &[], "late")
    })
    .await;
    let app = app_with(&server.host(), limits(1000, 50, 4));
    let mut get = request("GET", &server.url("/"));
    get.timeout_ms = 60_000;
    let (_, ended) = send(&client(), &app, get).await;
    assert_eq!(ended, Ended::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_covers_reading_the_body() {
    let server = TestServer::start(|_| async {
        let (mut body, response) = streamed(200, &[]);
        tokio::spawn(async move {
            let _ = body.send_data(Bytes::from_static(b"first part")).await;
            // Then nothing more, and the body never ends.
            std::future::pending::<()>().await;
            drop(body);
        });
        response
    })
    .await;
    let mut get = request("GET", &server.url("/"));
    get.timeout_ms = 300;
    let began = Instant::now();
    let (_, ended) = send(&client(), &app(&server.host()), get).await;
    assert_eq!(ended, Ended::Timeout);
    assert!(began.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_at_the_limit_is_read_whole() {
    let server = TestServer::start(|seen| async move {
        if seen.uri == "/chunked" {
            let (mut body, response) = streamed(200, &[]);
            tokio::spawn(async move {
                for _ in 0..4 {
                    body.send_data(Bytes::from(vec![b'c'; 250])).await.unwrap();
                }
            });
            response
        } else {
            reply(200, &[], vec![b'x'; 1000])
        }
    })
    .await;
    let client = client();
    let app = app_with(&server.host(), limits(1000, 10_000, 4));
    for path in ["/sized", "/chunked"] {
        let (response, ended) = send(&client, &app, request("GET", &server.url(path))).await;
        assert_eq!(ended, Ended::Ok, "{path}");
        assert_eq!(response.body().len(), 1000, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_by_its_content_length() {
    let server = TestServer::start(|seen| async move {
        if seen.uri == "/claims-10mb" {
            // Says 10 MB, sends 5 bytes, then stalls: only a check of the
            // Content-Length before reading ends this before the timeout.
            let (mut body, response) = streamed(200, &[("Content-Length", "10000000")]);
            tokio::spawn(async move {
                let _ = body.send_data(Bytes::from_static(b"start")).await;
                std::future::pending::<()>().await;
                drop(body);
            });
            response
        } else {
            reply(200, &[], vec![b'x'; 1001])
        }
    })
    .await;
    let client = client();
    let app = app_with(&server.host(), limits(1000, 60_000, 4));
    for path in ["/1001-bytes", "/claims-10mb"] {
        let (response, ended) = send(&client, &app, request("GET", &server.url(path))).await;
        assert_eq!(ended, Ended::TooLarge, "{path}");
        let reason = network_error(&response);
        assert!(reason.contains("1000 bytes"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_without_content_length_stops_at_the_limit() {
    let server = TestServer::start(|_| async {
        let (mut body, response) = streamed(200, &[]);
        tokio::spawn(async move {
            // Until the client hangs up.
            while body
                .send_data(Bytes::from(vec![b'z'; 16 * 1024]))
                .await
                .is_ok()
            {}
        });
        response
    })
    .await;
    let app = app_with(&server.host(), limits(100_000, 60_000, 4));
    let (_, ended) = send(&client(), &app, request("GET", &server.url("/endless"))).await;
    assert_eq!(ended, Ended::TooLarge);
}

/// Redirects: `/to/PATH` answers 302 to PATH, `/see-other` 303 to
/// `/final`, `/temporary` 307 to `/final`, `/loop` 302 to itself; others 200.
async fn redirecting_server() -> TestServer {
    TestServer::start(|seen| async move {
        let uri = seen.uri.as_str();
        if let Some(target) = uri.strip_prefix("/to/") {
            let target = target.replace("%3A", ":");
            reply(302, &[("Location", &target)], "")
        } else if uri == "/see-other" {
            reply(303, &[("Location", "/final")], "")
        } else if uri == "/temporary" {
            reply(307, &[("Location", "/final")], "")
        } else if uri == "/loop" {
            reply(302, &[("Location", "/loop")], "")
        } else {
            reply(200, &[], format!("at {uri}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_allowed_hosts_are_followed() {
    let server = redirecting_server().await;
    let client = client();
    let app = app(&server.host());

    let (response, ended) = send(&client, &app, request("GET", &server.url("/to//final"))).await;
    assert_eq!(ended, Ended::Ok);
    let Got {
        status, url, body, ..
    } = got(&response);
    assert_eq!(
        (status, url, body),
        (200, server.url("/final").as_str(), &b"at /final"[..])
    );

    // 303: the POST becomes a GET without body; 307: the POST is sent again.
    for (path, method, body) in [
        ("/see-other", "GET", &b""[..]),
        ("/temporary", "POST", &b"payload"[..]),
    ] {
        let mut post = request("POST", &server.url(path));
        post.headers = vec![("Content-Type".into(), "text/plain".into())];
        post.body = b"payload".to_vec();
        let (_, ended) = send(&client, &app, post).await;
        assert_eq!(ended, Ended::Ok);
        let seen = server.seen();
        let followed = seen.last().unwrap();
        assert_eq!(
            (
                followed.uri.as_str(),
                followed.method.as_str(),
                &followed.body[..]
            ),
            ("/final", method, body)
        );
        assert_eq!(followed.header("content-type").is_empty(), method == "GET");
        assert_eq!(followed.header("idempotency-key"), ["key-of-the-test"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_host_not_allowed_is_not_followed() {
    let server = redirecting_server().await;
    let elsewhere = hello_server().await;
    let client = client();
    let target = format!("http://localhost:{}/taken", elsewhere.port());
    let url = server.url(&format!("/to/{}", target.replace(':', "%3A")));

    let (response, ended) = send(&client, &app(&server.host()), request("GET", &url)).await;

    assert_eq!(ended, Ended::RedirectNotAllowed);
    let reason = network_error(&response);
    assert!(
        reason.contains(&format!("localhost:{}", elsewhere.port())),
        "{reason}"
    );
    assert!(reason.contains("allow-http="), "{reason}");

    // Allowed too, the same redirect reaches the other server, which counts
    // that one connection only.
    let both = app(&format!("{},localhost:{}", server.host(), elsewhere.port()));
    let (response, ended) = send(&client, &both, request("GET", &url)).await;
    assert_eq!(ended, Ended::Ok);
    assert_eq!(got(&response).url, target);
    assert_eq!(elsewhere.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_ends_after_ten_redirects() {
    let server = redirecting_server().await;
    let (response, ended) = send(
        &client(),
        &app(&server.host()),
        request("GET", &server.url("/loop")),
    )
    .await;
    assert_eq!(ended, Ended::TooManyRedirects);
    assert!(network_error(&response).contains("more than 10 redirects"));
    assert_eq!(server.seen().len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_concurrency_limit_are_refused_at_once() {
    let (server, release) = held_server().await;
    let client = client();
    let app = app_with(&server.host(), limits(1000, 60_000, 2));
    let (_first, first) = start(&client, &app, request("GET", &server.url("/1")));
    let (_second, second) = start(&client, &app, request("GET", &server.url("/2")));
    assert_eq!(app.in_flight(), 2);

    // Answered while the two others are still held by the server.
    let (response, ended) = send(&client, &app, request("GET", &server.url("/3"))).await;
    assert_eq!(ended, Ended::TooMany);
    assert!(network_error(&response).contains("2 requests in flight"));
    server.wait_for_requests(2).await;

    release.send_replace(true);
    for done in [first, second] {
        assert_eq!(finished(done).await.1, Ended::Ok);
    }
    assert_eq!(app.in_flight(), 0);
    let uris: Vec<String> = server.seen().into_iter().map(|seen| seen.uri).collect();
    assert!(!uris.contains(&"/3".to_string()), "{uris:?}");
    // The places are free again.
    let (_, ended) = send(&client, &app, request("GET", &server.url("/4"))).await;
    assert_eq!(ended, Ended::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_request_never_calls_done_and_frees_its_place() {
    let (server, release) = held_server().await;
    let client = client();
    let app = app_with(&server.host(), limits(1000, 60_000, 1));
    let (in_flight, done) = start(&client, &app, request("GET", &server.url("/aborted")));
    server.wait_for_requests(1).await;
    assert_eq!(app.in_flight(), 1);

    assert!(in_flight.abort());

    assert_eq!(app.in_flight(), 0);
    assert!(!in_flight.abort(), "a second abort does nothing");
    release.send_replace(true);
    // `done` was dropped with the task, never called.
    let never = tokio::time::timeout(Duration::from_secs(5), done).await;
    assert!(matches!(never, Ok(Err(_))), "{never:?}");
    let (_, ended) = send(&client, &app, request("GET", &server.url("/next"))).await;
    assert_eq!(ended, Ended::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_in_flight_does_not_abort() {
    let (server, release) = held_server().await;
    let client = client();
    let app = app(&server.host());
    let (in_flight, done) = start(&client, &app, request("GET", &server.url("/")));
    server.wait_for_requests(1).await;
    drop(in_flight);
    release.send_replace(true);
    let (response, ended) = finished(done).await;
    assert_eq!(ended, Ended::Ok);
    assert_eq!(response.body(), b"released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_done_does_nothing() {
    let server = hello_server().await;
    let client = client();
    let (in_flight, done) = start(
        &client,
        &app(&server.host()),
        request("GET", &server.url("/")),
    );
    assert_eq!(finished(done).await.1, Ended::Ok);
    assert!(!in_flight.abort());
}

#[tokio::test(flavor = "current_thread")]
async fn done_is_called_from_the_task_never_from_start() {
    let client = client();
    let app = app("");
    let (_in_flight, mut done) = start(&client, &app, request("GET", "http://127.0.0.1:9/"));
    // Refused at once, yet the one thread has not run the task yet.
    assert!(done.try_recv().is_err());
    assert_eq!(finished(done).await.1, Ended::NotAllowed);
}

/// A CA made for the test, and a server config with a certificate it
/// signed for 127.0.0.1 and localhost.
fn test_ca() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "elmbox-outgoing test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_works_with_the_extra_ca_and_fails_without_it() {
    let (ca_pem, tls) = test_ca();
    let server = TestServer::start_tls(tls, |_| async { reply(200, &[], "secret hello") }).await;
    let ca_file = TempFile::new("ca.pem", ca_pem.as_bytes());
    let app = app(&server.host());
    let url = format!("https://{}/tls", server.host());

    let with_ca = OutgoingClient::new(std::slice::from_ref(&ca_file.0)).unwrap();
    let (response, ended) = send(&with_ca, &app, request("GET", &url)).await;
    assert_eq!(ended, Ended::Ok, "{response:?}");
    assert_eq!(response.body(), b"secret hello");
    assert_eq!(server.seen()[0].uri, "/tls");

    let without_ca = client();
    let (response, ended) = send(&without_ca, &app, request("GET", &url)).await;
    assert_eq!(ended, Ended::Network);
    let reason = network_error(&response);
    assert!(reason.contains("certificate"), "{reason}");
    assert_eq!(
        server.seen().len(),
        1,
        "nothing was sent over the refused connection"
    );
}

#[test]
fn ca_files_that_are_not_certificates_are_named_in_the_error() {
    let missing = std::env::temp_dir().join("elmbox-outgoing-no-such-file.pem");
    let error = OutgoingClient::new(std::slice::from_ref(&missing)).unwrap_err();
    assert!(matches!(error, ClientError::ReadCaFile { .. }), "{error}");
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );

    let empty = TempFile::new("empty.pem", b"no certificate in here\n");
    let error = OutgoingClient::new(std::slice::from_ref(&empty.0)).unwrap_err();
    assert!(
        matches!(error, ClientError::NoCertificate { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&empty.0.display().to_string()),
        "{error}"
    );

    let key_only = TempFile::new(
        "key.pem",
        rcgen::KeyPair::generate()
            .unwrap()
            .serialize_pem()
            .as_bytes(),
    );
    let error = OutgoingClient::new(std::slice::from_ref(&key_only.0)).unwrap_err();
    assert!(
        matches!(error, ClientError::NoCertificate { .. }),
        "{error}"
    );

    let garbage = TempFile::new(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let error = OutgoingClient::new(std::slice::from_ref(&garbage.0)).unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::BadCertificate { number: 1, .. } | ClientError::BadPem { .. }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains(&garbage.0.display().to_string()),
        "{error}"
    );
}
