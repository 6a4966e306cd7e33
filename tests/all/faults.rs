//! What an app that throws does to Elm's runtime, on the faults example
//! (its fixture follows elm/core's scheduler and effect queue; with
//! `ELMBOX_ELM_OUT`, real `elm make --optimize` output too). A throw after
//! the port took the event, or from a timer, leaves Elm's scheduler or
//! effect queue mid-step: Elm would queue every later event and never answer
//! it. elmbox calls that a fault: the app is failed (a pool restores it),
//! never left answering `[]`. A port's own rejection leaves the app as it was.

use elmbox::{
    AppError, Error, EventFormat, FaultPolicy, FaultSite, Pool, PoolConfig, SandboxLimits,
};
use elmbox_tests::{config, elmbox, json_lines, runtime, sources, stderr, Source};
use serde_json::json;

use crate::support::{build, scratch, three_paths_agree};

fn fault_site(error: &Error) -> Option<FaultSite> {
    match error {
        Error::App {
            error: AppError::Faulted { during, thrown },
            outputs,
        } => {
            assert!(thrown.message.ends_with("hints/11.md"), "{thrown}");
            assert!(outputs.is_empty(), "a fault answers nothing: {outputs:?}");
            Some(*during)
        }
        _ => None,
    }
}

fn load(source: &Source) -> elmbox::App {
    runtime().load(&source.js, config().0).unwrap()
}

#[test]
fn a_value_the_port_rejects_leaves_the_app_as_it_was() {
    for source in sources("faults") {
        let mut app = runtime()
            .load(&source.js, config().0.event_format(EventFormat::Json))
            .unwrap();
        assert_eq!(app.dispatch(r#""a""#).unwrap()[0]["count"], 1);
        let err = app.dispatch(r#"{"x":1}"#).unwrap_err();
        assert!(
            matches!(&err, Error::App { error: AppError::Threw(t), .. }
                if t.message.ends_with("hints/4.md")),
            "{}: {err}",
            source.label
        );
        assert!(!err.is_fatal());
        // update never ran: the count goes on from 1.
        assert_eq!(app.dispatch(r#""b""#).unwrap()[0]["count"], 2);
    }
}

#[test]
fn a_throw_in_update_or_in_the_effects_it_starts_is_a_fault() {
    for event in ["crash-now", "crash-in-task"] {
        for source in sources("faults") {
            let mut app = load(&source);
            app.dispatch("a").unwrap();
            let err = app.dispatch(event).unwrap_err();
            assert_eq!(
                fault_site(&err),
                Some(FaultSite::Event),
                "{} {event}: {err}",
                source.label
            );
            assert!(err.is_fatal());
            assert!(matches!(app.dispatch("b"), Err(Error::Failed { .. })));
        }
    }
}

#[test]
fn a_throw_from_a_timer_is_a_fault_not_a_wedge() {
    for source in sources("faults") {
        let mut app = load(&source);
        // The event itself is answered; the crash comes 100 virtual ms later.
        assert_eq!(
            app.dispatch("crash-later").unwrap(),
            vec![json!({"count": 1, "event": "crash-later"})]
        );
        assert_eq!(
            app.advance_time(50).unwrap(),
            Vec::<serde_json::Value>::new()
        );
        let err = app.advance_time(50).unwrap_err();
        assert_eq!(
            fault_site(&err),
            Some(FaultSite::Timer),
            "{}: {err}",
            source.label
        );
        assert!(matches!(app.dispatch("hello"), Err(Error::Failed { .. })));
    }
}

#[test]
fn two_values_in_one_batch_arrive_as_elm_hands_them_out() {
    for source in sources("faults") {
        let mut app = load(&source);
        assert_eq!(
            app.dispatch("twice").unwrap(),
            vec![
                json!({"count": 1, "event": "twice", "part": 2}),
                json!({"count": 1, "event": "twice", "part": 1}),
            ],
            "{}",
            source.label
        );
    }
}

#[test]
fn run_stops_at_a_fault_and_says_where() {
    for source in sources("faults") {
        let dir = scratch("faults-run");
        let js = dir.join(format!("{}.js", source.label.replace(' ', "-")));
        std::fs::write(&js, &source.js).unwrap();
        let js = js.to_str().unwrap();
        let out = elmbox(
            &["run", js, "--advance-ms", "200"],
            b"hello\ncrash-later\nnever\n",
        );
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert_eq!(
            json_lines(&out),
            vec![
                json!([{"count": 1, "event": "hello"}]),
                json!([{"count": 2, "event": "crash-later"}]),
            ]
        );
        let err = stderr(&out);
        assert!(
            err.contains("event 2: the app faulted in a timer callback"),
            "{err}"
        );
        assert!(err.contains("events after 2 were not handled"), "{err}");
    }
}

#[test]
fn built_modules_meet_faults_as_run_does() {
    let dir = scratch("faults-modules");
    let js = elmbox_tests::fixture("faults");
    let baked = ["--advance-ms", "200"];
    let wasm = build(&js, &dir, "faults", &baked);
    for events in [
        &b"a\ncrash-later\nb\n"[..],
        b"a\ncrash-now\nb\n",
        b"a\ncrash-in-task\nb\n",
        b"twice\ntwice\n",
    ] {
        let out = three_paths_agree(&js, &baked, &wasm, events);
        let crashed = events.windows(5).any(|w| w == b"crash");
        assert_eq!(
            out.status.code(),
            Some(if crashed { 3 } else { 0 }),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_pool_restores_a_faulted_app_and_its_neighbours_never_notice() {
    let pool = Pool::new(PoolConfig {
        max_apps: 4,
        max_memory_per_app: 64 << 20,
        on_fault: FaultPolicy::Restore,
        code_cache: None,
    })
    .unwrap();
    let js = std::fs::read(elmbox_tests::fixture("faults")).unwrap();
    for name in ["crashy", "calm"] {
        pool.load(name, &js, config().0, SandboxLimits::default())
            .unwrap();
    }
    for _ in 0..3 {
        pool.dispatch("crashy", "a").unwrap();
        pool.dispatch("calm", "a").unwrap();
    }
    assert_eq!(
        pool.dispatch("crashy", "crash-later").unwrap()[0]["count"],
        4
    );
    let err = pool.advance_time("crashy", 100).unwrap_err();
    let Error::Restored {
        cause, restores, ..
    } = &err
    else {
        panic!("not restored: {err}");
    };
    assert_eq!(fault_site(cause), Some(FaultSite::Timer), "{cause}");
    assert_eq!(*restores, 1);
    // Restored to the state right after init; answering again.
    assert_eq!(pool.dispatch("crashy", "b").unwrap()[0]["count"], 1);
    assert_eq!(pool.dispatch("calm", "b").unwrap()[0]["count"], 4);
}
