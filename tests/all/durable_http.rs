//! A durable app's outgoing HTTP through the library (`DurableApp`), with
//! no network: responses recorded in the log and handed again by replays
//! and deploys, the requests still waiting after a restore, their `Idempotency-Key`s, a
//! deploy whose version makes other requests than the log answers, and a
//! response that faults the app.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use elmbox::durable::commit::Committer;
use elmbox::durable::StateLocation;
use elmbox::http::{HttpAction, HttpOutcome, HttpRequest, HttpResponse};
use elmbox::{DurableApp, DurableOptions, Error, EventFormat, OnNewCode};
use elmbox_tests::{config, elm_like, runtime};
use serde_json::{json, Value};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("durable-http-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state")
}

/// Each event `{"url": U}` starts a GET of `PREFIX + U`; each response is
/// answered with the count of responses so far, its status and body, and
/// `VERSION`. A body of `throw` makes the app throw while it takes it.
fn caller(version: &str, prefix: &str) -> String {
    elm_like(&format!(
        r#"var subs = [], got = 0;
         function emit(v) {{ subs.forEach(function (s) {{ s(v); }}); }}
         function init() {{ return {{ ports: {{
           onEvent: {{ send: function (v) {{
             var x = new XMLHttpRequest();
             x.addEventListener('load', function () {{
               if (x.responseText === 'throw') {{ throw new Error('a body it cannot take'); }}
               got++;
               emit({{ got: got, status: x.status, body: x.responseText, version: '{version}' }});
             }});
             x.addEventListener('error', function () {{ got++; emit({{ got: got, error: true }}); }});
             x.open('GET', '{prefix}' + v.url);
             x.send();
           }} }},
           respond: {{ subscribe: function (f) {{ subs.push(f); }} }} }} }}; }}"#
    ))
}

fn open(
    state: &Path,
    source: &str,
    on_new_code: OnNewCode,
) -> elmbox::Result<(DurableApp, Arc<Committer>)> {
    let store = StateLocation::parse(state.display().to_string()).open()?;
    let committer = Arc::new(Committer::start(store.clone(), None));
    let options = DurableOptions {
        on_new_code,
        ..DurableOptions::default()
    };
    let config = config().0.event_format(EventFormat::Json).random_seed(7);
    let (app, _) = DurableApp::open(
        runtime(),
        store,
        committer.clone(),
        "caller",
        source.as_bytes(),
        config,
        options,
    )?;
    Ok((app, committer))
}

/// Sends `{"url": url}`; returns the one request it started, released
/// once the event is durable.
fn request(app: &mut DurableApp, url: &str) -> HttpRequest {
    let mut submitted = app
        .submit_event(json!({ "url": url }).to_string().as_bytes())
        .unwrap();
    let actions = submitted.take_http_actions();
    assert_eq!(submitted.wait().unwrap(), "[]");
    match actions.as_slice() {
        [HttpAction::Send(request)] => request.clone(),
        other => panic!("one request, not {other:?}"),
    }
}

fn ok(request: &HttpRequest, body: &str) -> HttpResponse {
    HttpResponse {
        id: request.id,
        request: request.describe(),
        outcome: HttpOutcome::Response {
            status: 200,
            status_text: "OK".into(),
            url: request.url.clone(),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        },
    }
}

fn answer(app: &mut DurableApp, response: &HttpResponse) -> Value {
    let answered = app.submit_http_response(response).unwrap().wait().unwrap();
    serde_json::from_str(&answered).unwrap()
}

