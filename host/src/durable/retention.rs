//! How much of an app's history its store keeps ([`RetainLog`]). An app's
//! log only grows; a snapshot makes the records before it unnecessary for
//! a restart, but not for a deploy by replay (which runs the new version
//! through the whole log), nor for a restore by a guest build other than
//! the one that took the snapshot (an elmbox upgrade: its snapshots cannot
//! be restored, and the log is replayed from the start). So:
//!
//! - [`RetainLog::All`] (the default) keeps every record, and the newest
//!   snapshot: replay deploys and upgrades always work; the store grows
//!   with the app's age.
//! - [`RetainLog::Snapshots`]`(n)` keeps the `n` newest snapshots and the
//!   log from the oldest of them on: the store stays bounded, and a deploy
//!   by replay of a version that came before is refused, naming the first
//!   event kept (a fresh deploy, or a migration, still works).
//!
//! Dropping history happens in the commit that writes the snapshot, so it
//! is all or nothing: a crash leaves the snapshot and the shorter log, or
//! neither. The newest snapshot's own record is always kept (a restore
//! checks it).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// Snapshots kept per app when the whole log is: the newest alone. Should
/// it be damaged, the log from the start rebuilds the app (slower, as
/// right); an older snapshot would cost an idle app as much again (two per
/// served app, one at its deploy and one at shutdown, were 578 KB of a
/// counter's 600).
pub const SNAPSHOTS_KEPT_WITH_ALL: u32 = 1;

/// How much of an app's history its store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainLog {
    /// Every record.
    #[default]
    All,
    /// The log back to the n-th newest snapshot, and those n snapshots.
    Snapshots(NonZeroU32),
}

impl RetainLog {
    /// Snapshots the store keeps per app.
    pub fn snapshots_kept(self) -> u32 {
        match self {
            RetainLog::All => SNAPSHOTS_KEPT_WITH_ALL,
            RetainLog::Snapshots(n) => n.get(),
        }
    }

    /// Whether records before the oldest snapshot kept are dropped.
    pub fn drops_history(self) -> bool {
        matches!(self, RetainLog::Snapshots(_))
    }
}

impl FromStr for RetainLog {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "all" {
            return Ok(RetainLog::All);
        }
        text.parse::<NonZeroU32>()
            .map(RetainLog::Snapshots)
            .map_err(|_| {
                format!(
                    "`{}`: `all`, or how many snapshots to keep the log back to (1 or more)",
                    crate::app_name::printable(text)
                )
            })
    }
}

impl fmt::Display for RetainLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetainLog::All => f.write_str("all"),
            RetainLog::Snapshots(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_or_a_count_and_writes_them_back() {
        for text in ["all", "1", "5"] {
            assert_eq!(text.parse::<RetainLog>().unwrap().to_string(), text);
        }
        for bad in ["0", "-1", "some", "", "1.5"] {
            let e = bad.parse::<RetainLog>().unwrap_err();
            assert!(e.contains("`all`"), "{e}");
        }
        assert_eq!(RetainLog::All.snapshots_kept(), 1);
        assert!(!RetainLog::All.drops_history());
        assert_eq!("2".parse::<RetainLog>().unwrap().snapshots_kept(), 2);
    }
}
