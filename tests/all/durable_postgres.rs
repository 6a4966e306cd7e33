//! What only the PostgreSQL store has (the tests of both stores are in
//! `durable.rs`): a schema elmbox creates and migrates itself, refused when
//! newer than this build; errors that name the database without its
//! password; one process per app on a database many share.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use elmbox::durable::store::{Acquired, Write};
use elmbox::durable::StateLocation;
use elmbox::Error;
use elmbox_tests::{elmbox, fixture, json_lines, stderr};
use serde_json::json;

use crate::support::{PgServer, PG_PASSWORD};

/// The versions `elmbox_schema` holds, and the `elmbox_` tables.
fn schema(server: &PgServer, db: &str) -> (Vec<i32>, Vec<String>) {
    let mut client = server.client(db);
    let versions = client
        .query("SELECT version FROM elmbox_schema ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let tables = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE tablename LIKE 'elmbox\\_%'
              ORDER BY tablename",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    (versions, tables)
}

#[test]
fn the_schema_is_made_once_on_an_empty_database_by_nodes_starting_together() {
    let server = PgServer::start();
    let url = server.database("fresh");
    // Read-only, an empty database is refused, and left empty.
    let shown = elmbox(&["state", &url], b"");
    assert_eq!(shown.status.code(), Some(2), "{}", stderr(&shown));
    assert!(
        stderr(&shown).contains("it holds no elmbox state"),
        "{}",
        stderr(&shown)
    );
    // Four nodes opening it at once: the migration runs once, the others
    // wait for it and find it done.
    let together = Arc::new(Barrier::new(4));
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let (url, together) = (url.clone(), together.clone());
            std::thread::spawn(move || {
                together.wait();
                StateLocation::parse(&url).open().map(drop)
            })
        })
        .collect();
    for node in nodes {
        node.join().unwrap().unwrap();
    }
    let expected = (
        vec![1, 2, 3],
        [
            "elmbox_apps",
            "elmbox_code",
            "elmbox_host_options",
            "elmbox_leases",
            "elmbox_log",
            "elmbox_schema",
            "elmbox_snapshots",
            "elmbox_timers",
        ]
        .map(String::from)
        .to_vec(),
    );
    assert_eq!(schema(&server, "fresh"), expected);
    // Opened again: nothing to do.
    StateLocation::parse(&url).open().unwrap();
    assert_eq!(schema(&server, "fresh"), expected);
    let shown = elmbox(&["state", &url], b"");
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        String::from_utf8_lossy(&shown.stdout).ends_with("\n  no apps\n"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
}

