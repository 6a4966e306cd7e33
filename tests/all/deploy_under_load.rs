//! Deploys without downtime in `elmbox serve`: a new version made beside
//! the serving one while a client sends events throughout (issue 25).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elmbox_tests::{elmbox, fixture, stderr};
use serde_json::Value;

use crate::served::{count, read, scratch, steady_client, Served, TOKEN};

/// A deploy by replay under load: the new version is made beside the old
/// one, which answers every event meanwhile; the client sees only 200s,
/// with counts one after another, and a short wait at the switch.
#[test]
fn a_deploy_under_load_answers_every_event_in_order() {
    let state = scratch("deploy-under-load").join("state");
    let counter = fixture("counter");
    let events: Vec<u8> = (1..=150_000)
        .flat_map(|i| format!("e{i}\n").into_bytes())
        .collect();
    let recorded = elmbox(
        &["run", &counter, "--state", state.to_str().unwrap()],
        &events,
    );
    assert!(recorded.status.success(), "{}", stderr(&recorded));
    let server = Served::start(&state);
    let stop = Arc::new(AtomicBool::new(false));
    let client = steady_client(&server, "counter", stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    // Other flags: another version, which counts alike.
    let deployed = {
        let (url, http) = (
            format!(
                "{}/_elmbox/apps/counter?flags=%7B%22start%22%3A0%7D",
                server.url
            ),
            server.http.clone(),
        );
        let source = std::fs::read(&counter).unwrap();
        std::thread::spawn(move || {
            read(
                http.put(&url)
                    .header("Authorization", format!("Bearer {TOKEN}"))
                    .send(&source[..]),
            )
        })
    };
    // Its replay shows, while the old version serves on.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, info) = server.admin_get("apps/counter", Some(TOKEN));
        let info: Value = serde_json::from_str(&info).unwrap_or_default();
        if info["deploy"]["of"]
            .as_u64()
            .is_some_and(|of| of >= 150_000)
        {
            break;
        }
        if deployed.is_finished() || Instant::now() > deadline {
            panic!("no deploy in progress seen: {info}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, text) = deployed.join().unwrap();
    assert_eq!(status, 200, "{text}\n{}", server.log());
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (answers, longest) = client.join().unwrap();
    let counts: Vec<u64> = answers
        .iter()
        .map(|(status, text)| {
            assert_eq!(*status, 200, "{text}\n{}", server.log());
            count(text)
        })
        .collect();
    assert!(
        counts.len() > 50,
        "only {} events during the deploy",
        counts.len()
    );
    assert_eq!(counts[0], 150_001);
    for pair in counts.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "a gap or a repeat in the counts");
    }
    println!(
        "{} events answered during a deploy over 150,000; the longest wait {longest:?}",
        counts.len()
    );
    server.wait_for_log("deployed beside the serving version");
    // The new version is the one recorded.
    let (_, info) = server.admin_get("apps/counter", Some(TOKEN));
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["options"]["flags"], r#"{"start":0}"#, "{info}");
}
