//! Many apps in one process (`elmbox::Pool`): apps running on several
//! threads at once, one event at a time per app, and every fault contained,
//! with the faulted app restored or failed as the pool's policy says, while
//! its neighbours keep their state. (1,000 apps at once: `pool_thousand.rs`.)

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use elmbox::durable::commit::Committer;
use elmbox::durable::sqlite::SqliteStore;
use elmbox::durable::store::StateStore;
use elmbox::{
    AppImage, Console, DurableOptions, Error, FaultPolicy, Pool, PoolConfig, SandboxLimits,
};
use elmbox_tests::{config, elm_like, fixture, unruly_app};
use serde_json::Value;

fn counter_js() -> Vec<u8> {
    std::fs::read(fixture("counter")).expect("make fixtures")
}

fn pool(max_apps: u32, on_fault: FaultPolicy) -> Pool {
    Pool::new(PoolConfig {
        max_apps,
        max_memory_per_app: 64 << 20,
        on_fault,
        code_cache: None,
    })
    .expect("the pool starts")
}

fn counter_image(pool: &Pool) -> AppImage {
    pool.runtime()
        .snapshot(counter_js(), config().0)
        .expect("the counter builds")
}

fn count(answer: &[Value]) -> i64 {
    answer[0]["count"].as_i64().expect("a count")
}

/// Waits until `parties` threads have arrived, or gives up after a minute.
#[derive(Default)]
struct Rendezvous {
    arrived: Mutex<u32>,
    all_here: Condvar,
}

impl Rendezvous {
    fn meet(&self, parties: u32) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, wait) = self
            .all_here
            .wait_timeout_while(arrived, Duration::from_secs(60), |n| *n < parties)
            .unwrap();
        drop(arrived);
        !wait.timed_out()
    }
}

