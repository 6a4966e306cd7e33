//! The `powerloss-fs` binary driven as a test in another crate would drive
//! it: start it, write through the mount from shell commands, signal it.

mod common;

use std::process::Command;

use common::{fuse_available, read, unsynced, DaemonFixture, Scratch};

const PROGRAM: &str = env!("CARGO_BIN_EXE_powerloss-fs");

/// Runs `script` with `sh -c`, the mount as `$1`.
fn sh(script: &str, mount: &std::path::Path) {
    let status = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(mount)
        .status()
        .expect("run sh");
    assert!(status.success(), "sh -c {script:?}: {status}");
}

#[test]
fn sigusr1_drops_what_shell_commands_did_not_sync() {
    let Some(mut fixture) = DaemonFixture::new("binary-drop") else {
        return;
    };
    let mount = fixture.at("");
    sh(r#"printf unsynced > "$1/lost.txt""#, &mount);
    // coreutils' `sync FILE` fsyncs that file.
    sh(
        r#"printf synced > "$1/kept.txt" && sync "$1/kept.txt""#,
        &mount,
    );
    sh(r#"printf ' appended' >> "$1/kept.txt""#, &mount);
    assert_eq!(read(&fixture.at("kept.txt")), b"synced appended");
    assert_eq!(fixture.unsynced(), unsynced(8 + 9, 2));

    assert_eq!(fixture.power_loss(), unsynced(17, 2));
    assert_eq!(read(&fixture.at("lost.txt")), b"");
    assert_eq!(read(&fixture.at("kept.txt")), b"synced");
    assert_eq!(read(&fixture.on_disk("kept.txt")), b"synced");
    assert_eq!(fixture.unsynced(), unsynced(0, 0));
}

#[test]
fn sigterm_unmounts_and_exits() {
    let Some(mut fixture) = DaemonFixture::new("binary-term") else {
        return;
    };
    let mount = fixture.at("");
    sh(r#"printf x > "$1/f""#, &mount);
    let daemon = fixture.daemon.take().unwrap();
    daemon
        .stop()
        .expect("SIGTERM unmounts and exits with success");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mount.canonicalize().unwrap();
    assert!(
        !mounts.contains(&format!(" {} ", mount.display())),
        "still mounted: {mounts}"
    );
    // Unmounting drops unsynced data, as a power loss does.
    assert_eq!(read(&fixture.on_disk("f")), b"");
}

#[test]
fn umount_ends_the_daemon() {
    let Some(mut fixture) = DaemonFixture::new("binary-umount") else {
        return;
    };
    let status = Command::new("umount")
        .arg(fixture.at(""))
        .status()
        .expect("run umount");
    assert!(status.success(), "umount: {status}");
    let daemon = fixture.daemon.take().unwrap();
    daemon.wait().expect("exits with success once unmounted");
}

#[test]
fn bad_arguments_are_named() {
    if !fuse_available("bad_arguments_are_named") {
        return;
    }
    let scratch = Scratch::new("binary-args");
    let missing = Command::new(PROGRAM).arg(scratch.path()).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("--backing DIR is missing"), "{said}");

    let not_a_dir = scratch.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let refused = Command::new(PROGRAM)
        .arg("--backing")
        .arg(&not_a_dir)
        .arg(scratch.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("not a directory"), "{said}");
}
