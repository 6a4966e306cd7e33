//! The HTTP API fuzzed, bounded: arbitrary app names, query strings,
//! headers and bodies through the admin and event routes of a real
//! `elmbox serve`, killed and restarted on the same store
//! (`elmbox_tests::http_api` says what is checked). `make fuzz` runs the
//! same calls unbounded, with the server in the fuzzer's process.
//!
//! The cases are drawn from a fixed seed, so a run is repeatable;
//! `ELMBOX_FUZZ_SEED=N` draws others.

use elmbox_tests::http_api::{self, Bodies, ServeProcess, Tally};
use elmbox_tests::{elm_like, fixture, unruly_app};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::support::scratch;

/// Cases per run, and calls per case: bounded so that the run takes
/// well under a minute here.
const CASES: u32 = 64;
const CALLS: usize = 20;

fn bodies() -> Bodies {
    Bodies {
        good: std::fs::read(fixture("counter")).expect("the counter fixture"),
        others: vec![
            unruly_app().into_bytes(),
            elm_like("function init() { throw new Error('no'); }").into_bytes(),
            b"\0asm\x01\0\0\0".to_vec(),
            std::fs::read(fixture("timers")).expect("the timers fixture"),
        ],
    }
}

#[test]
fn the_http_api_holds_under_arbitrary_calls_and_restarts() {
    let seed: u64 = std::env::var("ELMBOX_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: CASES,
        // Each shrinking step starts servers: a few dozen at most.
        max_shrink_iters: 48,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let bodies = bodies();
    let state = scratch("http-api-fuzz");
    let case = std::sync::atomic::AtomicUsize::new(0);
    let tally = std::sync::Mutex::new(Tally::default());
    let result = runner.run(
        &vec(any::<u8>(), 64..1024).prop_map(Input),
        |Input(data)| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let calls = http_api::calls(&data, &bodies, CALLS);
            let dir = state.join(n.to_string());
            let _ = std::fs::remove_dir_all(&dir);
            let mut server = ServeProcess::default();
            let checked = http_api::check(&mut server, &dir, &calls);
            let _ = std::fs::remove_dir_all(&dir);
            match checked {
                Ok(counted) => tally.lock().unwrap().add(&counted),
                Err(e) => prop_assert!(false, "{e}\nserver log:\n{}", server.log()),
            }
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
    // A run that never got an app deployed and answering tried nothing.
    let tally = tally.into_inner().unwrap();
    eprintln!("seed {seed}: {tally:?}");
    assert!(tally.count("deploy", 201) >= 30, "{tally:?}");
    assert!(tally.count("deploy", 400) >= 30, "{tally:?}");
    assert!(tally.count("event", 200) >= 3, "{tally:?}");
    assert!(tally.count("remove", 204) >= 3, "{tally:?}");
    assert!(tally.restarts >= 20 && tally.probed >= 30, "{tally:?}");
}

/// The fuzzer's bytes, shown as hex when a case fails: `calls` reads them
/// back the same way.
#[derive(Clone)]
struct Input(Vec<u8>);

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
