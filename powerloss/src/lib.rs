//! A FUSE file system that loses what was not synced, on command: a small
//! equivalent of LazyFS for power-loss tests. `kill -9` of a program leaves
//! the kernel's page cache intact, so only a file system that keeps
//! unsynced data to itself can show whether a program really synced.
//!
//! # Model
//!
//! - It mounts over a *backing directory*, which is "the disk": what
//!   survives. The mount shows the backing files with, on top, data written
//!   and not yet synced, which lives only in the daemon's memory (per file:
//!   written byte ranges and size changes, see [`pending`]). Reads return
//!   that merged view, so programs see normal POSIX behaviour.
//! - `fsync` and `fdatasync` of a file write its unsynced data and size to
//!   the backing file and sync that. `close` persists nothing, and neither
//!   does `sync(2)`/`syncfs` (FUSE does not pass them on per file): only
//!   what a durable program must call counts.
//! - Names and metadata (create, mknod, mkdir, unlink, rmdir, rename,
//!   symlink, chmod, chown, utimes) go to the backing directory at once, as
//!   in LazyFS's default: this models data loss, not a file system that
//!   loses its journal. A file created and never synced survives a crash,
//!   empty or with its synced data only. Unsynced data belongs to the inode,
//!   not the name: it follows a rename, and goes with the last name of an
//!   unlinked file (once the file is closed).
//! - A *power loss* ([`Controller::power_loss`], or `SIGUSR1` to the
//!   `powerloss-fs` binary) drops the unsynced data of every file, so the
//!   mount shows exactly the backing directory; the kernel's caches of
//!   those files are invalidated before it returns.
//!
//! # What it does not model
//!
//! Torn or reordered writes within what was synced (an `fsync` persists the
//! whole file's unsynced state or fails), lost metadata, hard links (`link`
//! is refused). A power loss does not stop programs: for a faithful crash,
//! stop them first (a program killed or a connection closed without
//! checkpoint), then drop. Pages a program dirtied through a shared `mmap`
//! and that the kernel has not yet written back are not unsynced data yet:
//! the kernel writes them after the drop.
//!
//! # What SQLite needs, and gets
//!
//! - Shared `mmap` of the `-shm` file (WAL mode): works, because files are
//!   opened without `direct_io`, so the kernel's page cache backs the
//!   mapping; that cache is dropped on each open and on a power loss.
//! - POSIX advisory locks (`fcntl F_SETLK/F_GETLK`, also OFD locks): this
//!   file system does not implement `getlk`/`setlk`, so the kernel keeps
//!   the locks itself, which is correct for processes on this machine.
//! - Everything else it calls: open/create/read/write/ftruncate/fsync/
//!   fdatasync/unlink/rename/stat/chmod/fchown/utimes/readdir/statfs/access.
//!
//! # Use from a test
//!
//! Two ways to run it:
//! - In the test's process: [`mount`] returns a [`Mounted`] whose
//!   [`Mounted::power_loss`] is the switch. Only for plain file I/O: a
//!   process that serves a FUSE mount must not `mmap` its files (SQLite in
//!   WAL mode maps `-shm`). A page fault or an `munmap` of dirty pages holds
//!   the process's memory-map lock while it waits for the daemon, whose
//!   threads, in the same process, need that lock to touch or allocate
//!   memory: both hang for good.
//! - As a child process: [`Daemon::start`] runs the `powerloss-fs` binary
//!   and drives it by signals, waiting for each answer. Use this for SQLite.
//!
//! The binary, by hand or from a script:
//!
//! ```text
//! powerloss-fs --backing DIR MOUNTPOINT   # foreground; when ready, stderr says
//!                                         # "powerloss-fs: mounted DIR at MOUNTPOINT"
//! kill -USR1 PID   # power loss; stderr: "powerloss-fs: dropped N bytes in M files"
//! kill -USR2 PID   # count;      stderr: "powerloss-fs: unsynced N bytes in M files"
//! kill PID         # or `umount MOUNTPOINT` / `fusermount3 -u MOUNTPOINT`:
//!                  # unmounts; stderr: "powerloss-fs: unmounted MOUNTPOINT"
//! ```
//!
//! The counts cover files that still have a name (a nameless file cannot
//! survive a crash anyway). Unmounting drops unsynced data as a power loss
//! does.

pub mod control;
pub mod daemon;
pub mod fs;
pub mod pending;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, Config, MountOption, Session};

pub use control::Controller;
pub use daemon::Daemon;
pub use fs::{PowerLossFs, Unsynced};

/// The line the binary prints on stderr once the mount is ready.
pub fn mounted_line(backing: &Path, mountpoint: &Path) -> String {
    format!(
        "powerloss-fs: mounted {} at {}",
        backing.display(),
        mountpoint.display()
    )
}

/// Mounts a power-loss file system over `backing` at `mountpoint` and
/// returns the FUSE session, to run in the caller's thread (the binary does
/// this), with its controller. Requests wait until the session runs.
pub fn mount_session(
    backing: impl AsRef<Path>,
    mountpoint: impl AsRef<Path>,
) -> io::Result<(Session<PowerLossFs>, Controller)> {
    let (backing, mountpoint) = (backing.as_ref(), mountpoint.as_ref());
    let context = |what: &str, e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot mount {} at {}: {what}: {e}",
                backing.display(),
                mountpoint.display()
            ),
        )
    };
    let backing = backing
        .canonicalize()
        .map_err(|e| context("backing directory", e))?;
    let state = Arc::new(Mutex::new(
        fs::State::new(&backing).map_err(|e| context("backing directory", e))?,
    ));
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("powerloss-fs".into()),
        MountOption::Subtype("powerloss".into()),
    ];
    // A second thread serves requests while one waits on a backing fsync,
    // and the kernel's invalidations after a power loss can need one.
    config.n_threads = Some(2);
    let session = Session::new(PowerLossFs::new(state.clone()), mountpoint, &config)
        .map_err(|e| context("FUSE", e))?;
    let controller = Controller::new(state, session.notifier());
    Ok((session, controller))
}

/// Mounts a power-loss file system over `backing` at `mountpoint`, served
/// by background threads until the returned value is unmounted or dropped.
/// This process must not `mmap` files of the mount (see the crate docs):
/// use a [`Daemon`] then.
pub fn mount(backing: impl AsRef<Path>, mountpoint: impl AsRef<Path>) -> io::Result<Mounted> {
    let (session, controller) = mount_session(backing, &mountpoint)?;
    Ok(Mounted {
        session: Some(session.spawn()?),
        controller,
        mountpoint: mountpoint.as_ref().to_path_buf(),
    })
}

/// A mount served in the background (see [`mount`]).
#[derive(Debug)]
pub struct Mounted {
    session: Option<BackgroundSession>,
    controller: Controller,
    mountpoint: PathBuf,
}

impl Mounted {
    /// Its controller, to keep beyond a borrow of the mount.
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// See [`Controller::power_loss`].
    pub fn power_loss(&self) -> Unsynced {
        self.controller.power_loss()
    }

    /// See [`Controller::unsynced`].
    pub fn unsynced(&self) -> Unsynced {
        self.controller.unsynced()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts (refused while files on it are open) and waits for the
    /// FUSE threads to end. Unsynced data is dropped.
    pub fn unmount(mut self) -> io::Result<()> {
        match self.session.take() {
            Some(session) => session.umount_and_join().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot unmount {}: {e}", self.mountpoint.display()),
                )
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            if let Err(e) = session.umount_and_join() {
                eprintln!(
                    "powerloss-fs: cannot unmount {}: {e}",
                    self.mountpoint.display()
                );
            }
        }
    }
}
