//! 1,000 apps in one pool, each with its own state, driven from four
//! threads at once: the heaviest test (1,000 sandboxes, ~600 MB resident).

use std::sync::Arc;
use std::thread;

use elmbox::{Error, FaultPolicy, Pool, PoolConfig};
use elmbox_tests::{config, fixture};
use serde_json::json;

#[test]
fn a_thousand_apps_in_one_pool_keep_to_themselves() {
    const APPS: usize = 1000;
    let pool = Arc::new(
        Pool::new(PoolConfig {
            max_apps: APPS as u32,
            max_memory_per_app: 64 << 20,
            on_fault: FaultPolicy::Restore,
            code_cache: None,
        })
        .expect("the pool starts"),
    );
    let counter = std::fs::read(fixture("counter")).expect("make fixtures");
    let image = pool.runtime().snapshot(counter, config().0).unwrap();
    let names: Vec<String> = (0..APPS).map(|i| format!("tenant-{i:04}")).collect();
    for name in &names {
        pool.load_image(name, &image).expect("an app loads");
    }
    assert_eq!(pool.len(), APPS);
    assert!(matches!(
        pool.load_image("one-too-many", &image),
        Err(Error::PoolFull { max_apps: 1000 })
    ));

    // App i gets i % 7 + 1 events of its own, from four threads at once.
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (pool, names) = (pool.clone(), names.clone());
            thread::spawn(move || {
                for (i, name) in names.iter().enumerate().skip(t).step_by(4) {
                    for k in 0..i % 7 + 1 {
                        let event = format!("{name}/{k}");
                        let answer = pool.dispatch(name, &event).unwrap();
                        assert_eq!(answer, vec![json!({"count": k + 1, "event": event})]);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("no worker panicked");
    }
    // Every app counted only its own events.
    for (i, name) in names.iter().enumerate() {
        let answer = pool.dispatch(name, "again").unwrap();
        assert_eq!(
            answer[0]["count"].as_i64().unwrap(),
            (i % 7 + 2) as i64,
            "{name}"
        );
    }
    pool.unload("tenant-0007").unwrap();
    pool.load_image("newcomer", &image).unwrap();
    assert_eq!(pool.dispatch("newcomer", "hi").unwrap()[0]["count"], 1);
    assert!(matches!(
        pool.dispatch("tenant-0007", "x"),
        Err(Error::NoSuchApp { .. })
    ));
}
