//! The guest's `XMLHttpRequest`, `Blob` and `FormData`, through the
//! library and no network: what a call hands the host to send (method,
//! URL, headers, body bytes), and what the app sees when the host answers
//! (events in order, status, headers as a browser shows them, the body in
//! each `responseType`). elm/http 2.0.0's kernel uses nothing else.

use elmbox::http::{HttpAction, HttpOutcome, HttpRequest, HttpResponse};
use elmbox::{App, AppError, Error, EventFormat, FaultSite};
use elmbox_tests::{config, elm_like, runtime};
use serde_json::{json, Value};

/// An app that makes a request per `{"op": "send", ...}` event, logs every
/// event its request fires, and reports all of it at `loadend`.
fn xhr_app() -> String {
    elm_like(
        r#"var subs = [], xhrs = {};
         function emit(v) { subs.forEach(function (s) { s(v); }); }
         function body(spec) {
           if (spec.text !== undefined) { return spec.text; }
           if (spec.bytes) { return new DataView(new Uint8Array(spec.bytes).buffer, 1); }
           if (spec.blob) { return new Blob(spec.blob, { type: spec.blobType }); }
           if (spec.form) {
             var form = new FormData();
             spec.form.forEach(function (e) {
               if (e.file !== undefined) { form.append(e.name, new Blob([e.file], { type: e.type }), e.filename); }
               else { form.append(e.name, e.value); }
             });
             return form;
           }
           return undefined;
         }
         function describe(x) {
           var r = x.response;
           if (r instanceof ArrayBuffer) { return { arraybuffer: Array.from(new Uint8Array(r)) }; }
           if (r instanceof Blob) { return { blob: r.size, type: r.type }; }
           return r;
         }
         function send(spec) {
           var x = new XMLHttpRequest(), log = [];
           xhrs[spec.name] = x;
           ['loadstart', 'progress', 'load', 'error', 'timeout', 'abort', 'loadend'].forEach(function (t) {
             x.addEventListener(t, function (e) {
               log.push(t === 'progress' ? t + ' ' + e.loaded + '/' + e.total + (e.lengthComputable ? '' : '?') : t);
               if (t === 'load' && spec.throwOnLoad) { throw new Error('boom on load'); }
               if (t === 'loadend') {
                 emit({ name: spec.name, log: log, status: x.status, statusText: x.statusText,
                        url: x.responseURL, headers: x.getAllResponseHeaders(),
                        type: x.getResponseHeader('Content-Type'), response: describe(x) });
               }
             });
           });
           x.upload.addEventListener('progress', function (e) { log.push('upload ' + e.loaded + '/' + e.total); });
           try { x.open(spec.method, spec.url, true); }
           catch (e) { emit({ name: spec.name, opened: e.name + ': ' + e.message }); return; }
           (spec.headers || []).forEach(function (h) { x.setRequestHeader(h[0], h[1]); });
           x.timeout = spec.timeout || 0;
           x.responseType = spec.responseType || '';
           x.withCredentials = false;
           x.send(body(spec));
         }
         function init() { return { ports: {
           onEvent: { send: function (v) {
             if (v.op === 'send') { send(v); }
             else if (v.op === 'abort') { xhrs[v.name].abort(); emit({ aborted: v.name, state: xhrs[v.name].readyState }); }
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }"#,
    )
}

fn load() -> App {
    let (config, _) = config();
    runtime()
        .load(xhr_app(), config.event_format(EventFormat::Json))
        .expect("the app loads")
}

/// Sends `spec` as a `send` event; returns the one request it started.
fn send(app: &mut App, spec: Value) -> HttpRequest {
    let mut event = spec;
    event["op"] = json!("send");
    let outputs = app.dispatch(event.to_string()).expect("the event is taken");
    assert_eq!(
        outputs,
        Vec::<Value>::new(),
        "nothing answered before the response"
    );
    match app.take_http_actions().as_slice() {
        [HttpAction::Send(request)] => request.clone(),
        other => panic!("one request, not {other:?}"),
    }
}

fn response(
    request: &HttpRequest,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    HttpResponse {
        id: request.id,
        request: request.describe(),
        outcome: HttpOutcome::Response {
            status,
            status_text: "Teapot Reason".into(),
            url: format!("{}?final", request.url),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        },
    }
}

#[test]
fn a_text_request_leaves_as_sent_and_its_answer_arrives_as_a_browser_shows_it() {
    let mut app = load();
    let request = send(
        &mut app,
        json!({"name": "a", "method": "post", "url": "http://127.0.0.1:9/echo?x=1",
               "headers": [["X-One", "1"], ["x-one", "2"], ["Accept", "text/plain"], ["Host", "evil"]],
               "text": "héllo", "timeout": 1500}),
    );
    assert_eq!(request.id, 1);
    assert_eq!(
        request.method, "POST",
        "the standard's methods are upper-cased"
    );
    assert_eq!(request.url, "http://127.0.0.1:9/echo?x=1");
    assert_eq!(
        request.headers,
        [
            ("X-One".to_string(), "1, 2".to_string()),
            ("Accept".into(), "text/plain".into()),
            ("Content-Type".into(), "text/plain;charset=UTF-8".into()),
        ],
        "a name set twice is combined, Host is the host's, a text body gets its type"
    );
    assert_eq!(request.timeout_ms, 1500);
    assert_eq!(request.body, "héllo".as_bytes());

    let answer = response(
        &request,
        418,
        &[
            ("Content-Type", "text/plain"),
            ("X-Multi", "b"),
            ("Set-Cookie", "secret=1"),
            ("Content-Length", "6"),
            ("x-multi", "a"),
        ],
        "réponse".as_bytes(),
    );
    let outputs = app.deliver_http(&answer).unwrap();
    assert_eq!(
        outputs,
        vec![json!({
            "name": "a",
            "log": ["loadstart", "upload 6/6", "progress 8/6", "load", "loadend"],
            "status": 418,
            "statusText": "Teapot Reason",
            "url": "http://127.0.0.1:9/echo?x=1?final",
            "headers": "content-length: 6\r\ncontent-type: text/plain\r\nx-multi: b, a\r\n",
            "type": "text/plain",
            "response": "réponse",
        })]
    );
    // Answered: a second answer to it changes nothing.
    assert_eq!(app.deliver_http(&answer).unwrap(), Vec::<Value>::new());
    assert!(app.waiting_http().unwrap().is_empty());
}

#[test]
fn bodies_of_every_kind_leave_as_their_bytes() {
    let mut app = load();
    let bytes = send(
        &mut app,
        json!({"name": "b", "method": "PUT", "url": "https://example.com/", "bytes": [0, 1, 255, 7]}),
    );
    assert_eq!(
        bytes.body,
        [1, 255, 7],
        "a DataView's own bytes, from its offset"
    );
    assert!(bytes.headers.is_empty(), "bytes carry no type");

    let blob = send(
        &mut app,
        json!({"name": "c", "method": "POST", "url": "https://example.com/",
               "blob": ["ab", "ç"], "blobType": "Application/X-Thing"}),
    );
    assert_eq!(blob.body, "abç".as_bytes());
    assert_eq!(
        blob.headers,
        [(
            "Content-Type".to_string(),
            "application/x-thing".to_string()
        )]
    );

    let form = send(
        &mut app,
        json!({"name": "d", "method": "POST", "url": "https://example.com/form",
               "form": [{"name": "title", "value": "Tom\n\"quoted\""},
                        {"name": "photo", "file": "PNG", "type": "image/png", "filename": "tom.png"},
                        {"name": "raw", "file": "x", "type": ""}]}),
    );
    let boundary = "----elmboxFormBoundary0";
    assert_eq!(
        form.headers,
        [(
            "Content-Type".to_string(),
            format!("multipart/form-data; boundary={boundary}")
        )]
    );
    assert_eq!(
        String::from_utf8(form.body).unwrap(),
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nTom\r\n\"quoted\"\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"tom.png\"\r\n\
             Content-Type: image/png\r\n\r\nPNG\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"raw\"; filename=\"blob\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nx\r\n--{boundary}--\r\n"
        )
    );
    let get = send(
        &mut app,
        json!({"name": "e", "method": "GET", "url": "http://example.com/", "text": "dropped"}),
    );
    assert!(get.body.is_empty(), "a GET sends no body");
    assert_eq!(
        [bytes.id, blob.id, form.id, get.id],
        [1, 2, 3, 4],
        "ids count the app's requests"
    );
}

#[test]
fn answers_arrive_in_the_response_type_the_app_asked_for() {
    let mut app = load();
    for (name, kind, expected) in [
        ("ab", "arraybuffer", json!({"arraybuffer": [104, 105, 0]})),
        ("bl", "blob", json!({"blob": 3, "type": "application/x-a"})),
        ("js", "json", Value::Null),
        ("tx", "text", json!("hi\u{0}")),
    ] {
        let request = send(
            &mut app,
            json!({"name": name, "method": "GET", "url": "http://h/", "responseType": kind}),
        );
        let answer = response(
            &request,
            200,
            &[("content-type", "application/x-a")],
            b"hi\0",
        );
        let outputs = app.deliver_http(&answer).unwrap();
        assert_eq!(outputs[0]["response"], expected, "{kind}");
        assert_eq!(
            outputs[0]["log"],
            json!(["loadstart", "progress 3/0?", "load", "loadend"]),
            "no length given: not computable ({kind})"
        );
    }
    let request = send(
        &mut app,
        json!({"name": "j", "method": "GET", "url": "http://h/", "responseType": "json"}),
    );
    let outputs = app
        .deliver_http(&response(&request, 200, &[], br#"{"a":[1]}"#))
        .unwrap();
    assert_eq!(outputs[0]["response"], json!({"a": [1]}));
}

#[test]
fn failures_fire_their_own_events_and_aborted_requests_hear_nothing() {
    let mut app = load();
    let failing = send(
        &mut app,
        json!({"name": "f", "method": "GET", "url": "http://h/"}),
    );
    let outputs = app
        .deliver_http(&HttpResponse::network_error(&failing, "refused"))
        .unwrap();
    assert_eq!(outputs[0]["log"], json!(["loadstart", "error", "loadend"]));
    assert_eq!(outputs[0]["status"], 0);

    let slow = send(
        &mut app,
        json!({"name": "s", "method": "GET", "url": "http://h/"}),
    );
    let outputs = app.deliver_http(&HttpResponse::timeout(&slow)).unwrap();
    assert_eq!(
        outputs[0]["log"],
        json!(["loadstart", "timeout", "loadend"])
    );

    let aborted = send(
        &mut app,
        json!({"name": "g", "method": "GET", "url": "http://h/"}),
    );
    let outputs = app
        .dispatch(json!({"op": "abort", "name": "g"}).to_string())
        .unwrap();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert_eq!(
        outputs[0]["log"],
        json!(["loadstart", "abort", "loadend"]),
        "as the standard says"
    );
    assert_eq!(outputs[1], json!({"aborted": "g", "state": 0}));
    assert_eq!(
        app.take_http_actions(),
        vec![HttpAction::Abort { id: aborted.id }],
        "the host is told"
    );
    let late = response(&aborted, 200, &[], b"late");
    assert_eq!(app.deliver_http(&late).unwrap(), Vec::<Value>::new());
    assert!(app.waiting_http().unwrap().is_empty());

    let opened = app
        .dispatch(
            json!({"op": "send", "name": "r", "method": "GET", "url": "/relative"}).to_string(),
        )
        .unwrap();
    assert_eq!(
        opened,
        vec![
            json!({"name": "r", "opened": "SyntaxError: Failed to execute 'open' on 'XMLHttpRequest': Invalid URL"})
        ],
        "elm/http makes this its BadUrl"
    );
    assert!(app.take_http_actions().is_empty());
}

#[test]
fn an_answer_for_another_request_is_refused_and_changes_nothing() {
    let mut app = load();
    let request = send(
        &mut app,
        json!({"name": "m", "method": "GET", "url": "http://h/a"}),
    );
    let mut other = response(&request, 200, &[], b"x");
    other.request = "GET http://h/b".into();
    let refused = app.deliver_http(&other).unwrap_err();
    assert!(
        matches!(
            &refused,
            Error::App { error: AppError::HttpResponseMismatch { id: 1, waiting, answers }, .. }
                if waiting == "GET http://h/a" && answers == "GET http://h/b"
        ),
        "{refused}"
    );
    assert_eq!(app.waiting_http().unwrap(), vec![request.clone()]);
    let outputs = app
        .deliver_http(&response(&request, 200, &[], b"x"))
        .unwrap();
    assert_eq!(outputs[0]["response"], "x");
}

#[test]
fn a_throw_while_taking_an_answer_is_a_fault() {
    let mut app = load();
    let request = send(
        &mut app,
        json!({"name": "t", "method": "GET", "url": "http://h/", "throwOnLoad": true}),
    );
    let fault = app
        .deliver_http(&response(&request, 200, &[], b""))
        .unwrap_err();
    assert!(
        matches!(
            &fault,
            Error::App { error: AppError::Faulted { during: FaultSite::HttpResponse, thrown }, .. }
                if thrown.message.contains("boom on load")
        ),
        "{fault}"
    );
}

#[test]
fn waiting_requests_outlive_a_snapshot_with_their_bodies() {
    let mut app = load();
    let first = send(
        &mut app,
        json!({"name": "1", "method": "POST", "url": "http://h/1", "bytes": [9, 8, 7]}),
    );
    let second = send(
        &mut app,
        json!({"name": "2", "method": "GET", "url": "http://h/2"}),
    );
    let answered = send(
        &mut app,
        json!({"name": "3", "method": "GET", "url": "http://h/3"}),
    );
    app.deliver_http(&response(&answered, 204, &[], b""))
        .unwrap();
    let state = app.state().unwrap();
    let mut restored = runtime().restore(&state, config().0).unwrap();
    assert_eq!(
        restored.waiting_http().unwrap(),
        vec![first.clone(), second.clone()]
    );
    // The restored app takes their answers, and numbers the next one on.
    let outputs = restored
        .deliver_http(&response(&second, 200, &[], b"two"))
        .unwrap();
    assert_eq!(outputs[0]["name"], "2");
    let next = send(
        &mut restored,
        json!({"name": "4", "method": "GET", "url": "http://h/4"}),
    );
    assert_eq!(next.id, 4);
}
