//! The one rule for app names (`elmbox::app_name`), where names come in:
//! `serve`'s admin API, `run --name` (and the file name it defaults to),
//! the library's `Pool` and `DurableApp`; and a store written by an older
//! elmbox that holds a name the rule refuses, which is still served.

use std::path::Path;
use std::sync::Arc;

use elmbox::app_name::{self, RULE};
use elmbox::durable::commit::Committer;
use elmbox::durable::store::Write;
use elmbox::durable::StateLocation;
use elmbox::{DurableApp, DurableOptions, Error, Pool, PoolConfig, SandboxLimits};
use elmbox_tests::http_api::{
    percent_encode, request, Answer, ServeProcess, ServerUnderTest, TOKEN,
};
use elmbox_tests::{config, elmbox, fixture, runtime, stderr};
use serde_json::Value;

use crate::support::scratch;

/// What the issue that brought the rule in tried, and a few more.
fn hostile_names() -> Vec<String> {
    vec![
        "a\0b".into(),
        "a\nb".into(),
        "a b".into(),
        "x\u{202e}y".into(),
        "y".repeat(5000),
        "x".repeat(64),
        "_elmbox".into(),
        "-a".into(),
        ".hidden".into(),
        "a/b".into(),
        "ünï".into(),
    ]
}

fn admin() -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {TOKEN}"))]
}

fn call(addr: std::net::SocketAddr, method: &str, target: &str, body: &[u8]) -> Answer {
    request(addr, method, target, &admin(), body).unwrap_or_else(|e| panic!("{e}"))
}

fn listed(addr: std::net::SocketAddr) -> Value {
    let answer = call(addr, "GET", "/_elmbox/apps", b"");
    assert_eq!(answer.status, 200, "{answer:?}");
    serde_json::from_str(&answer.body).unwrap()
}

fn counter() -> Vec<u8> {
    std::fs::read(fixture("counter")).expect("make fixtures")
}

/// A fresh state directory, under a scratch folder of the test's own.
fn state_dir(test: &str) -> std::path::PathBuf {
    let dir = scratch(test).join("state");
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn serve_refuses_hostile_names_with_400_naming_the_rule_and_stores_nothing() {
    let state = state_dir("names-refused");
    let mut server = ServeProcess::default();
    let addr = server.start(&state);
    for name in hostile_names() {
        let target = format!("/_elmbox/apps/{}", percent_encode(&name));
        let answer = call(addr, "PUT", &target, &counter());
        assert_eq!(answer.status, 400, "{name:?}: {answer:?}");
        assert!(answer.body.contains(RULE), "{name:?}: {answer:?}");
        // Shown escaped and bounded, never as it came.
        assert!(
            answer.body.len() < 400 && answer.body.trim_end().chars().all(|c| !c.is_control()),
            "{name:?}: {:?}",
            answer.body
        );
    }
    // The rule's edges are names.
    for name in ["a", &"x".repeat(63), "Shop-2.eu_west"] {
        let answer = call(addr, "PUT", &format!("/_elmbox/apps/{name}"), &counter());
        assert_eq!(answer.status, 201, "{name}: {answer:?}");
    }
    let list = listed(addr);
    assert_eq!(list["apps"].as_array().unwrap().len(), 3, "{list}");
    assert_eq!(list["unserved"], serde_json::json!([]), "{list}");
    server.soundness().unwrap();
    server.stop();

    // In the store: the three good ones, nothing else; it serves again.
    // (`elmbox state` names the store and its size first, then each app.)
    let out = elmbox(&["state", state.to_str().unwrap()], b"");
    let stored: Vec<&str> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    let addr = server.start(&state);
    assert_eq!(listed(addr)["apps"].as_array().unwrap().len(), 3);
    server.soundness().unwrap();
}

/// Writes an app under `name` into the state directory `state` as an older
/// elmbox could have: the code of the app `like`, which is stored there.
fn smuggle(state: &Path, name: &str, like: &str) {
    let store = StateLocation::Directory(state.to_path_buf())
        .open()
        .unwrap();
    let code = store.app(like).unwrap().expect("the good app").code;
    store
        .commit(&[
            Write::App {
                name: name.into(),
                code,
            },
            Write::HostOptions {
                app: name.into(),
                options: "{}".into(),
            },
        ])
        .unwrap();
}

#[test]
fn a_store_holding_a_name_the_rule_refuses_is_served_and_reports_it() {
    let state = state_dir("names-smuggled");
    let mut server = ServeProcess::default();
    let addr = server.start(&state);
    assert_eq!(
        call(addr, "PUT", "/_elmbox/apps/good", &counter()).status,
        201
    );
    server.stop();
    let (nul, newline) = ("a\0b", "a\nb");
    smuggle(&state, nul, "good");
    smuggle(&state, newline, "good");

    // It starts (an older server panicked here), serves the good app, and
    // says what it does not serve, and why.
    let addr = server.start(&state);
    let event = request(addr, "POST", "/apps/good/events", &[], b"hello").unwrap();
    assert_eq!(event.status, 200, "{event:?}");
    assert!(event.body.contains("\"count\":1"), "{event:?}");
    let list = listed(addr);
    assert_eq!(list["apps"], serde_json::json!(["good"]), "{list}");
    let unserved = list["unserved"].as_array().unwrap();
    let names: Vec<&str> = unserved
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [nul, newline], "{list}");
    assert!(
        unserved
            .iter()
            .all(|u| u["problem"].as_str().unwrap().contains(RULE)),
        "{list}"
    );
    let log = server.log();
    for name in [nul, newline] {
        let line = log
            .lines()
            .find(|l| l.contains("ERROR") && l.contains(&app_name::printable(name)))
            .unwrap_or_else(|| panic!("no error line for {name:?} in:\n{log}"));
        assert!(line.contains("not served"), "{line}");
    }
    // Its events find nothing; the admin sees it and can remove it.
    let event = request(addr, "POST", "/apps/a%00b/events", &[], b"x").unwrap();
    assert_eq!(event.status, 404, "{event:?}");
    let info = call(addr, "GET", "/_elmbox/apps/a%00b", b"");
    assert_eq!(info.status, 200, "{info:?}");
    let info: Value = serde_json::from_str(&info.body).unwrap();
    assert_eq!(
        (&info["name"], &info["state"]),
        (&Value::from(nul), &Value::from("unserved"))
    );
    assert!(info["problem"].as_str().unwrap().contains(RULE), "{info}");
    assert_eq!(call(addr, "DELETE", "/_elmbox/apps/a%00b", b"").status, 204);
    let list = listed(addr);
    assert_eq!(list["unserved"].as_array().unwrap().len(), 1, "{list}");
    server.soundness().unwrap();
    server.stop();

    // Removed for good; the other stays reported, and good's count goes on.
    let addr = server.start(&state);
    let list = listed(addr);
    assert_eq!(list["unserved"][0]["name"], newline, "{list}");
    let event = request(addr, "POST", "/apps/good/events", &[], b"again").unwrap();
    assert!(event.body.contains("\"count\":2"), "{event:?}");
    let out = elmbox(&["state", state.to_str().unwrap()], b"");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("a\\u{a}b") && !text.contains("a\\u{0}b"),
        "{text}"
    );
    server.soundness().unwrap();
}

