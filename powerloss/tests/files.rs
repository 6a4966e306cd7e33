//! Files on a real mount served in this process: what survives a power
//! loss, with and without fsync; renames and unlinks with unsynced data;
//! advisory locks. (Shared mmap needs the daemon in another process: see
//! `sqlite.rs`.)

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};

use common::{read, unsynced, write_file, Fixture};

/// A synced file "0123456789", for the tests that change one.
fn synced_digits(fixture: &Fixture, name: &str) {
    write_file(&fixture.at(name), b"0123456789", true);
    assert_eq!(fixture.unsynced(), unsynced(0, 0));
}

fn open_rw(fixture: &Fixture, name: &str) -> File {
    File::options()
        .read(true)
        .write(true)
        .open(fixture.at(name))
        .unwrap()
}

#[test]
fn a_write_without_fsync_is_lost() {
    let Some(fixture) = Fixture::new("lost") else {
        return;
    };
    write_file(&fixture.at("new.txt"), b"hello", false);
    assert_eq!(read(&fixture.at("new.txt")), b"hello");
    // The name is on disk (metadata goes at once), the data is not.
    assert_eq!(read(&fixture.on_disk("new.txt")), b"");
    assert_eq!(fixture.unsynced(), unsynced(5, 1));

    assert_eq!(fixture.power_loss(), unsynced(5, 1));
    assert_eq!(read(&fixture.at("new.txt")), b"");
    assert_eq!(fixture.unsynced(), unsynced(0, 0));
}

#[test]
fn a_write_with_fsync_survives() {
    let Some(fixture) = Fixture::new("kept") else {
        return;
    };
    write_file(&fixture.at("new.txt"), b"hello", true);
    assert_eq!(read(&fixture.on_disk("new.txt")), b"hello");
    assert_eq!(fixture.power_loss(), unsynced(0, 0));
    assert_eq!(read(&fixture.at("new.txt")), b"hello");
}

#[test]
fn fdatasync_persists_like_fsync() {
    let Some(fixture) = Fixture::new("fdatasync") else {
        return;
    };
    let mut file = File::create(fixture.at("data.txt")).unwrap();
    file.write_all(b"data").unwrap();
    file.sync_data().unwrap();
    drop(file);
    fixture.power_loss();
    assert_eq!(read(&fixture.at("data.txt")), b"data");
}

#[test]
fn an_overwrite_in_the_middle() {
    let Some(fixture) = Fixture::new("overwrite") else {
        return;
    };
    for sync in [false, true] {
        let name = format!("digits-{sync}");
        synced_digits(&fixture, &name);
        let file = open_rw(&fixture, &name);
        file.write_all_at(b"ab", 4).unwrap();
        if sync {
            file.sync_all().unwrap();
        }
        drop(file);
        assert_eq!(read(&fixture.at(&name)), b"0123ab6789");
        fixture.power_loss();
        let expected: &[u8] = if sync { b"0123ab6789" } else { b"0123456789" };
        assert_eq!(read(&fixture.at(&name)), expected, "fsync: {sync}");
    }
}

#[test]
fn an_extension() {
    let Some(fixture) = Fixture::new("extend") else {
        return;
    };
    let mut extended = b"0123456789XYZ".to_vec();
    extended.resize(20, 0);
    extended.push(b'!');
    for sync in [false, true] {
        let name = format!("digits-{sync}");
        synced_digits(&fixture, &name);
        let mut file = File::options()
            .append(true)
            .open(fixture.at(&name))
            .unwrap();
        file.write_all(b"XYZ").unwrap();
        drop(file);
        // And one past the end, leaving a hole (not through the O_APPEND
        // descriptor: Linux appends every write made through one).
        let file = open_rw(&fixture, &name);
        file.write_all_at(b"!", 20).unwrap();
        if sync {
            file.sync_all().unwrap();
        }
        drop(file);
        assert_eq!(read(&fixture.at(&name)), extended);
        fixture.power_loss();
        let expected: &[u8] = if sync { &extended } else { b"0123456789" };
        assert_eq!(read(&fixture.at(&name)), expected, "fsync: {sync}");
    }
}

