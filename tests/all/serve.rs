//! `elmbox serve` end to end: a real server process on loopback, real HTTP,
//! killed with SIGKILL or stopped with SIGTERM and started again.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elmbox::durable::log::{Input, Record};
use elmbox_tests::{elm_like, elmbox, fixture, stderr, unruly_app};
use serde_json::{json, Value};

use crate::support::PgServer;

use crate::served::{count, read, scratch, Served, TOKEN};

fn counter_js() -> Vec<u8> {
    std::fs::read(fixture("counter")).expect("make fixtures")
}

#[test]
fn apps_are_deployed_called_and_removed_over_http() {
    let dir = scratch("basics");
    let server = Served::start(dir.join("state"));
    assert_eq!(
        read(server.http.get(format!("{}/healthz", server.url)).call()).0,
        200
    );
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 201);
    let (status, answer) = server.event("counter", "hello");
    assert_eq!(status, 200, "{answer}");
    // The same text `elmbox run` prints for that line.
    let run = elmbox(&["run", &fixture("counter")], b"hello\n");
    assert_eq!(answer, String::from_utf8(run.stdout).unwrap().trim_end());
    assert_eq!(server.count("counter", "again"), 2);
    // The same code again: a new version that is the old one; state kept.
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 200);
    assert_eq!(server.count("counter", "kept"), 3);

    let (status, list) = server.admin_get("apps", Some(TOKEN));
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        json!({"apps": ["counter"], "unserved": []})
    );
    let (status, info) = server.admin_get("apps/counter", Some(TOKEN));
    assert_eq!(status, 200, "{info}");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["events"], 3);
    assert!(info["memory"]["linear_memory_bytes"].as_u64().unwrap() > 1 << 20);

    let metrics = server.metrics();
    for line in [
        "elmbox_events_total{app=\"counter\"} 3",
        "elmbox_event_seconds_count{app=\"counter\"} 3",
        "elmbox_apps_in_memory 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    for series in [
        "elmbox_linear_memory_bytes{app=\"counter\"} ",
        "elmbox_js_heap_bytes{app=\"counter\"} ",
        "elmbox_process_rss_bytes ",
    ] {
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"));
        assert!(value.parse::<u64>().unwrap() > 100_000, "{series}{value}");
    }

    // Strangers are refused, by status.
    assert_eq!(server.admin_get("apps", None).0, 401);
    assert_eq!(server.admin_get("apps", Some("guess")).0, 401);
    let stranger = server
        .http
        .put(format!("{}/_elmbox/apps/mine", server.url))
        .header("Authorization", "Bearer guess")
        .send(&counter_js()[..]);
    assert_eq!(read(stranger).0, 401);
    assert_eq!(server.event("mine", "x").0, 404);

    // Events over the app's limit; events its port rejects.
    let query = "?max-event-bytes=8&json-events=true&in-port=onEvent";
    assert_eq!(server.deploy("small", query, &counter_js()).0, 201);
    let (status, refused) = server.event("small", "\"123456789\"");
    assert_eq!(status, 413, "{refused}");
    assert!(refused.contains("over the limit of 8 bytes"), "{refused}");
    let (status, refused) = server.event("small", "{oops");
    assert_eq!(status, 400, "{refused}");
    assert!(server.event("small", "\"ok\"").1.contains("\"ok\""));

    // An app that does not load: the same words as `elmbox run`.
    let broken = dir.join("broken.js");
    std::fs::write(&broken, "this is not ( javascript").unwrap();
    // (`run` names the app after its file.)
    let (status, why) = server.deploy("broken.js", "", b"this is not ( javascript");
    assert_eq!(status, 400, "{why}");
    let run = elmbox(&["run", broken.to_str().unwrap()], b"");
    assert!(
        stderr(&run).contains(why.trim()),
        "{why} vs {}",
        stderr(&run)
    );
    let (status, why) = server.deploy("lost", "?module=Nowhere", &counter_js());
    assert_eq!(status, 400, "{why}");
    assert!(why.contains("Nowhere"), "{why}");
    let (status, why) = server.deploy("mistyped", "?deadline-ms=soon", &counter_js());
    assert_eq!(status, 400);
    assert!(why.contains("`deadline-ms`"), "{why}");
    assert_eq!(server.event("broken.js", "x").0, 404);

    let removed = server
        .http
        .delete(format!("{}/_elmbox/apps/counter", server.url))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .call();
    assert_eq!(read(removed).0, 204);
    assert_eq!(server.event("counter", "gone").0, 404);
    // Deployed again, it starts from init: its old state went with it.
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 201);
    assert_eq!(server.count("counter", "anew"), 1);
}