#[test]
fn run_refuses_a_name_the_rule_refuses_before_making_any_state() {
    let dir = scratch("names-run");
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let out = elmbox(
        &[
            "run",
            &fixture("counter"),
            "--state",
            state.to_str().unwrap(),
            "--name",
            "a b",
        ],
        b"hello\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--name") && stderr(&out).contains(RULE),
        "{}",
        stderr(&out)
    );
    assert!(!state.exists());

    // A file name that would make a bad app name is refused too, saying
    // how to name it.
    let spaced = dir.join("my app.js");
    std::fs::copy(fixture("counter"), &spaced).unwrap();
    let out = elmbox(
        &[
            "run",
            spaced.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        b"hello\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("name it with --name") && stderr(&out).contains(RULE),
        "{}",
        stderr(&out)
    );
    assert!(!state.exists());
    let out = elmbox(
        &[
            "run",
            spaced.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--name",
            "my-app",
        ],
        b"hello\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"count\":1"));
}

#[test]
fn the_library_refuses_names_the_rule_refuses() {
    let pool = Pool::new(PoolConfig {
        max_apps: 4,
        max_memory_per_app: 64 << 20,
        ..PoolConfig::default()
    })
    .unwrap();
    let image = pool.runtime().snapshot(counter(), config().0).unwrap();
    for name in hostile_names() {
        let loaded = pool.load_image(&name, &image);
        assert!(
            matches!(loaded, Err(Error::BadAppName { .. })),
            "{name:?}: {loaded:?}"
        );
        let loaded = pool.load(&name, counter(), config().0, SandboxLimits::default());
        assert!(
            matches!(loaded, Err(Error::BadAppName { .. })),
            "{name:?}: {loaded:?}"
        );
    }
    assert!(pool.names().is_empty());

    let state = state_dir("names-library");
    let store = StateLocation::Directory(state.clone()).open().unwrap();
    let committer = Arc::new(Committer::start(store.clone(), None));
    for name in hostile_names() {
        let opened = DurableApp::open(
            runtime(),
            store.clone(),
            committer.clone(),
            &name,
            &counter(),
            config().0,
            DurableOptions::default(),
        );
        let err = opened.err().expect("refused");
        assert!(matches!(err, Error::BadAppName { .. }), "{name:?}: {err}");
        assert!(err.to_string().contains(RULE), "{err}");
    }
    assert!(store.apps().unwrap().is_empty());
}
