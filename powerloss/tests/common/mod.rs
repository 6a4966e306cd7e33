//! Helpers shared by the integration tests: a scratch directory, and a
//! mount of the power-loss file system in this process.
#![allow(dead_code)] // each test binary uses a different part

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use elmbox_powerloss::{Daemon, Mounted, Unsynced};

/// Whether FUSE can be used here; says why not when it cannot.
pub fn fuse_available(test: &str) -> bool {
    let available = Path::new("/dev/fuse").exists();
    if !available {
        eprintln!("skipping {test}: /dev/fuse is missing, so nothing can be mounted");
    }
    available
}

/// A scratch directory, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "powerloss-{name}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create the scratch directory");
        Scratch(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A power-loss mount in this process over `backing/`, at `mnt/`.
pub struct Fixture {
    mounted: Option<Mounted>,
    backing: PathBuf,
    mnt: PathBuf,
    _scratch: Scratch,
}

impl Fixture {
    /// Mounts one, or returns None (having said why) where FUSE is missing.
    pub fn new(test: &str) -> Option<Fixture> {
        if !fuse_available(test) {
            return None;
        }
        let scratch = Scratch::new(test);
        let backing = scratch.path().join("backing");
        let mnt = scratch.path().join("mnt");
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        let mounted = elmbox_powerloss::mount(&backing, &mnt)
            .unwrap_or_else(|e| panic!("mounting for {test}: {e}"));
        Some(Fixture {
            mounted: Some(mounted),
            backing,
            mnt,
            _scratch: scratch,
        })
    }

    /// `relative` on the mount.
    pub fn at(&self, relative: &str) -> PathBuf {
        self.mnt.join(relative)
    }

    /// `relative` on the disk (the backing directory).
    pub fn on_disk(&self, relative: &str) -> PathBuf {
        self.backing.join(relative)
    }

    pub fn power_loss(&self) -> Unsynced {
        self.mounted.as_ref().unwrap().power_loss()
    }

    pub fn unsynced(&self) -> Unsynced {
        self.mounted.as_ref().unwrap().unsynced()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Unmount before the scratch directory goes.
        if let Some(mounted) = self.mounted.take() {
            if let Err(e) = mounted.unmount() {
                eprintln!("{e}");
            }
        }
    }
}

/// A power-loss mount served by a `powerloss-fs` child process, over
/// `backing/`, at `mnt/`: for tests that `mmap` files of the mount.
pub struct DaemonFixture {
    pub daemon: Option<Daemon>,
    backing: PathBuf,
    mnt: PathBuf,
    _scratch: Scratch,
}

impl DaemonFixture {
    /// Starts one, or returns None (having said why) where FUSE is missing.
    pub fn new(test: &str) -> Option<DaemonFixture> {
        if !fuse_available(test) {
            return None;
        }
        let scratch = Scratch::new(test);
        let backing = scratch.path().join("backing");
        let mnt = scratch.path().join("mnt");
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        let daemon = Daemon::start(env!("CARGO_BIN_EXE_powerloss-fs"), &backing, &mnt)
            .unwrap_or_else(|e| panic!("starting the daemon for {test}: {e}"));
        Some(DaemonFixture {
            daemon: Some(daemon),
            backing,
            mnt,
            _scratch: scratch,
        })
    }

    pub fn at(&self, relative: &str) -> PathBuf {
        self.mnt.join(relative)
    }

    pub fn on_disk(&self, relative: &str) -> PathBuf {
        self.backing.join(relative)
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().unwrap()
    }

    pub fn power_loss(&mut self) -> Unsynced {
        self.daemon().power_loss().unwrap()
    }

    pub fn unsynced(&mut self) -> Unsynced {
        self.daemon().unsynced().unwrap()
    }
}

impl Drop for DaemonFixture {
    fn drop(&mut self) {
        // Stop it before the scratch directory goes.
        if let Some(daemon) = self.daemon.take() {
            if let Err(e) = daemon.stop() {
                eprintln!("{e}");
            }
        }
    }
}

/// Writes a new file, then fsyncs it if `sync`.
pub fn write_file(path: &Path, data: &[u8], sync: bool) {
    let mut file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    file.write_all(data).unwrap();
    if sync {
        file.sync_all().unwrap();
    }
}

/// Reads a file, naming it if that fails.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn unsynced(bytes: u64, files: usize) -> Unsynced {
    Unsynced { bytes, files }
}