#[test]
fn a_truncation() {
    let Some(fixture) = Fixture::new("truncate") else {
        return;
    };
    for sync in [false, true] {
        let name = format!("digits-{sync}");
        synced_digits(&fixture, &name);
        let file = open_rw(&fixture, &name);
        file.set_len(4).unwrap();
        assert_eq!(read(&fixture.at(&name)), b"0123");
        // Extending again shows zeros, not the bytes cut off.
        file.set_len(8).unwrap();
        if sync {
            file.sync_all().unwrap();
        }
        drop(file);
        assert_eq!(read(&fixture.at(&name)), b"0123\0\0\0\0");
        fixture.power_loss();
        let expected: &[u8] = if sync { b"0123\0\0\0\0" } else { b"0123456789" };
        assert_eq!(read(&fixture.at(&name)), expected, "fsync: {sync}");
        assert_eq!(read(&fixture.on_disk(&name)), expected, "fsync: {sync}");
    }
}

#[test]
fn a_rewrite_with_o_trunc_without_fsync_keeps_the_old_content() {
    let Some(fixture) = Fixture::new("otrunc") else {
        return;
    };
    synced_digits(&fixture, "digits");
    write_file(&fixture.at("digits"), b"new", false);
    assert_eq!(read(&fixture.at("digits")), b"new");
    fixture.power_loss();
    assert_eq!(read(&fixture.at("digits")), b"0123456789");
}

#[test]
fn a_file_open_across_the_power_loss_reads_the_disk() {
    let Some(fixture) = Fixture::new("open-across") else {
        return;
    };
    synced_digits(&fixture, "digits");
    let mut file = open_rw(&fixture, "digits");
    file.write_all(b"abcdefghijklmnop").unwrap();
    let mut seen = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, b"abcdefghijklmnop");

    fixture.power_loss();
    // The kernel's cached pages and size were invalidated.
    seen.clear();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, b"0123456789");
    assert_eq!(file.metadata().unwrap().len(), 10);
}

#[test]
fn a_rename_carries_the_unsynced_data() {
    let Some(fixture) = Fixture::new("rename") else {
        return;
    };
    write_file(&fixture.at("a.txt"), b"pending", false);
    std::fs::rename(fixture.at("a.txt"), fixture.at("b.txt")).unwrap();
    assert_eq!(read(&fixture.at("b.txt")), b"pending");
    assert_eq!(fixture.unsynced(), unsynced(7, 1));
    File::open(fixture.at("b.txt")).unwrap().sync_all().unwrap();
    assert_eq!(fixture.unsynced(), unsynced(0, 0));

    fixture.power_loss();
    assert_eq!(read(&fixture.at("b.txt")), b"pending");
    assert!(!fixture.at("a.txt").exists());
}

#[test]
fn a_rename_without_fsync_keeps_the_new_name_and_loses_the_data() {
    let Some(fixture) = Fixture::new("rename-lost") else {
        return;
    };
    write_file(&fixture.at("a.txt"), b"pending", false);
    std::fs::rename(fixture.at("a.txt"), fixture.at("b.txt")).unwrap();
    fixture.power_loss();
    assert!(!fixture.at("a.txt").exists());
    assert_eq!(read(&fixture.at("b.txt")), b"");
}

#[test]
fn a_rename_over_a_file_drops_the_replaced_files_unsynced_data() {
    let Some(fixture) = Fixture::new("rename-over") else {
        return;
    };
    write_file(&fixture.at("target"), b"old-pending", false);
    write_file(&fixture.at("source"), b"new", false);
    assert_eq!(fixture.unsynced(), unsynced(14, 2));
    std::fs::rename(fixture.at("source"), fixture.at("target")).unwrap();
    assert_eq!(fixture.unsynced(), unsynced(3, 1));
    assert_eq!(read(&fixture.at("target")), b"new");
}

#[test]
fn a_directory_rename_carries_the_unsynced_files_inside() {
    let Some(fixture) = Fixture::new("rename-dir") else {
        return;
    };
    std::fs::create_dir(fixture.at("d")).unwrap();
    write_file(&fixture.at("d/f"), b"inside", false);
    std::fs::rename(fixture.at("d"), fixture.at("e")).unwrap();
    assert_eq!(read(&fixture.at("e/f")), b"inside");
    File::open(fixture.at("e/f")).unwrap().sync_all().unwrap();
    fixture.power_loss();
    assert_eq!(read(&fixture.on_disk("e/f")), b"inside");
    assert_eq!(read(&fixture.at("e/f")), b"inside");
}

#[test]
fn an_unlink_drops_the_unsynced_data() {
    let Some(fixture) = Fixture::new("unlink") else {
        return;
    };
    write_file(&fixture.at("c"), b"doomed", false);
    assert_eq!(fixture.unsynced(), unsynced(6, 1));
    std::fs::remove_file(fixture.at("c")).unwrap();
    assert_eq!(fixture.unsynced(), unsynced(0, 0));
    fixture.power_loss();
    assert!(!fixture.at("c").exists());
    // A new file of that name starts empty, whatever inode it gets.
    File::create(fixture.at("c")).unwrap();
    assert_eq!(read(&fixture.at("c")), b"");
}

