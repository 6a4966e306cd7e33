//! Making runtimes: from a guest given at run time, with sandbox limits
//! checked where the runtime is made, and images that report the settings
//! their snapshot holds.

use std::time::Duration;

use elmbox::{AppConfig, Error, EventFormat, Runtime, SandboxLimits};
use elmbox_tests::{config, fixture, runtime};
use serde_json::json;

fn counter_js() -> Vec<u8> {
    std::fs::read(fixture("counter")).expect("make fixtures")
}

#[test]
fn a_runtime_takes_its_guest_at_run_time() {
    let from_bytes = Runtime::from_guest(elmbox::GUEST_WASM.to_vec()).unwrap();
    let mut app = from_bytes.load(counter_js(), config().0).unwrap();
    assert_eq!(app.dispatch("hi").unwrap()[0]["count"], json!(1));

    let err = Runtime::from_guest(b"not a guest".to_vec())
        .err()
        .expect("refused");
    assert!(
        matches!(&err, Error::BadModule { reason } if reason.contains("does not compile")),
        "{err}"
    );
}

#[test]
fn limits_an_engine_cannot_keep_are_refused_where_the_runtime_is_made() {
    let deadline = SandboxLimits {
        deadline: Some(Duration::from_millis(10)),
        ..SandboxLimits::default()
    };
    let tiny_cap = SandboxLimits {
        max_memory_bytes: Some(1 << 20),
        ..SandboxLimits::default()
    };
    for limits in [deadline.clone(), tiny_cap.clone()] {
        assert!(matches!(
            runtime().with_limits(limits),
            Err(Error::Config(_))
        ));
    }
    let err = Runtime::builder()
        .limits(tiny_cap)
        .build()
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("below the guest's initial"),
        "{err}"
    );
    // A deadline given to the builder turns deadlines on.
    let with_deadline = Runtime::builder().limits(deadline).build().unwrap();
    assert!(with_deadline.has_deadlines() && !runtime().has_deadlines());
    assert_eq!(
        with_deadline.limits().deadline,
        Some(Duration::from_millis(10))
    );
}

#[test]
fn an_image_reports_the_settings_its_snapshot_holds() {
    let config = AppConfig::default()
        .name("counter.js")
        .flags(json!({"start": 10}))
        .event_format(EventFormat::Json)
        .js_memory_limit(16 << 20)
        .same_instant_timer_limit(500)
        .epoch_ms(1_700_000_000_000.0);
    let wasm = runtime()
        .build(counter_js(), config, &Default::default())
        .unwrap();
    // Read back by a runtime that never saw the config.
    let image = Runtime::new().unwrap().image(&wasm).unwrap();
    let settings = image.settings();
    assert_eq!(settings.name, "counter.js");
    assert_eq!(settings.flags.as_deref(), Some(r#"{"start":10}"#));
    assert_eq!(settings.event_format, EventFormat::Json);
    assert_eq!(settings.js_memory_limit, Some(16 << 20));
    assert_eq!(settings.same_instant_timer_limit, 500);
    assert!(settings.fixed_epoch);
    assert_eq!(settings.epoch_ms, 1_700_000_000_000.0);
    let mut app = image.instantiate().unwrap();
    assert_eq!(app.dispatch(r#"{"id":1}"#).unwrap()[0]["count"], json!(11));
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("elmbox-code-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn cached_guests(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn the_code_cache_keeps_the_compiled_guest_and_survives_damage() {
    let dir = scratch("keeps");
    let start = || {
        let started = std::time::Instant::now();
        let runtime = Runtime::builder().code_cache(&dir).build().unwrap();
        let mut app = runtime.load(counter_js(), config().0).unwrap();
        assert_eq!(app.dispatch("hi").unwrap()[0]["count"], json!(1));
        started.elapsed()
    };
    let compiled = start();
    let files = cached_guests(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("guest-{}", runtime().guest_id())),
        "{name}"
    );
    let bytes = std::fs::read(&files[0]).unwrap();

    // Taken from the cache: no compile, the same file.
    let cached = start();
    assert!(
        cached < compiled / 2,
        "from the cache {cached:?}, compiled {compiled:?}"
    );
    assert_eq!(cached_guests(&dir), files);
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);

    // A damaged file is compiled again and replaced.
    std::fs::write(&files[0], b"\x7fELF not a compiled guest").unwrap();
    start();
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);

    // Deadlines are kept inside the sandbox: the same compiled guest.
    Runtime::builder()
        .code_cache(&dir)
        .deadlines(true)
        .build()
        .unwrap();
    assert_eq!(cached_guests(&dir), files);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_code_cache_that_cannot_be_written_only_costs_time() {
    let dir = scratch("unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    let not_a_dir = dir.join("a-file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let runtime = Runtime::builder()
        .code_cache(not_a_dir.join("cache"))
        .build()
        .unwrap();
    let mut app = runtime.load(counter_js(), config().0).unwrap();
    assert_eq!(app.dispatch("hi").unwrap()[0]["count"], json!(1));
    assert_eq!(cached_guests(&dir), vec![not_a_dir]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_built_module_loads_into_the_compiled_guest_as_its_javascript_would() {
    let runtime = runtime();
    let js = counter_js();
    let wasm = runtime
        .build(&js, config().0, &elmbox::BuildOptions::default())
        .unwrap();
    let mut from_js = runtime.load(&js, config().0).unwrap();
    let mut from_module = runtime.load_module(&wasm, config().0).unwrap();
    assert_eq!(from_module.startup_outputs(), from_js.startup_outputs());
    for event in ["a", "b", "c"] {
        assert_eq!(
            from_module.dispatch(event).unwrap(),
            from_js.dispatch(event).unwrap()
        );
    }
    let err = runtime
        .load_module(elmbox::GUEST_WASM, config().0)
        .err()
        .expect("the bare guest holds no app");
    assert!(err.to_string().contains("bare guest"), "{err}");
    let err = runtime
        .load_module(b"\0asm\x01\0\0\0", config().0)
        .err()
        .expect("an empty module holds no app");
    assert!(matches!(err, Error::BadModule { .. }), "{err}");
}

#[test]
fn the_code_cache_keeps_only_the_newest_few_guests() {
    let dir = scratch("prunes");
    std::fs::create_dir_all(&dir).unwrap();
    // Compiled guests of twelve older builds, and a file that is not one.
    for n in 0..12 {
        std::fs::write(dir.join(format!("guest-old{n:02}-0.cwasm")), b"old").unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    Runtime::builder().code_cache(&dir).build().unwrap();
    let names: Vec<String> = cached_guests(&dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let guest = format!("guest-{}", runtime().guest_id());
    assert!(names.iter().any(|n| n.starts_with(&guest)), "{names:?}");
    assert!(names.contains(&"notes.txt".to_string()), "{names:?}");
    // The new one and the seven newest old ones.
    let old: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("guest-old"))
        .collect();
    assert_eq!(old.len(), 7, "{names:?}");
    assert!(old.iter().all(|n| n.as_str() >= "guest-old05"), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