#[test]
fn a_database_of_a_newer_schema_is_refused() {
    let server = PgServer::start();
    let url = server.database("newer");
    let counter = fixture("counter");
    let first = elmbox(&["run", &counter, "--state", &url], b"e1\n");
    assert!(first.status.success(), "{}", stderr(&first));
    server
        .client("newer")
        .batch_execute("INSERT INTO elmbox_schema (version) VALUES (4)")
        .unwrap();
    for args in [vec!["run", &counter, "--state", &url], vec!["state", &url]] {
        let out = elmbox(&args, b"e2\n");
        assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("its schema is version 4, newer than this elmbox knows (3)"),
            "{}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn bad_urls_unreachable_servers_and_refused_logins_are_named_without_the_password() {
    let server = PgServer::start();
    let port = server.port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let cases = [
        (
            format!("postgres://postgres:s3cret@127.0.0.1:{closed}/db"),
            format!("postgres://postgres@127.0.0.1:{closed}/db"),
            "cannot connect to the server",
        ),
        (
            "postgres://postgres:s3cret@127.0.0.1:fivefour/db".to_string(),
            "postgres://postgres@127.0.0.1:fivefour/db".to_string(),
            "it is not a valid PostgreSQL URL",
        ),
        (
            format!("postgres://postgres:s3cret@127.0.0.1:{port}/postgres"),
            format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            "the server refused the login: password authentication failed for user \"postgres\"",
        ),
        (
            format!("postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/nowhere"),
            format!("postgresql://postgres@127.0.0.1:{port}/nowhere"),
            "the server refused the connection: database \"nowhere\" does not exist",
        ),
    ];
    for (url, shown, why) in cases {
        let out = elmbox(&["run", &fixture("counter"), "--state", &url], b"e1\n");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(
            err.contains(&format!("cannot use the state in {shown}: {why}")),
            "{url}: {err}"
        );
        assert!(
            !err.contains("s3cret") && !err.contains(PG_PASSWORD),
            "{url}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn one_process_runs_an_app_at_a_time_and_others_run_other_apps() {
    let server = PgServer::start();
    let url = server.database("shared");
    let counter = fixture("counter");
    let store = StateLocation::parse(&url).open().unwrap();
    store.claim("counter").unwrap();
    let refused = elmbox(&["run", &counter, "--state", &url], b"e1\n");
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let me = format!(
        "the app `counter` in {} is in use by elmbox process {} on",
        StateLocation::parse(&url),
        std::process::id()
    );
    assert!(stderr(&refused).contains(&me), "{}", stderr(&refused));
    assert!(refused.stdout.is_empty());
    // Another app of the same database runs meanwhile.
    let other = elmbox(
        &["run", &counter, "--state", &url, "--name", "other"],
        b"e1\n",
    );
    assert!(other.status.success(), "{}", stderr(&other));
    drop(store);
    let taken = elmbox(&["run", &counter, "--state", &url], b"e1\n");
    assert!(taken.status.success(), "{}", stderr(&taken));
    assert_eq!(
        json_lines(&taken),
        vec![json!([{"count": 1, "event": "e1"}])]
    );
}

#[test]
fn a_lease_taken_over_fences_the_old_holders_commits() {
    let server = PgServer::start();
    let url = server.database("leases");
    let open = || StateLocation::parse(&url).open().unwrap();
    let (a, b) = (open(), open());
    let (a_leases, b_leases) = (a.leases().unwrap(), b.leases().unwrap());
    let ttl = Duration::from_millis(300);
    let options = |text: &str| Write::HostOptions {
        app: "app".into(),
        options: text.into(),
    };
    assert_eq!(
        a_leases.acquire("app", "a", "http://a", ttl).unwrap(),
        Acquired::Held { epoch: 1 }
    );
    a.commit(&[options("a1")]).unwrap();
    // Live: b is refused, told who has it and where.
    match b_leases.acquire("app", "b", "http://b", ttl).unwrap() {
        Acquired::Refused(holder) => assert_eq!(
            (holder.node.as_str(), holder.address.as_str(), holder.epoch),
            ("a", "http://a", 1)
        ),
        held => panic!("{held:?}"),
    }
    // a, not renewing, lets it expire by the database's clock.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b_leases.holder("app").unwrap().unwrap().live {
        assert!(Instant::now() < deadline, "the lease never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        b_leases.acquire("app", "b", "http://b", ttl).unwrap(),
        Acquired::Held { epoch: 2 }
    );
    // a's next commit is refused whole, naming the epochs.
    let refused = a.commit(&[options("a2")]).unwrap_err();
    assert!(
        matches!(&refused, Error::Fenced { app, held: 1, .. } if app == "app"),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("epoch 2, held by node `b`"),
        "{refused}"
    );
    assert_eq!(b.host_options("app").unwrap().as_deref(), Some("a1"));
    // Nor can a renew it, or write for it again.
    assert!(!a_leases.renew("app", ttl).unwrap());
    assert!(matches!(
        a.commit(&[options("a3")]),
        Err(Error::Fenced { .. })
    ));
    b.commit(&[options("b1")]).unwrap();
    assert_eq!(b.host_options("app").unwrap().as_deref(), Some("b1"));
    // A process without leases keeps off it while b's lease lives.
    let unleased = open();
    let refused = unleased.claim("app").unwrap_err().to_string();
    assert!(
        refused.contains("in use by node `b` (elmbox serve at http://b)"),
        "{refused}"
    );
    // Let go, it is free at once.
    b_leases.release("app").unwrap();
    assert_eq!(
        a_leases.acquire("app", "a", "http://a", ttl).unwrap(),
        Acquired::Held { epoch: 3 }
    );
}
