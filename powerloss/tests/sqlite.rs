//! SQLite in WAL mode on a power-loss mount, as elmbox's durable store runs
//! it: with `synchronous=FULL` every committed transaction survives a power
//! loss; with `synchronous=OFF` (the negative control) commits are lost,
//! which shows the file system really drops what was not synced.
//!
//! The mount is served by a `powerloss-fs` child process: SQLite maps its
//! `-shm` file, and a process must not map files of a mount it serves.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{read, DaemonFixture};
use elmbox_powerloss::Unsynced;
use rusqlite::config::DbConfig;
use rusqlite::Connection;

/// Rows inserted, one transaction each.
const ROWS: i64 = 100;

/// What one run saw.
#[derive(Debug)]
struct Outcome {
    rows_before: i64,
    unsynced_before: Unsynced,
    dropped: Unsynced,
    rows_after: i64,
    integrity: String,
}

fn count(db: &Connection) -> i64 {
    db.query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .expect("count the rows")
}

fn open(path: &Path, synchronous: &str) -> Connection {
    let db = Connection::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mode: String = db
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    db.pragma_update(None, "synchronous", synchronous).unwrap();
    db
}

/// Creates the table (synced, so both modes start from the same disk),
/// inserts `ROWS` rows in separate transactions with `synchronous`, half
/// before and half after a checkpoint, "crashes" and reopens.
fn insert_crash_reopen(fixture: &mut DaemonFixture, synchronous: &str) -> Outcome {
    let path = fixture.at("store.sqlite");
    let setup = open(&path, "FULL");
    setup
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    // A normal close checkpoints and syncs the database file.
    setup.close().map_err(|(_, e)| e).unwrap();

    let db = open(&path, synchronous);
    for i in 0..ROWS {
        if i == ROWS / 2 {
            // The WAL is copied into the database and truncated: both must
            // be synced for the second half to land on a consistent file.
            db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        }
        db.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i}")])
            .unwrap();
    }
    let rows_before = count(&db);
    // The crash: close without the checkpoint a clean close does, which
    // leaves the files as a killed process would (SQLite writes nothing
    // more), then drop what was not synced.
    db.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    db.close().map_err(|(_, e)| e).unwrap();
    let unsynced_before = fixture.unsynced();
    let dropped = fixture.power_loss();

    let db = open(&path, synchronous);
    let rows_after = count(&db);
    let integrity = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    Outcome {
        rows_before,
        unsynced_before,
        dropped,
        rows_after,
        integrity,
    }
}

#[test]
fn sqlite_wal_with_synchronous_full_keeps_every_commit() {
    let Some(mut fixture) = DaemonFixture::new("sqlite-full") else {
        return;
    };
    let outcome = insert_crash_reopen(&mut fixture, "FULL");
    eprintln!("synchronous=FULL: {outcome:?}");
    assert_eq!(outcome.rows_before, ROWS);
    assert_eq!(outcome.rows_after, ROWS, "every committed row survives");
    assert_eq!(outcome.integrity, "ok");
    // SQLite never syncs the -shm file (it rebuilds it after a crash): that
    // is all a power loss found unsynced.
    assert_eq!(outcome.unsynced_before, outcome.dropped);
    assert!(outcome.dropped.files <= 1, "{:?}", outcome.dropped);
}

/// The negative control: without syncs, the same work loses commits.
#[test]
fn sqlite_wal_with_synchronous_off_loses_commits() {
    let Some(mut fixture) = DaemonFixture::new("sqlite-off") else {
        return;
    };
    let outcome = insert_crash_reopen(&mut fixture, "OFF");
    eprintln!("synchronous=OFF: {outcome:?}");
    assert_eq!(outcome.rows_before, ROWS, "the rows were committed");
    assert!(
        outcome.rows_after < ROWS,
        "a power loss must lose unsynced commits, yet all {ROWS} rows survived: \
         the file system did not drop unsynced data"
    );
    assert_eq!(outcome.unsynced_before, outcome.dropped);
    assert!(outcome.dropped.bytes > 0, "{:?}", outcome.dropped);
    assert_eq!(outcome.integrity, "ok");
}

/// Two connections (as two processes reading one store would) see each
/// other's commits through the WAL index in the shared `-shm` map.
#[test]
fn sqlite_connections_share_the_wal_index() {
    let Some(fixture) = DaemonFixture::new("sqlite-shared") else {
        return;
    };
    let path = fixture.at("shared.sqlite");
    let writer = open(&path, "FULL");
    writer
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    let reader = open(&path, "FULL");
    for i in 1..=10 {
        writer
            .execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i}")])
            .unwrap();
        assert_eq!(count(&reader), i);
    }
    assert!(fixture.at("shared.sqlite-shm").exists());
}

/// SQLite maps its `-shm` file with `MAP_SHARED`: writes through the
/// mapping must reach the file, and an `fsync` must persist them.
#[test]
fn shared_mmap_writes_reach_the_file_and_fsync_persists_them() {
    let Some(mut fixture) = DaemonFixture::new("mmap") else {
        return;
    };
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(fixture.at("shm"))
        .unwrap();
    file.set_len(8192).unwrap();
    // SAFETY: a fresh shared mapping of an 8 KiB file, unmapped below and
    // used only in between.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(
            map,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        let bytes = std::slice::from_raw_parts_mut(map.cast::<u8>(), 8192);
        bytes[..5].copy_from_slice(b"index");
        bytes[4096..4101].copy_from_slice(b"page2");
        // Another descriptor sees the mapped bytes before any sync.
        let mut seen = [0; 5];
        File::open(fixture.at("shm"))
            .unwrap()
            .read_exact_at(&mut seen, 4096)
            .unwrap();
        assert_eq!(&seen, b"page2");
        assert_eq!(libc::msync(map, 8192, libc::MS_SYNC), 0);
        assert_eq!(libc::munmap(map, 8192), 0);
    }
    drop(file);
    fixture.power_loss();
    let on_disk = read(&fixture.on_disk("shm"));
    assert_eq!(on_disk.len(), 8192);
    assert_eq!(&on_disk[..5], b"index");
    assert_eq!(&on_disk[4096..4101], b"page2");
}
