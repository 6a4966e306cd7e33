//! Served apps that call other services with elm/http: the fetch fixture
//! (`examples/fetch`, in HTTP mode) against an upstream the test starts on
//! loopback (`elmbox_tests::upstream`), which counts its connections and
//! keeps what it was sent. Allowed hosts, the limits, https with a CA of
//! the test's own, and kill -9 on both sides of a response's record; then
//! `elmbox run`, with and without `--state`, and a built module on the
//! wasmtime CLI, which has no network.

use std::time::{Duration, Instant};

use elmbox_tests::upstream::{TestCa, Upstream};
use elmbox_tests::{elmbox, fixture, json_lines, stderr};
use serde_json::{json, Value};

use crate::served::{read, scratch, Served, TOKEN};
use crate::support::{build, three_paths_agree};

fn fetch_js() -> Vec<u8> {
    std::fs::read(fixture("fetch")).expect("make fixtures")
}

/// `fetch` deployed on `server` in HTTP mode, with the deploy's `query`.
fn deploy_fetch(server: &Served, query: &str) {
    let (status, text) = server.deploy("fetch", &format!("?http=true{query}"), &fetch_js());
    assert!(
        status == 201 || status == 200,
        "{status} {text}\n{}",
        server.log()
    );
}

/// `POST /apps/fetch/fetch` with `spec`: what came of the app's request.
fn fetch(server: &Served, spec: Value) -> Value {
    let (status, body) = read(
        server
            .http
            .post(format!("{}/apps/fetch/fetch", server.url))
            .send(spec.to_string()),
    );
    assert_eq!(status, 200, "{spec}: {body}\n{}", server.log());
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// `GET /apps/fetch/count`: how many fetches completed, and the last.
fn count(server: &Served) -> Value {
    let (status, body) = read(
        server
            .http
            .get(format!("{}/apps/fetch/count", server.url))
            .call(),
    );
    assert_eq!(status, 200, "{body}\n{}", server.log());
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_served_app_calls_an_allowed_service_with_its_headers_and_body() {
    let upstream = Upstream::start();
    let server = Served::start(scratch("http-get-post"));
    deploy_fetch(&server, &format!("&allow-http={}", upstream.host()));

    let got = fetch(
        &server,
        json!({"url": upstream.url("/echo?q=1"), "headers": [["X-Trace", "t-1"]]}),
    );
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["status"], 200);
    assert_eq!(got["url"], upstream.url("/echo?q=1"));
    let echoed: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["path"], "/echo?q=1");
    let seen = upstream.wait_for(1);
    assert_eq!(seen[0].header("x-trace"), Some("t-1"));
    let key = seen[0]
        .header("idempotency-key")
        .expect("a key")
        .to_string();
    assert!(
        key.starts_with("fetch/") && key.ends_with("/1"),
        "the app's name, its history's tag, the request's number: {key}"
    );

    let posted = fetch(
        &server,
        json!({"url": upstream.url("/echo"), "method": "POST", "body": "to the service",
               "headers": [["Authorization", "Bearer s3cret"]]}),
    );
    assert_eq!(posted["ok"], true, "{posted}");
    let seen = upstream.wait_for(2);
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].body, b"to the service");
    assert_eq!(seen[1].header("content-type"), Some("text/plain"));
    assert_eq!(seen[1].header("authorization"), Some("Bearer s3cret"));
    let second = seen[1].header("idempotency-key").unwrap();
    assert_ne!(second, key, "each request its own key");

    let missing = fetch(&server, json!({"url": upstream.url("/status/404")}));
    assert_eq!(
        (&missing["error"], &missing["status"], &missing["body"]),
        (&json!("BadStatus"), &json!(404), &json!("status 404")),
        "Http.BadStatus 404, with the body: {missing}"
    );
    assert!(server
        .metrics()
        .contains(r#"elmbox_http_requests_total{app="fetch",outcome="ok"} 3"#));
}

#[test]
fn a_host_not_allowed_is_never_connected_to() {
    let allowed = Upstream::start();
    let elsewhere = Upstream::start();
    let server = Served::start(scratch("http-not-allowed"));
    deploy_fetch(&server, &format!("&allow-http={}", allowed.host()));

    let refused = fetch(&server, json!({"url": elsewhere.url("/echo")}));
    assert_eq!(refused, json!({"ok": false, "error": "NetworkError"}));
    // A redirect from an allowed host to one that is not: not followed.
    let target = elsewhere.url("/echo").replace("127.0.0.1", "localhost");
    let redirected = fetch(
        &server,
        json!({"url": allowed.url(&format!("/redirect?to={target}"))}),
    );
    assert_eq!(redirected, json!({"ok": false, "error": "NetworkError"}));
    assert_eq!(
        allowed.wait_for(1).len(),
        1,
        "the redirect itself was asked"
    );
    assert_eq!(elsewhere.connections(), 0, "no connection was made");
    server.wait_for_log("outgoing HTTP: host not allowed");
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"elmbox_http_requests_total{app="fetch",outcome="not_allowed"} 1"#),
        "{metrics}"
    );
    assert!(metrics
        .contains(r#"elmbox_http_requests_total{app="fetch",outcome="redirect_not_allowed"} 1"#));

    // The negative control: allowed, the same requests do reach it.
    deploy_fetch(
        &server,
        &format!(
            "&allow-http={},{},localhost",
            allowed.host(),
            elsewhere.host()
        ),
    );
    assert_eq!(
        fetch(&server, json!({"url": elsewhere.url("/echo")}))["ok"],
        true
    );
    let redirected = fetch(
        &server,
        json!({"url": allowed.url(&format!("/redirect?to={target}"))}),
    );
    assert_eq!(redirected["ok"], true, "{redirected}");
    assert_eq!(elsewhere.connections(), 2);
}

#[test]
fn a_request_past_its_limits_fails_as_elm_http_says() {
    let upstream = Upstream::start();
    let server = Served::start(scratch("http-limits"));
    deploy_fetch(
        &server,
        &format!(
            "&allow-http={}&http-max-response-bytes=1000&http-timeout-ms=400",
            upstream.host()
        ),
    );
    let started = Instant::now();
    let own = fetch(
        &server,
        json!({"url": upstream.url("/slow?ms=5000"), "timeout": 200}),
    );
    assert_eq!(own, json!({"ok": false, "error": "Timeout"}));
    let by_default = fetch(&server, json!({"url": upstream.url("/slow?ms=5000")}));
    assert_eq!(by_default, json!({"ok": false, "error": "Timeout"}));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not the upstream's 5 s"
    );

    let at_limit = fetch(
        &server,
        json!({"url": upstream.url("/big?bytes=1000"), "expect": "bytes"}),
    );
    assert_eq!(at_limit["bytes"], 1000, "{at_limit}");
    let over = fetch(
        &server,
        json!({"url": upstream.url("/big?bytes=1001"), "expect": "bytes"}),
    );
    assert_eq!(over, json!({"ok": false, "error": "NetworkError"}));
    let metrics = server.metrics();
    for outcome in [r#"outcome="timeout"} 2"#, r#"outcome="too_large"} 1"#] {
        assert!(metrics.contains(outcome), "{outcome}: {metrics}");
    }
    server.wait_for_log("larger than this app's limit of 1000 bytes");
}

#[test]
fn a_recorded_response_is_not_fetched_again_after_kill_9() {
    let upstream = Upstream::start();
    let state = scratch("http-recorded");
    let server = Served::start(&state);
    deploy_fetch(&server, &format!("&allow-http={}", upstream.host()));
    // Answered: its response is in the log.
    let got = fetch(&server, json!({"url": upstream.url("/echo")}));
    assert_eq!(got["ok"], true);
    drop(server); // SIGKILL

    let server = Served::start(&state);
    let counted = count(&server);
    assert_eq!(counted["fetched"], 1, "{counted}");
    assert_eq!(counted["last"]["status"], 200);
    assert_eq!(upstream.seen().len(), 1, "the restore called nobody");
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn a_response_lost_to_kill_9_is_asked_again_with_the_same_key() {
    let upstream = Upstream::start();
    let state = scratch("http-lost");
    let server = Served::start(&state);
    deploy_fetch(&server, &format!("&allow-http={}", upstream.host()));
    // The upstream holds the answer; the server dies before it comes.
    let client = {
        let (http, url) = (
            server.http.clone(),
            format!("{}/apps/fetch/fetch", server.url),
        );
        let spec = json!({"url": upstream.url("/hold")}).to_string();
        std::thread::spawn(move || http.post(url).send(spec).map(|r| r.status().as_u16()))
    };
    let first = upstream.wait_for(1)[0].clone();
    let (status, info) = server.admin_get("apps/fetch", Some(TOKEN));
    assert_eq!(status, 200, "{info}");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["requests_in_flight"], 1, "{info}");
    assert_eq!(
        info["options"]["http-policy"]["allow"],
        json!([upstream.host()])
    );
    drop(server); // SIGKILL
    assert!(client.join().unwrap().is_err(), "its client got no answer");

    let server = Served::start(&state);
    let again = upstream.wait_for(2)[1].clone();
    assert_eq!(again.path, "/hold");
    assert_eq!(
        again.header("idempotency-key"),
        first.header("idempotency-key"),
        "a retry, and the peer can tell"
    );
    assert!(first.header("idempotency-key").is_some());
    upstream.release();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&server)["fetched"] != 1 {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count(&server)["last"]["body"], "released");
    assert_eq!(
        upstream.seen().len(),
        2,
        "sent twice, at least once each run"
    );
}