#[test]
fn a_restore_and_a_deploy_replay_the_recorded_responses() {
    let state = scratch("replayed");
    let v1 = caller("v1", "http://a.example/");
    let (mut app, committer) = open(&state, &v1, OnNewCode::Refuse).unwrap();
    let first = request(&mut app, "one");
    assert_eq!(first.url, "http://a.example/one");
    assert_eq!(answer(&mut app, &ok(&first, "1"))[0]["got"], 1);
    let second = request(&mut app, "two");
    let keys = app.idempotency_keys();
    assert_eq!(keys.key(second.id), format!("caller/{}/2", key_tag(&keys)));
    drop(app);
    committer.finish().unwrap();

    // Restored: the answered request is done, the other still waits, and
    // keeps its key.
    let (mut app, committer) = open(&state, &v1, OnNewCode::Refuse).unwrap();
    assert_eq!(app.waiting_http().unwrap(), vec![second.clone()]);
    assert_eq!(app.idempotency_keys(), keys);
    assert_eq!(answer(&mut app, &ok(&second, "2"))[0]["got"], 2);
    drop(app);
    committer.finish().unwrap();

    // A new version replays the log: the recorded responses reach it, no
    // request waits, and it goes on from there.
    let v2 = caller("v2", "http://a.example/");
    let (mut app, _) = open(&state, &v2, OnNewCode::Replay).unwrap();
    assert!(app.waiting_http().unwrap().is_empty());
    assert_eq!(app.idempotency_keys(), keys, "the same history");
    let third = request(&mut app, "three");
    assert_eq!(third.id, 3);
    let answered = answer(&mut app, &ok(&third, "3"));
    assert_eq!(
        answered[0],
        json!({"got": 3, "status": 200, "body": "3", "version": "v2"})
    );
}

/// The tag in the middle of `NAME/TAG/N`.
fn key_tag(keys: &elmbox::durable::IdempotencyKeys) -> String {
    keys.key(0).split('/').nth(1).unwrap().to_string()
}

#[test]
fn a_version_that_makes_other_requests_than_the_log_answers_is_refused() {
    let state = scratch("mismatch");
    let v1 = caller("v1", "http://a.example/");
    let (mut app, committer) = open(&state, &v1, OnNewCode::Refuse).unwrap();
    let first = request(&mut app, "one");
    answer(&mut app, &ok(&first, "1"));
    drop(app);
    committer.finish().unwrap();

    let elsewhere = caller("v2", "http://b.example/");
    match open(&state, &elsewhere, OnNewCode::Replay) {
        Err(Error::DeployRefused { seq, error }) => {
            assert_eq!(seq, 2, "the response's record");
            assert!(
                error.contains("answers `GET http://a.example/one`")
                    && error.contains("is `GET http://b.example/one`"),
                "{error}"
            );
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("deployed over responses to other requests"),
    }
    // The old version serves on, as it was.
    let (mut app, _) = open(&state, &v1, OnNewCode::Refuse).unwrap();
    let next = request(&mut app, "again");
    assert_eq!(answer(&mut app, &ok(&next, "x"))[0]["got"], 2);
    // A fresh start leaves the history behind: its requests count anew.
    drop(app);
    let (mut app, _) = open(&state, &elsewhere, OnNewCode::Fresh).unwrap();
    assert_eq!(request(&mut app, "new").id, 1);
}

#[test]
fn a_response_that_faults_the_app_is_skipped_and_its_request_still_waits() {
    let state = scratch("fault");
    let v1 = caller("v1", "http://a.example/");
    let (mut app, committer) = open(&state, &v1, OnNewCode::Refuse).unwrap();
    let first = request(&mut app, "one");
    let fault = app
        .submit_http_response(&ok(&first, "throw"))
        .unwrap()
        .wait();
    assert!(matches!(&fault, Err(Error::Restored { .. })), "{fault:?}");
    assert_eq!(app.waiting_http().unwrap(), vec![first.clone()]);
    assert_eq!(answer(&mut app, &ok(&first, "fine"))[0]["got"], 1);
    drop(app);
    committer.finish().unwrap();
    // Replayed: the fault is skipped again, the answer after it taken.
    let (mut app, _) = open(&state, &v1, OnNewCode::Refuse).unwrap();
    assert!(app.waiting_http().unwrap().is_empty());
    let second = request(&mut app, "two");
    assert_eq!(answer(&mut app, &ok(&second, "2"))[0]["got"], 2);
}
