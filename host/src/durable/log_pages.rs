//! An app's log read a page at a time ([`LogPages`]): a restore or a
//! deploy replays millions of records, and holding them all at once made a
//! replay's memory grow with the log (235 MB after a million counter
//! events). A page is [`PAGE`] records; only the page being replayed is in
//! memory.
//!
//! Damage is found the same way on every page (`sound_records`):
//! damaged records at the end (a write a crash tore, never acknowledged)
//! are cut from the store, and a damaged record before a sound one is an
//! error, whichever page the sound one is on. [`read_log`] reads a whole
//! log at once, for short logs and tools.

use crate::error::{Error, Result};

use super::log::{Input, Record};
use super::store::StateStore;

/// Records in a page.
pub const PAGE: usize = 1024;

/// The records of an app's log after a given one, a page at a time.
pub struct LogPages<'a, S: StateStore + ?Sized> {
    store: &'a S,
    app: &'a str,
    /// The seq of the last row read from the store.
    last: u64,
    page: std::vec::IntoIter<Record>,
    /// No more rows in the store.
    done: bool,
    /// Damaged records cut from the end.
    cut: u64,
}

impl<'a, S: StateStore + ?Sized> LogPages<'a, S> {
    /// The records of `app` after record `after`.
    pub fn new(store: &'a S, app: &'a str, after: u64) -> Self {
        LogPages {
            store,
            app,
            last: after,
            page: Vec::new().into_iter(),
            done: false,
            cut: 0,
        }
    }

    /// The next record, in order; `None` after the last.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(record) = self.page.next() {
                return Ok(Some(record));
            }
            if self.done {
                return Ok(None);
            }
            self.next_page()?;
        }
    }

    /// Damaged records cut from the log's end, once it was read to it.
    pub fn cut(&self) -> u64 {
        self.cut
    }

    fn next_page(&mut self) -> Result<()> {
        let rows = self.store.log_rows(self.app, self.last, PAGE)?;
        self.done = rows.len() < PAGE;
        let after = self.last;
        if let Some((seq, _)) = rows.last() {
            self.last = *seq;
        }
        let (read, torn_from) = sound_records(self.app, after, &rows)?;
        if let Some(from) = torn_from {
            // Damage is only the log's end if no record after it is sound,
            // on this page or any later one.
            let mut later = self.last;
            let mut cut = read.cut;
            loop {
                let rows = self.store.log_rows(self.app, later, PAGE)?;
                if rows
                    .iter()
                    .any(|(seq, bytes)| Record::decode(*seq, bytes).is_ok())
                {
                    return Err(damaged_before_sound(self.app, from));
                }
                cut += rows.len() as u64;
                match rows.last() {
                    Some((seq, _)) if rows.len() == PAGE => later = *seq,
                    _ => break,
                }
            }
            self.store.cut_log(self.app, from)?;
            self.cut = cut;
            self.done = true;
        }
        self.page = read.records.into_iter();
        Ok(())
    }
}

/// An app's log as read back: the records that check out, in order, and
/// how many damaged records at its end were cut (a write torn by a crash).
#[derive(Debug, Default)]
pub struct LogRead {
    pub records: Vec<Record>,
    pub cut: u64,
}

/// The app's log after record `after`, all of it at once: for short logs
/// and tools (a replay reads it a page at a time). Damaged records at the
/// end are cut from the store (they were never acknowledged: a crash tore
/// the write); a damaged record before a sound one is an error.
pub fn read_log<S: StateStore + ?Sized>(store: &S, app: &str, after: u64) -> Result<LogRead> {
    let mut pages = LogPages::new(store, app, after);
    let mut read = LogRead::default();
    while let Some(record) = pages.next_record()? {
        read.records.push(record);
    }
    read.cut = pages.cut();
    Ok(read)
}

/// Where a replay of an app from its start begins ([`replay_start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayStart {
    /// The last fresh deploy (0: the app's `init`): the replay starts after it.
    pub fresh: u64,
    /// The last deploy of any kind (0: none): the records after it were
    /// answered by the code a restore runs, so they must come out as recorded.
    pub deploy: u64,
    /// Damaged records cut from the log's end on the way.
    pub cut: u64,
}

/// Reads `app`'s whole log, a page at a time, for where a replay from its
/// start begins. [`Error::HistoryDropped`] if retention dropped the history
/// before the first record kept and no fresh deploy is after it: the app
/// cannot be replayed from that start.
pub fn replay_start<S: StateStore + ?Sized>(store: &S, app: &str) -> Result<ReplayStart> {
    let first_kept = store.log_start(app)?.unwrap_or(1);
    let mut pages = LogPages::new(store, app, first_kept - 1);
    let (mut fresh, mut deploy) = (None, 0);
    while let Some(record) = pages.next_record()? {
        if let Input::Deploy { fresh: anew, .. } = record.input {
            deploy = record.seq;
            if anew {
                fresh = Some(record.seq);
            }
        }
    }
    let fresh = match fresh {
        Some(seq) => seq,
        None if first_kept <= 1 => 0,
        None => {
            return Err(Error::HistoryDropped {
                app: app.to_string(),
                first_kept,
            })
        }
    };
    Ok(ReplayStart {
        fresh,
        deploy,
        cut: pages.cut(),
    })
}

/// A damaged record `seq` with a sound one after it: not a torn write.
fn damaged_before_sound(app: &str, seq: u64) -> Error {
    Error::BadLog {
        reason: format!(
            "record {seq} of app `{app}` is damaged, and records after it are not: the log \
             cannot be replayed past it"
        ),
    }
}

/// An app's log rows as a store read them after record `after`, in order:
/// `(seq, bytes)`. Returns the records that check out and, if damaged
/// records end the log (a write a crash tore: never acknowledged), the seq
/// the store must cut from. A damaged record before a sound one is an error.
fn sound_records(app: &str, after: u64, rows: &[(u64, Vec<u8>)]) -> Result<(LogRead, Option<u64>)> {
    let mut read = LogRead::default();
    for (index, (seq, bytes)) in rows.iter().enumerate() {
        // Each record in its place: the one after the last.
        let expected = after + 1 + index as u64;
        // In its place: read as its row's seq, the one after the last.
        let record = Record::decode(*seq, bytes)
            .ok()
            .filter(|_| *seq == expected);
        let Some(record) = record else {
            let sound_after = rows[index + 1..]
                .iter()
                .any(|(seq, b)| Record::decode(*seq, b).is_ok());
            if sound_after {
                return Err(damaged_before_sound(app, *seq));
            }
            read.cut = (rows.len() - index) as u64;
            return Ok((read, Some(*seq)));
        };
        read.records.push(record);
    }
    Ok((read, None))
}