#[test]
fn an_unlinked_file_keeps_its_data_while_open() {
    let Some(fixture) = Fixture::new("unlink-open") else {
        return;
    };
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(fixture.at("tmp"))
        .unwrap();
    file.write_all(b"scratch").unwrap();
    std::fs::remove_file(fixture.at("tmp")).unwrap();
    let mut seen = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, b"scratch");
    // Nameless, it cannot survive a crash: not counted as unsynced.
    assert_eq!(fixture.unsynced(), unsynced(0, 0));
    drop(file);
    fixture.power_loss();
    assert!(!fixture.at("tmp").exists());
}

#[test]
fn names_and_metadata_go_to_disk_at_once() {
    let Some(fixture) = Fixture::new("metadata") else {
        return;
    };
    std::fs::create_dir(fixture.at("dir")).unwrap();
    write_file(&fixture.at("dir/file"), b"", false);
    std::fs::set_permissions(
        fixture.at("dir/file"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("file", fixture.at("dir/link")).unwrap();
    fixture.power_loss();
    let mode = std::fs::metadata(fixture.on_disk("dir/file"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(
        std::fs::read_link(fixture.at("dir/link")).unwrap(),
        std::path::Path::new("file")
    );
    let mut names: Vec<String> = std::fs::read_dir(fixture.at("dir"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["file", "link"]);
}

#[test]
fn stat_shows_the_unsynced_size() {
    let Some(fixture) = Fixture::new("stat") else {
        return;
    };
    write_file(&fixture.at("f"), &[7; 5000], false);
    assert_eq!(std::fs::metadata(fixture.at("f")).unwrap().len(), 5000);
    assert_eq!(std::fs::metadata(fixture.on_disk("f")).unwrap().len(), 0);
    fixture.power_loss();
    assert_eq!(std::fs::metadata(fixture.at("f")).unwrap().len(), 0);
}

/// SQLite locks with `fcntl`. This file system leaves locks to the kernel,
/// which must then keep them per file on the mount: open file description
/// locks conflict even within one process, which shows the kernel's lock
/// table is in use.
#[test]
fn advisory_locks_conflict_between_open_files() {
    let Some(fixture) = Fixture::new("locks") else {
        return;
    };
    write_file(&fixture.at("db"), b"", false);
    let first = open_rw(&fixture, "db");
    let second = open_rw(&fixture, "db");
    let lock = |file: &File, command: libc::c_int, byte: libc::off_t| {
        // SAFETY: flock is plain data; fcntl gets a valid descriptor and a
        // pointer to it.
        unsafe {
            let mut request: libc::flock = std::mem::zeroed();
            request.l_type = libc::F_WRLCK as libc::c_short;
            request.l_whence = libc::SEEK_SET as libc::c_short;
            request.l_start = byte;
            request.l_len = 1;
            let result = libc::fcntl(file.as_raw_fd(), command, &mut request);
            (result, std::io::Error::last_os_error(), request.l_type)
        }
    };
    let (taken, error, _) = lock(&first, libc::F_OFD_SETLK, 0);
    assert_eq!(taken, 0, "first lock: {error}");
    let (refused, error, _) = lock(&second, libc::F_OFD_SETLK, 0);
    assert_eq!(refused, -1, "the second lock must be refused");
    assert_eq!(error.raw_os_error(), Some(libc::EAGAIN), "{error}");
    let (asked, error, holder) = lock(&second, libc::F_OFD_GETLK, 0);
    assert_eq!(asked, 0, "getlk: {error}");
    assert_eq!(
        holder,
        libc::F_WRLCK as libc::c_short,
        "getlk sees the lock"
    );
    // Classic POSIX locks, which SQLite uses, are kept in the same table
    // (on another byte: they conflict with the open file's lock above).
    let (posix, error, _) = lock(&first, libc::F_SETLK, 1);
    assert_eq!(posix, 0, "posix lock: {error}");
    let (asked, error, holder) = lock(&second, libc::F_OFD_GETLK, 1);
    assert_eq!(asked, 0, "getlk: {error}");
    assert_eq!(
        holder,
        libc::F_WRLCK as libc::c_short,
        "getlk sees the posix lock"
    );
}