#[test]
fn different_apps_run_on_different_threads_at_once() {
    // Each app logs while handling its event; the console sink runs inside
    // that dispatch and waits there for the other app's. Both can be there
    // together only if the pool runs them at the same time.
    let pool = Arc::new(pool(4, FaultPolicy::Restore));
    let rendezvous = Arc::new(Rendezvous::default());
    let met = Arc::new(Mutex::new(Vec::new()));
    let console = {
        let (rendezvous, met) = (rendezvous.clone(), met.clone());
        Console::new(move |_, _| {
            // Meet first, then record: holding `met` while waiting would
            // keep the other app's sink from arriving.
            let together = rendezvous.meet(2);
            met.lock().unwrap().push(together);
        })
    };
    let logging_app = elm_like(
        "var subs = [];
         function init() { return { ports: {
           onEvent: { send: function (v) { console.log('handling', v); subs.forEach(function (s) { s(v); }); } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    );
    let image = pool
        .runtime()
        .snapshot(logging_app, config().0.console(console))
        .unwrap();
    pool.load_image("left", &image).unwrap();
    pool.load_image("right", &image).unwrap();
    let handles: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|name| {
            let pool = pool.clone();
            thread::spawn(move || pool.dispatch(name, name).unwrap())
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(
        *met.lock().unwrap(),
        [true, true],
        "the two dispatches never overlapped"
    );
}

#[test]
fn one_app_takes_one_event_at_a_time_in_order() {
    let pool = Arc::new(pool(2, FaultPolicy::Restore));
    pool.load_image("shared", &counter_image(&pool)).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                (0..250)
                    .map(|k| count(&pool.dispatch("shared", format!("{t}/{k}")).unwrap()))
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        let counts = worker.join().unwrap();
        assert!(
            counts.windows(2).all(|w| w[0] < w[1]),
            "one caller's events were handled out of order"
        );
        all.extend(counts);
    }
    all.sort();
    assert_eq!(
        all,
        (1..=1000).collect::<Vec<i64>>(),
        "events lost or merged"
    );
}

/// A pool with one unruly app under tight limits and two counter neighbours
/// that have seen a few events.
fn unruly_pool(on_fault: FaultPolicy) -> Pool {
    let pool = pool(8, on_fault);
    // The deadline is far above what a memory bomb up to the cap or a storm
    // up to the timer limit takes on a busy machine, so each fault meets
    // the limit it is meant to.
    let limits = SandboxLimits {
        deadline: Some(Duration::from_millis(1000)),
        max_memory_bytes: Some(32 << 20),
        ..SandboxLimits::default()
    };
    let config = config().0.same_instant_timer_limit(1_000);
    pool.load("unruly", unruly_app(), config, limits).unwrap();
    let image = counter_image(&pool);
    for neighbour in ["north", "south"] {
        pool.load_image(neighbour, &image).unwrap();
        for _ in 0..3 {
            pool.dispatch(neighbour, "warm").unwrap();
        }
    }
    pool
}

fn neighbours_kept_their_state(pool: &Pool, seen: i64) {
    for neighbour in ["north", "south"] {
        assert_eq!(
            count(&pool.dispatch(neighbour, "still there?").unwrap()),
            seen + 1
        );
    }
}

#[test]
fn each_fault_restores_the_app_from_its_snapshot_and_spares_its_neighbours() {
    // QuickJS-ng cannot see its stack on WASI: runaway recursion runs into
    // the sandbox's own stack and traps.
    let pool = unruly_pool(FaultPolicy::Restore);
    for (restore, (event, limit)) in [
        ("spin", "CPU deadline of 1000 ms"),
        ("recurse", "stack overflow"),
        ("storm", "runaway timers"),
    ]
    .into_iter()
    .enumerate()
    {
        // State to lose: two more events (after the previous restore's one).
        pool.dispatch("unruly", "one").unwrap();
        let expected = if restore == 0 { 2 } else { 3 };
        assert_eq!(count(&pool.dispatch("unruly", "two").unwrap()), expected);
        let started = Instant::now();
        let err = pool.dispatch("unruly", event).expect_err(event);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{event} took {:?}",
            started.elapsed()
        );
        let Error::Restored {
            cause, restores, ..
        } = &err
        else {
            panic!("{event}: not restored: {err}");
        };
        assert_eq!(*restores, restore as u64 + 1);
        assert!(cause.is_fatal(), "{event}: {cause}");
        assert!(err.to_string().contains(limit), "{event}: {err}");
        assert!(
            err.to_string().contains("restored from its snapshot"),
            "{err}"
        );
        assert_eq!(pool.restores("unruly").unwrap(), restore as u64 + 1);
        // The app answers again, from the state right after init.
        assert_eq!(
            count(&pool.dispatch("unruly", "after").unwrap()),
            1,
            "{event}"
        );
        // Each check is one more event to the neighbours: 3 at the first.
        neighbours_kept_their_state(&pool, 3 + restore as i64);
    }
}

#[test]
fn a_memory_bomb_meets_the_linear_memory_cap() {
    let pool = unruly_pool(FaultPolicy::Restore);
    for _ in 0..3 {
        pool.dispatch("unruly", "state").unwrap();
    }
    let err = pool.dispatch("unruly", "hoard").expect_err("memory bomb");
    let cap = |e: &Error| matches!(e, Error::MemoryCapReached { limit, .. } if *limit == 32 << 20);
    match &err {
        Error::Restored { cause, .. } => assert!(cap(cause), "{err}"),
        other => assert!(cap(other), "{err}"),
    }
    assert!(
        err.to_string()
            .contains("linear memory cap of 33554432 bytes"),
        "{err}"
    );
    let after = count(&pool.dispatch("unruly", "after").unwrap());
    // Restored from the snapshot, or (if QuickJS unwound cleanly) as it was.
    match err {
        Error::Restored { .. } => assert_eq!(after, 1),
        _ => assert_eq!(after, 5),
    }
    neighbours_kept_their_state(&pool, 3);
}

#[test]
fn the_fail_policy_keeps_a_faulted_app_failed_until_unloaded() {
    let pool = unruly_pool(FaultPolicy::Fail);
    let err = pool.dispatch("unruly", "spin").expect_err("spin");
    assert!(
        matches!(err, Error::DeadlineExceeded { limit_ms: 1000 }),
        "{err}"
    );
    let err = pool.dispatch("unruly", "ok").expect_err("failed for good");
    assert!(matches!(err, Error::Failed { .. }), "{err}");
    assert!(err.to_string().contains("CPU deadline"), "{err}");
    assert_eq!(pool.restores("unruly").unwrap(), 0);
    neighbours_kept_their_state(&pool, 3);

    pool.unload("unruly").unwrap();
    pool.load("unruly", unruly_app(), config().0, SandboxLimits::default())
        .unwrap();
    assert_eq!(count(&pool.dispatch("unruly", "fresh").unwrap()), 1);
}

#[test]
fn pool_errors_name_the_app() {
    let pool = pool(2, FaultPolicy::Restore);
    let image = counter_image(&pool);
    pool.load_image("a", &image).unwrap();
    let err = pool.load_image("a", &image).unwrap_err();
    assert_eq!(err.to_string(), "an app named `a` is already in the pool");
    let err = pool.dispatch("b", "x").unwrap_err();
    assert_eq!(err.to_string(), "no app named `b` in the pool");
    assert!(matches!(pool.unload("b"), Err(Error::NoSuchApp { .. })));

    // An image compiled by another engine cannot run in this pool.
    let elsewhere = elmbox_tests::runtime()
        .snapshot(counter_js(), config().0)
        .unwrap();
    let err = pool.load_image("c", &elsewhere).unwrap_err();
    assert!(err.to_string().contains("made by another runtime"), "{err}");
    assert_eq!(pool.names(), ["a"]);
}

#[test]
fn durable_apps_in_a_pool_keep_their_state_through_faults_and_restarts() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pool-durable");
    let _ = std::fs::remove_dir_all(&dir);
    let limits = SandboxLimits {
        deadline: Some(Duration::from_millis(1000)),
        max_memory_bytes: Some(32 << 20),
        ..SandboxLimits::default()
    };
    // Two durable apps sharing one store (and so their commits), next to
    // an app started from an image; the process "restarts" twice.
    let open = |round: u32| {
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&dir).unwrap());
        let committer = Arc::new(Committer::start(store.clone(), None));
        let pool = pool(4, FaultPolicy::Restore);
        for (name, js) in [
            ("unruly", unruly_app().into_bytes()),
            ("counter", counter_js()),
        ] {
            let opened = pool
                .load_durable(
                    name,
                    js,
                    config().0,
                    limits.clone(),
                    store.clone(),
                    committer.clone(),
                    DurableOptions::default(),
                )
                .unwrap();
            assert_eq!(opened.created, round == 0, "{name}, round {round}");
        }
        pool.load_image("plain", &counter_image(&pool)).unwrap();
        (pool, committer)
    };

    let (pool, committer) = open(0);
    assert_eq!(count(&pool.dispatch("unruly", "one").unwrap()), 1);
    assert_eq!(count(&pool.dispatch("unruly", "two").unwrap()), 2);
    let err = pool.dispatch("unruly", "recurse").expect_err("a fault");
    let Error::Restored {
        cause,
        restores,
        before,
    } = &err
    else {
        panic!("not restored: {err}");
    };
    assert!(cause.is_fatal(), "{cause}");
    assert_eq!((*restores, *before), (1, Some(3)));
    assert!(err.to_string().contains("state before event 3"), "{err}");
    assert_eq!(pool.restores("unruly").unwrap(), 1);
    // The state before the faulty event, not the state after init.
    assert_eq!(count(&pool.dispatch("unruly", "three").unwrap()), 3);
    for i in 1..=5 {
        assert_eq!(count(&pool.dispatch("counter", "c").unwrap()), i);
    }
    // Every input of a durable app goes through its log.
    let err = pool.with_app("counter", |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("`counter` is durable"), "{err}");
    assert!(matches!(
        pool.load_durable(
            "counter",
            counter_js(),
            config().0,
            SandboxLimits::default(),
            Arc::new(SqliteStore::open(dir.join("elsewhere")).unwrap()),
            committer.clone(),
            DurableOptions::default(),
        ),
        Err(Error::AppExists { .. })
    ));
    pool.unload("counter").unwrap();
    // Gone as by kill -9 for `unruly` (no last snapshot), cleanly for
    // `counter`; the image app's state goes with the process.
    drop(pool);
    committer.finish().unwrap();
    drop(committer);

    let (pool, committer) = open(1);
    assert_eq!(count(&pool.dispatch("unruly", "four").unwrap()), 4);
    assert_eq!(count(&pool.dispatch("counter", "c").unwrap()), 6);
    assert_eq!(count(&pool.dispatch("plain", "c").unwrap()), 1);
    assert_eq!(pool.restores("unruly").unwrap(), 0);
    drop(pool);
    drop(committer);
    let (pool, _committer) = open(2);
    assert_eq!(count(&pool.dispatch("unruly", "five").unwrap()), 5);
}