#[test]
fn without_a_token_the_admin_api_is_off() {
    let dir = scratch("no-token");
    let server = Served::start_with(dir.join("state"), None, &[]);
    let (status, why) = server.deploy("counter", "", &counter_js());
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("the admin API is off"), "{why}");
    assert_eq!(server.admin_get("apps", Some(TOKEN)).0, 403);
}

#[test]
fn a_new_version_replays_the_log_or_is_refused_with_409() {
    let dir = scratch("versions");
    let server = Served::start(dir.join("state"));
    let v1 = elm_like(
        "var subs = [], n = 0;
         function init() { return { ports: {
           onEvent: { send: function (v) { n++; subs.forEach(function (s) { s({ count: n }); }); } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    let v2 = v1.replace("s({ count: n })", "s({ count: n, v: 2 })");
    let broken = v1.replace(
        "n++;",
        "n++; if (n === 2) { throw new Error('v3 breaks'); }",
    );
    assert_eq!(server.deploy("app", "", v1.as_bytes()).0, 201);
    for expected in 1..=3 {
        assert_eq!(server.count("app", "x"), expected);
    }
    let (status, why) = server.deploy("app", "", broken.as_bytes());
    assert_eq!(status, 409, "{why}");
    assert!(
        why.contains("on logged event 2") && why.contains("v3 breaks"),
        "{why}"
    );
    // The old version runs on.
    assert_eq!(server.event("app", "x").1, r#"[{"count":4}]"#);
    assert_eq!(server.deploy("app", "", v2.as_bytes()).0, 200);
    assert_eq!(server.event("app", "x").1, r#"[{"count":5,"v":2}]"#);
    assert_eq!(server.deploy("app", "?fresh=true", v1.as_bytes()).0, 200);
    assert_eq!(server.event("app", "x").1, r#"[{"count":1}]"#);
}

#[test]
fn a_faulting_app_is_restored_and_its_neighbours_never_notice() {
    let dir = scratch("faults");
    let server = Served::start(dir.join("state"));
    let limits = "?deadline-ms=1000&max-memory-mb=32";
    assert_eq!(
        server.deploy("unruly", limits, unruly_app().as_bytes()).0,
        201
    );
    assert_eq!(server.deploy("neighbour", "", &counter_js()).0, 201);
    assert_eq!(server.count("unruly", "one"), 1);
    assert_eq!(server.count("neighbour", "n"), 1);

    // The neighbour answers while the unruly app spins.
    let spinning = {
        let (url, http) = (server.url.clone(), server.http.clone());
        std::thread::spawn(move || {
            read(http.post(format!("{url}/apps/unruly/events")).send("spin"))
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.count("neighbour", "n"), 2);
    let (status, why) = spinning.join().unwrap();
    assert_eq!(status, 500, "{why}");
    assert!(why.contains("CPU deadline of 1000 ms"), "{why}");
    assert!(why.contains("state before event 2"), "{why}");
    // Restored to before the faulty event, and going on.
    assert_eq!(server.count("unruly", "two"), 2);

    let (status, why) = server.event("unruly", "hoard");
    assert!(status == 500 || status == 400, "{status}: {why}");
    assert!(why.contains("memory"), "{why}");
    assert_eq!(server.count("unruly", "three"), 3);
    assert_eq!(server.count("neighbour", "n"), 3);
    let metrics = server.metrics();
    for line in [
        "elmbox_events_total{app=\"unruly\"} 5",
        "elmbox_event_errors_total{app=\"unruly\"} 2",
        "elmbox_events_total{app=\"neighbour\"} 3",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    let restores = metrics
        .lines()
        .find_map(|l| l.strip_prefix("elmbox_restores_total{app=\"unruly\"} "))
        .unwrap_or_else(|| panic!("no restores in:\n{metrics}"));
    // The spin restored it; the memory bomb too, unless QuickJS caught it.
    assert!(restores == "1" || restores == "2", "{restores}");
}

/// An app whose `work` events take a while each, so that replaying them
/// after a `boom` (a throw once the port took the event: a fault) takes a
/// while too.
fn laborious_app() -> String {
    elm_like(
        "var subs = [], count = 0;
         function init() { return { ports: {
           onEvent: { send: function (v) {
             count++;
             if (v === 'work') { var x = 0; for (var i = 0; i < 200000; i++) { x += i % 7; } }
             if (v === 'boom') { subs.forEach(function (s) { s('partial'); }); throw new Error('boom'); }
             subs.forEach(function (s) { s({ count: count, event: v }); });
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    )
}

#[test]
fn while_an_app_is_restored_its_requests_get_503_with_retry_after() {
    let dir = scratch("restoring");
    let server = Served::start(dir.join("state"));
    assert_eq!(
        server.deploy("laborious", "", laborious_app().as_bytes()).0,
        201
    );
    let work = 40;
    for n in 1..=work {
        assert_eq!(server.count("laborious", "work"), n);
    }
    // A fault restores the app from its snapshot and replays the `work`
    // events after it; meanwhile its events are turned away, not queued.
    // An event sent while the faulty one runs would queue behind it: watch
    // the admin API for the restore, then send. (A look that lands in the
    // microseconds before the fault shows waits the restore out: try again.)
    let (mut answered, mut turned_away) = (0, 0);
    for _ in 0..5 {
        if turned_away > 0 {
            break;
        }
        let faulting = {
            let (url, http) = (server.url.clone(), server.http.clone());
            std::thread::spawn(move || {
                read(
                    http.post(format!("{url}/apps/laborious/events"))
                        .send("boom"),
                )
            })
        };
        while !faulting.is_finished() {
            let (status, shown) = server.admin_get("apps/laborious", Some(TOKEN));
            match status {
                200 => continue,
                503 => assert!(shown.contains("being restored after a fault"), "{shown}"),
                other => panic!("{other}: {shown}"),
            }
            let mut response = server
                .http
                .post(format!("{}/apps/laborious/events", server.url))
                .send("poll")
                .expect("the server answers");
            let status = response.status().as_u16();
            let retry = response.headers().get("retry-after").cloned();
            let body = response.body_mut().read_to_string().unwrap_or_default();
            match status {
                // The restore ended in between.
                200 => answered += 1,
                503 => {
                    assert!(body.contains("being restored after a fault"), "{body}");
                    assert_eq!(retry.as_ref().map(|r| r.to_str().unwrap()), Some("1"));
                    turned_away += 1;
                }
                other => panic!("{other}: {body}"),
            }
        }
        let (status, why) = faulting.join().unwrap();
        assert_eq!(status, 500, "{why}");
        assert!(why.contains("boom"), "{why}");
    }
    assert!(
        turned_away > 0,
        "no event was turned away during five restores\n{}",
        server.log()
    );
    // Every answered poll counted, the turned-away ones not, the fault not.
    assert_eq!(server.count("laborious", "after"), work + answered + 1);
}

#[test]
fn a_flood_to_one_app_is_answered_in_order_and_none_lost() {
    let dir = scratch("flood");
    let server = Served::start(dir.join("state"));
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 201);
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (url, http) = (server.url.clone(), server.http.clone());
            std::thread::spawn(move || {
                (0..40)
                    .map(|i| {
                        let sent = format!("c{client}-{i}");
                        let url = format!("{url}/apps/counter/events");
                        let (status, answer) = read(http.post(&url).send(&sent));
                        assert_eq!(status, 200, "{answer}");
                        let value: Value = serde_json::from_str(&answer).unwrap();
                        assert_eq!(value[0]["event"], sent.as_str());
                        count(&answer)
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all = Vec::new();
    for client in clients {
        let counts = client.join().unwrap();
        // Each client's events were taken in the order it sent them.
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
        all.extend(counts);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=640).collect::<Vec<u64>>(),
        "events lost or merged"
    );
}

#[test]
fn malformed_http_and_vanishing_clients_leave_the_server_serving() {
    let dir = scratch("malformed");
    let server = Served::start(dir.join("state"));
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 201);
    let address = server.url.trim_start_matches("http://").to_string();
    let raw = |bytes: &[u8]| -> String {
        let mut socket = TcpStream::connect(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        socket.write_all(bytes).unwrap();
        let mut reply = String::new();
        let _ = socket.read_to_string(&mut reply);
        reply
    };
    let reply = raw(b"NOT HTTP AT ALL\r\n\r\n");
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
        "{reply}"
    );
    // A body cut short: the client goes away before sending it all.
    {
        let mut socket = TcpStream::connect(&address).unwrap();
        socket
            .write_all(b"POST /apps/counter/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
            .unwrap();
    }
    // A client that goes away before its answer: its event is taken or
    // not, as the race with the server goes, but never half.
    {
        let mut socket = TcpStream::connect(&address).unwrap();
        socket
            .write_all(
                b"POST /apps/counter/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\ngone",
            )
            .unwrap();
        socket.shutdown(std::net::Shutdown::Both).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, info) = server.admin_get("apps/counter", Some(TOKEN));
    assert_eq!(status, 200, "{info}");
    let taken = serde_json::from_str::<Value>(&info).unwrap()["events"]
        .as_u64()
        .unwrap();
    assert!(taken <= 1, "{info}");
    assert_eq!(server.count("counter", "still here"), taken + 1);
}

#[test]
fn kill_9_under_load_loses_no_answer_and_sigterm_keeps_everything() {
    kill_9_under_load_loses_nothing(scratch("restart").join("state").as_os_str());
}

#[test]
fn on_postgres_kill_9_under_load_loses_no_answer_and_sigterm_keeps_everything() {
    let database = PgServer::start();
    kill_9_under_load_loses_nothing(database.database("serve").as_ref());
}

/// An app deployed on a server keeping its state at `state`, driven by
/// clients until the server is killed; then restarted, and stopped.
fn kill_9_under_load_loses_nothing(state: &OsStr) {
    let server = Served::start(state);
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 201);
    // Clients keep sending until the server dies under them.
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (url, http) = (server.url.clone(), server.http.clone());
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                for i in 0.. {
                    let url = format!("{url}/apps/counter/events");
                    match http.post(&url).send(&format!("c{client}-{i}")) {
                        Ok(mut response) if response.status() == 200 => {
                            let answer = response.body_mut().read_to_string().unwrap();
                            answered.push(count(&answer));
                        }
                        _ => break,
                    }
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    drop(server); // SIGKILL
    let mut answered: Vec<u64> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    answered.sort_unstable();
    assert!(answered.len() > 50, "only {} answered", answered.len());
    let distinct = answered.len();
    answered.dedup();
    assert_eq!(answered.len(), distinct, "a count answered twice");

    // Every answered event is in the restored state.
    let server = Served::start(state);
    let next = server.count("counter", "after the kill");
    assert!(
        next > *answered.last().unwrap(),
        "{next} after {answered:?}"
    );
    let status = server.terminate();
    assert!(status.success(), "SIGTERM: {status}");

    // A clean stop snapshots every app: nothing to replay.
    let server = Served::start(state);
    let (_, info) = server.admin_get("apps/counter", Some(TOKEN));
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["events"], next);
    assert_eq!(info["last_snapshot"], next);
    assert_eq!(server.count("counter", "after the stop"), next + 1);
}

/// A web app in HTTP mode: answers some requests at once, parks one
/// (`/wait`) until another (`/wake`) answers it, echoes binary bodies, and
/// never answers `/never`.
fn web_app() -> String {
    elm_like(
        "var subs = [], parked = null, seen = 0;
         function reply(v) { subs.forEach(function (s) { s(v); }); }
         function init() { return { ports: {
           onEvent: { send: function (r) {
             seen++;
             if (r.path === '/hello') {
               reply({ id: r.id, status: 200,
                       headers: { 'content-type': 'text/plain', 'x-seen': String(seen) },
                       body: 'hi ' + r.method + ' ' + r.query + ' ' + r.headers['x-who'] + ' ' + r.body });
             } else if (r.path === '/wait') {
               parked = r.id;
             } else if (r.path === '/wake') {
               reply({ id: parked, status: 200, body: 'woken by ' + r.body });
               reply({ note: 'not a response' });
               reply({ id: r.id, status: 204 });
             } else if (r.path === '/binary') {
               reply({ id: r.id, headers: { 'content-type': 'application/octet-stream' },
                       bodyBase64: r.bodyBase64 });
             } else if (r.path !== '/never') {
               reply({ id: r.id, status: 404, body: 'no ' + r.path });
             }
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    )
}

#[test]
fn http_mode_serves_requests_and_long_polls() {
    let dir = scratch("http-mode");
    let server = Served::start_with(
        dir.join("state"),
        Some(TOKEN),
        &["--response-timeout-ms", "700"],
    );
    assert_eq!(
        server.deploy("web", "?http=true", web_app().as_bytes()).0,
        201
    );
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 201);
    let url = |path: &str| format!("{}/apps/web{path}", server.url);

    let mut hello = server
        .http
        .get(url("/hello?x=1&y=2"))
        .header("X-Who", "me")
        .call()
        .unwrap();
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.headers()["content-type"], "text/plain");
    assert_eq!(hello.headers()["x-seen"], "1");
    assert_eq!(
        hello.body_mut().read_to_string().unwrap(),
        "hi GET x=1&y=2 me "
    );
    let (status, said) = read(
        server
            .http
            .post(url("/hello"))
            .header("x-who", "you")
            .send("data"),
    );
    assert_eq!((status, said.as_str()), (200, "hi POST  you data"));

    // A request answered by a later request's event.
    let waiting = {
        let (http, url) = (server.http.clone(), url("/wait"));
        std::thread::spawn(move || read(http.get(&url).call()))
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        read(server.http.post(url("/wake")).send("the alarm")).0,
        204
    );
    assert_eq!(
        waiting.join().unwrap(),
        (200, "woken by the alarm".to_string())
    );
    server.wait_for_log("not a response to a waiting request");

    let bytes = vec![0u8, 255, 1, 128];
    let mut echoed = server.http.post(url("/binary")).send(&bytes[..]).unwrap();
    assert_eq!(echoed.body_mut().read_to_vec().unwrap(), bytes);

    let started = Instant::now();
    let (status, why) = read(server.http.get(url("/never")).call());
    assert_eq!(status, 504, "{why}");
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(
        read(server.http.get(url("/other")).call()),
        (404, "no /other".to_string())
    );
    // In HTTP mode `/events` is one more path of the app's.
    assert_eq!(
        read(server.http.post(url("/events")).send("x")).1,
        "no /events"
    );
    // An app not in HTTP mode takes events only.
    let (status, why) = read(
        server
            .http
            .get(format!("{}/apps/counter/hello", server.url))
            .call(),
    );
    assert_eq!(status, 404);
    assert!(why.contains("POST /apps/counter/events"), "{why}");
}

#[test]
fn idle_apps_leave_memory_and_come_back_with_their_state() {
    let dir = scratch("idle");
    let state = dir.join("state");
    let server = Served::start_with(&state, Some(TOKEN), &["--idle-ms", "300"]);
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 201);
    assert_eq!(
        server.deploy("web", "?http=true", web_app().as_bytes()).0,
        201
    );
    assert_eq!(server.count("counter", "a"), 1);
    assert_eq!(server.count("counter", "b"), 2);
    // A request waiting for its response keeps its app in memory.
    let waiting = {
        let (http, url) = (server.http.clone(), format!("{}/apps/web/wait", server.url));
        std::thread::spawn(move || read(http.get(&url).call()))
    };
    // 503 while it is being parked: asked again.
    let info = |name: &str| -> Value {
        loop {
            let (status, info) = server.admin_get(&format!("apps/{name}"), Some(TOKEN));
            if status == 503 {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            assert_eq!(status, 200, "{info}");
            return serde_json::from_str(&info).unwrap();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while info("web")["waiting"] != 1 {
        assert!(Instant::now() < deadline, "the long poll never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    while info("counter")["state"] != "parked" {
        assert!(Instant::now() < deadline, "never parked:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let parked = info("counter");
    assert_eq!(parked["events"], 2);
    assert_eq!(parked["last_snapshot"], 2);
    assert!(parked["memory"].is_null(), "{parked}");
    assert!(!server
        .metrics()
        .contains("linear_memory_bytes{app=\"counter\"}"));
    assert_eq!(info("web")["state"], "serving");
    // Woken by its next event, with its state.
    assert_eq!(server.count("counter", "c"), 3);
    assert_eq!(info("counter")["state"], "serving");
    assert_eq!(
        read(
            server
                .http
                .post(format!("{}/apps/web/wake", server.url))
                .send("me")
        )
        .0,
        204
    );
    assert_eq!(waiting.join().unwrap(), (200, "woken by me".to_string()));
    // A parked app can be deployed to and removed.
    while info("counter")["state"] != "parked" {
        assert!(Instant::now() < deadline, "never parked again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.deploy("counter", "", &counter_js()).0, 200);
    assert_eq!(server.count("counter", "d"), 4);
    server.wait_for_log("parked: idle for 300 ms");
}

/// A node of the cluster on database `url`, with a short lease.
fn node(url: &str, id: &str) -> Served {
    Served::start_with(url, Some(TOKEN), &["--node-id", id, "--lease-ms", "1000"])
}

/// Sends `body` to `node` until it answers 200 (through 307s while the old
/// owner's lease lives, 503s while the node takes the app over), for up to
/// 10 s; the count answered and how long it took.
fn count_once_taken_over(node: &Served, name: &str, body: &str) -> (u64, Duration) {
    let started = Instant::now();
    loop {
        let (status, _, text) = node.event_located(name, body);
        match status {
            200 => return (count(&text), started.elapsed()),
            307 | 503 => {}
            _ => panic!("{status}: {text}\n{}", node.log()),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not taken over in 10 s: {status} {text}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The events in app `name`'s log on the database at `url`, in order.
fn logged_events(database: &PgServer, db: &str, name: &str) -> Vec<String> {
    let rows = database
        .client(db)
        .query(
            "SELECT seq, record FROM elmbox_log WHERE app = $1 ORDER BY seq",
            &[&name],
        )
        .unwrap();
    rows.iter()
        .filter_map(|row| {
            let seq: i64 = row.get(0);
            let record = Record::decode(seq as u64, row.get(1)).unwrap();
            match record.input {
                Input::Event(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                _ => None,
            }
        })
        .collect()
}

/// Nodes a and b on database `db`, and a counter deployed on a, sent
/// `events` events `a-0`, `a-1`... through a; the last count answered.
fn two_nodes_and_a_counter_on_a(
    database: &PgServer,
    db: &str,
    events: u64,
) -> (Served, Served, u64) {
    let url = database.database(db);
    let a = node(&url, "a");
    let b = node(&url, "b");
    assert_eq!(a.deploy("counter", "", &counter_js()).0, 201);
    let mut last = 0;
    for i in 0..events {
        last = a.count("counter", &format!("a-{i}"));
    }
    (a, b, last)
}

#[test]
fn on_postgres_a_live_node_redirects_and_a_killed_one_is_taken_over_within_the_lease() {
    let database = PgServer::start();
    let (a, b, last) = two_nodes_and_a_counter_on_a(&database, "takeover", 20);
    // Renewed while a lives: past twice the lease, b still sends a's
    // clients to a, path and query kept.
    std::thread::sleep(Duration::from_millis(2_500));
    let (status, location, text) = b.event_located("counter", "to b");
    assert_eq!(status, 307, "{text}");
    assert_eq!(
        location.as_deref(),
        Some(format!("{}/apps/counter/events", a.url).as_str())
    );
    assert!(text.contains("run by node `a`"), "{text}");
    // An app nobody has is still unknown.
    assert_eq!(b.event_located("nothing", "x").0, 404);
    // Deploying an app a runs is for a.
    let (status, text) = b.deploy("counter", "", &counter_js());
    assert_eq!(status, 409, "{text}");

    drop(a); // SIGKILL
    let (next, took) = count_once_taken_over(&b, "counter", "b-0");
    assert_eq!(next, last + 1, "b continues after a's last answer");
    // The lease is 1 s; the takeover's restore is quick.
    assert!(took < Duration::from_secs(4), "taken over after {took:?}");
    assert_eq!(b.count("counter", "b-1"), last + 2);
    b.wait_for_log("taken over in");
}

#[test]
fn on_postgres_a_node_whose_lease_was_taken_over_appends_nothing_more() {
    let database = PgServer::start();
    let (a, b, last) = two_nodes_and_a_counter_on_a(&database, "fencing", 10);
    a.signal("STOP");
    let (next, _) = count_once_taken_over(&b, "counter", "b-0");
    assert_eq!(next, last + 1);
    // A client of a's, waiting while a is stopped: a wakes up with its
    // app still in memory, but its lease is b's.
    let late = {
        let (url, http) = (a.url.clone(), a.http.clone());
        std::thread::spawn(move || {
            let mut response = http
                .post(format!("{url}/apps/counter/events"))
                .send("a-late")
                .expect("a answers");
            let status = response.status().as_u16();
            (
                status,
                response.body_mut().read_to_string().unwrap_or_default(),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    a.signal("CONT");
    let (status, text) = late.join().unwrap();
    // Fenced in its commit (503, the reason), or dropped already by its
    // renewal (307 to b): never answered.
    assert!(status == 503 || status == 307, "{status}: {text}");
    if status == 503 {
        assert!(
            text.contains("fenced") && text.contains("epoch 1, and the database has it at epoch 2"),
            "{text}"
        );
    }
    // a drops the app and sends its clients to b.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, location, text) = a.event_located("counter", "a-after");
        if status == 307 {
            assert_eq!(
                location.as_deref(),
                Some(format!("{}/apps/counter/events", b.url).as_str())
            );
            break;
        }
        assert!(status == 503, "{status}: {text}");
        assert!(
            Instant::now() < deadline,
            "a still has the app:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.wait_for_log("lease lost");
    assert_eq!(b.count("counter", "b-1"), last + 2);
    // The log: a's events, then only b's.
    let mut expected: Vec<String> = (0..10).map(|i| format!("a-{i}")).collect();
    expected.extend(["b-0".into(), "b-1".into()]);
    assert_eq!(logged_events(&database, "fencing", "counter"), expected);
}

#[test]
fn on_postgres_a_node_stopped_cleanly_lets_its_apps_go_at_once() {
    let database = PgServer::start();
    let url = database.database("handover");
    // A lease far longer than the handover may take.
    let long = ["--lease-ms", "30000"];
    let a = Served::start_with(
        &url,
        Some(TOKEN),
        &[&["--node-id", "a"], &long[..]].concat(),
    );
    let b = Served::start_with(
        &url,
        Some(TOKEN),
        &[&["--node-id", "b"], &long[..]].concat(),
    );
    assert_eq!(a.deploy("counter", "", &counter_js()).0, 201);
    let last = a.count("counter", "a-0");
    assert_eq!(b.event_located("counter", "to b").0, 307);
    let status = a.terminate();
    assert!(status.success(), "SIGTERM: {status}");
    let (next, took) = count_once_taken_over(&b, "counter", "b-0");
    assert_eq!(next, last + 1);
    assert!(took < Duration::from_secs(5), "taken over after {took:?}");
}

/// What the clients of the database restart test
/// heard: the counts answered 200, and every other answer.
#[derive(Default)]
struct Heard {
    counts: Vec<u64>,
    refused: Vec<(u16, String)>,
}

#[test]
fn on_postgres_a_database_restarted_under_load_means_503_meanwhile_and_loses_nothing() {
    let database = PgServer::start();
    let url = database.database("restart");
    let a = node(&url, "a");
    assert_eq!(a.deploy("counter", "", &counter_js()).0, 201);
    let heard = Arc::new(Mutex::new(Heard::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|client| {
            let (url, http) = (format!("{}/apps/counter/events", a.url), a.http.clone());
            let (heard, stop) = (heard.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let (status, text) = read(http.post(&url).send(&format!("c{client}-{i}")));
                    let mut heard = heard.lock().unwrap();
                    match status {
                        200 => heard.counts.push(count(&text)),
                        _ => heard.refused.push((status, text)),
                    }
                    drop(heard);
                    if status != 200 {
                        // As a client told to retry would (the 503s of a
                        // takeover say after 1 s; sooner here, to see more).
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let answered = || heard.lock().unwrap().counts.len();
    let refused = || heard.lock().unwrap().refused.len();
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "no {what} in 10 s:\n{}", a.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("answers", &|| answered() >= 50);

    // The database goes away under the load: requests are refused with
    // 503 while it is down (the commit in flight is not answered 200).
    database.stop();
    let before = refused();
    wait_for("503s while the database is down", &|| {
        refused() > before + 5
    });
    std::thread::sleep(Duration::from_millis(1_000));
    let down = answered();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(answered(), down, "answered 200 while the database was down");

    // Back on the same port and data: the node connects again, takes the
    // app over from the database, and serves again by itself.
    database.restart();
    wait_for("answers after the restart", &|| answered() >= down + 50);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    a.wait_for_log("a commit failed");
    a.wait_for_log("taken over in");

    let heard = std::mem::take(&mut *heard.lock().unwrap());
    for (status, text) in &heard.refused {
        assert_eq!(*status, 503, "{text}\n{}", a.log());
    }
    let mut counts = heard.counts;
    counts.sort_unstable();
    let total = counts.len();
    counts.dedup();
    assert_eq!(counts.len(), total, "a count answered twice");
    // Nothing answered lost, nothing applied twice, nothing refused kept.
    let (next, _) = count_once_taken_over(&a, "counter", "after the restart");
    assert_eq!(next, total as u64 + 1, "{} refused", heard.refused.len());
    // Taken over by its own node, with the next epoch.
    let epoch: i64 = database
        .client("restart")
        .query_one(
            "SELECT epoch FROM elmbox_leases WHERE app = 'counter' AND node = 'a'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(epoch >= 2, "epoch {epoch}");
}