#[test]
fn https_works_with_the_servers_ca_and_not_without_it() {
    let dir = scratch("http-tls");
    let ca = TestCa::new(&dir);
    let upstream = Upstream::start_tls(&ca);
    let ca_file = ca.ca_file.display().to_string();
    let trusted = Served::start_with(dir.join("trusted"), Some(TOKEN), &["--http-ca", &ca_file]);
    deploy_fetch(&trusted, &format!("&allow-http={}", upstream.host()));
    let got = fetch(&trusted, json!({"url": upstream.url("/echo")}));
    assert_eq!(got["ok"], true, "{got}\n{}", trusted.log());
    assert!(upstream.url("").starts_with("https://"));

    // The negative control: the same request, without the test's CA.
    let untrusted = Served::start(dir.join("untrusted"));
    deploy_fetch(&untrusted, &format!("&allow-http={}", upstream.host()));
    let refused = fetch(&untrusted, json!({"url": upstream.url("/echo")}));
    assert_eq!(refused, json!({"ok": false, "error": "NetworkError"}));
    untrusted.wait_for_log("UnknownIssuer");
}

/// One HTTP-mode request for `elmbox run --json-events`: a fetch of `spec`.
fn fetch_line(id: &str, spec: Value) -> String {
    json!({"id": id, "method": "POST", "path": "/fetch", "body": spec.to_string()}).to_string()
}

