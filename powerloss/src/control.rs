//! The power switch of a mount: drop all unsynced data, or count it.

use std::sync::{Arc, Mutex, MutexGuard};

use fuser::{INodeNo, Notifier};

use crate::fs::{State, Unsynced};

/// Controls a running mount from outside the FUSE threads (a test, a
/// signal handler). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Controller {
    state: Arc<Mutex<State>>,
    notifier: Notifier,
}

impl Controller {
    pub(crate) fn new(state: Arc<Mutex<State>>, notifier: Notifier) -> Controller {
        Controller { state, notifier }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulates a power loss: drops the unsynced data of every file, so
    /// the mount shows exactly the backing directory, and returns what was
    /// dropped. When it returns, the kernel's cached pages and attributes of
    /// those files are gone too, so reads (even through descriptors opened
    /// before) see the backing files.
    ///
    /// Programs still running keep running: stop them first for a faithful
    /// crash (see the crate docs).
    pub fn power_loss(&self) -> Unsynced {
        let (dropped, changed) = self.state().drop_unsynced();
        // Outside the lock: the kernel may need a FUSE thread (which takes
        // the lock) to finish a request before it can drop a page.
        for ino in changed {
            // The inode may no longer be cached (the kernel then answers
            // ENOENT, which the notifier ignores); any other refusal leaves
            // a stale cache only for a file nobody has open.
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
        dropped
    }

    /// What a power loss would drop now.
    pub fn unsynced(&self) -> Unsynced {
        self.state().unsynced()
    }
}