/// The outcome in an HTTP-mode answer line: `[{"id", ..., "body": JSON}]`.
fn outcome(line: &Value) -> Value {
    serde_json::from_str(line[0]["body"].as_str().expect("an answer")).unwrap()
}

#[test]
fn run_answers_each_line_once_its_requests_are_answered() {
    let upstream = Upstream::start();
    let elsewhere = Upstream::start();
    let input = [
        fetch_line(
            "a",
            json!({"url": upstream.url("/echo"), "method": "PUT", "body": "x"}),
        ),
        fetch_line("b", json!({"url": elsewhere.url("/echo")})),
        json!({"id": "c", "method": "GET", "path": "/count"}).to_string(),
    ]
    .join("\n");
    let fetch = fixture("fetch");
    let allow = upstream.host();
    let out = elmbox(
        &["run", &fetch, "--json-events", "--allow-http", &allow],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "one line per input");
    assert_eq!(outcome(&lines[0])["ok"], true, "answered in its own line");
    assert_eq!(
        outcome(&lines[1]),
        json!({"ok": false, "error": "NetworkError"})
    );
    assert_eq!(outcome(&lines[2])["fetched"], 2);
    assert_eq!(upstream.seen()[0].method, "PUT");
    assert_eq!(elsewhere.connections(), 0);
    assert!(
        stderr(&out).contains(&format!(
            "elmbox: HTTP request 2: this app may not send requests to {}",
            elsewhere.host()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_with_state_replays_a_response_instead_of_asking_again() {
    let upstream = Upstream::start();
    let dir = scratch("http-run-state");
    let _ = std::fs::remove_dir_all(dir.join("state"));
    let state = dir.join("state").display().to_string();
    let (fetch, allow) = (fixture("fetch"), upstream.host());
    let run = |input: String| {
        let args = [
            "run",
            &fetch,
            "--json-events",
            "--state",
            &state,
            "--allow-http",
            &allow,
        ];
        let out = elmbox(&args, input.as_bytes());
        assert!(out.status.success(), "{}", stderr(&out));
        json_lines(&out)
    };
    let first = run(fetch_line("a", json!({"url": upstream.url("/echo")})));
    assert_eq!(outcome(&first[0])["ok"], true);
    let count = json!({"id": "c", "method": "GET", "path": "/count"}).to_string();
    let second = run(count);
    assert_eq!(outcome(&second[0])["fetched"], 1);
    assert_eq!(upstream.seen().len(), 1, "the restore asked nobody");
}

#[test]
fn without_a_network_every_path_answers_network_error_alike() {
    let dir = scratch("http-no-network");
    let fetch = fixture("fetch");
    let wasm = build(&fetch, &dir, "fetch", &["--json-events"]);
    let input = [
        fetch_line("a", json!({"url": "http://127.0.0.1:9/echo"})),
        fetch_line("b", json!({"url": "not a url"})),
        json!({"id": "c", "method": "GET", "path": "/count"}).to_string(),
    ]
    .join("\n");
    let out = three_paths_agree(&fetch, &["--json-events"], &wasm, input.as_bytes());
    let lines = json_lines(&out);
    assert_eq!(
        outcome(&lines[0]),
        json!({"ok": false, "error": "NetworkError"})
    );
    assert_eq!(
        outcome(&lines[1]),
        json!({"ok": false, "error": "BadUrl not a url"})
    );
    assert_eq!(outcome(&lines[2])["fetched"], 2);
}
