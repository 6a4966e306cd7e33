//! The unsynced state of one file: what was written or truncated since its
//! last `fsync`, kept in memory over the backing file ("the disk").
//!
//! Three numbers and a map describe it, which is enough to answer a read of
//! the merged view, to persist it on `fsync`, and to forget it on a power
//! loss:
//! - `size`: the file's size as programs see it now;
//! - `kept_len`: the backing bytes at offsets below this still show through;
//!   a truncation lowers it, so that truncating and then extending a file
//!   reads zeros where the old bytes were, as POSIX wants;
//! - `extents`: the written bytes, as disjoint, non-adjacent runs by offset.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Unsynced writes and size changes of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFile {
    size: u64,
    kept_len: u64,
    extents: BTreeMap<u64, Vec<u8>>,
}

impl PendingFile {
    /// Nothing unsynced yet over a backing file of `backing_len` bytes.
    pub fn new(backing_len: u64) -> PendingFile {
        PendingFile {
            size: backing_len,
            kept_len: backing_len,
            extents: BTreeMap::new(),
        }
    }

    /// The file's size in the merged view.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes written and not yet synced (what a power loss would lose, not
    /// counting size changes).
    pub fn unsynced_bytes(&self) -> u64 {
        self.extents.values().map(|data| data.len() as u64).sum()
    }

    /// Records a write of `data` at `offset`, extending the file if it ends
    /// past the current size.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Runs that overlap or touch [offset, end] merge with the new bytes,
        // so that the runs stay disjoint and an appending writer (a log)
        // grows one run instead of many.
        let touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(start, run)| *start + run.len() as u64 >= offset)
            .map(|(start, _)| *start)
            .collect();
        let merged_start = touching.last().map_or(offset, |&first| first.min(offset));
        let merged_end = touching
            .iter()
            .map(|start| start + self.extents[start].len() as u64)
            .fold(end, u64::max);
        // Reuse the run that already starts where the merged one does: an
        // append then costs an amortised copy of the new bytes only.
        let mut merged = if touching.last() == Some(&merged_start) {
            self.extents.remove(&merged_start).unwrap_or_default()
        } else {
            Vec::new()
        };
        merged.resize((merged_end - merged_start) as usize, 0);
        for start in touching {
            if let Some(run) = self.extents.remove(&start) {
                let at = (start - merged_start) as usize;
                merged[at..at + run.len()].copy_from_slice(&run);
            }
        }
        let at = (offset - merged_start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(merged_start, merged);
        self.size = self.size.max(end);
    }

    /// Records a change of size (`truncate`/`ftruncate`), shrinking or
    /// extending with zeros.
    pub fn set_size(&mut self, size: u64) {
        if size < self.size {
            self.extents.retain(|&start, _| start < size);
            if let Some((&start, run)) = self.extents.range_mut(..size).next_back() {
                run.truncate((size - start).min(run.len() as u64) as usize);
            }
            self.kept_len = self.kept_len.min(size);
        }
        self.size = size;
    }

    /// Reads up to `len` bytes at `offset` of the merged view: written bytes
    /// over the backing bytes that still show through, zeros elsewhere.
    /// `read_backing(offset, buf)` must fill `buf` from the backing file,
    /// with zeros past its end.
    pub fn read(
        &self,
        offset: u64,
        len: usize,
        read_backing: impl FnOnce(u64, &mut [u8]) -> io::Result<()>,
    ) -> io::Result<Vec<u8>> {
        let end = self.size.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0; (end - offset) as usize];
        let backed_end = end.min(self.kept_len);
        if offset < backed_end {
            read_backing(offset, &mut buf[..(backed_end - offset) as usize])?;
        }
        for (&start, run) in self.extents.range(..end).rev() {
            let run_end = start + run.len() as u64;
            if run_end <= offset {
                break;
            }
            let from = start.max(offset);
            let to = run_end.min(end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&run[(from - start) as usize..(to - start) as usize]);
        }
        Ok(buf)
    }

    /// Makes `backing` hold the merged view (the caller then syncs it):
    /// cut what a truncation removed, write the runs, set the size.
    pub fn write_to(&self, backing: &File) -> io::Result<()> {
        if self.kept_len < backing.metadata()?.len() {
            backing.set_len(self.kept_len)?;
        }
        for (&start, run) in &self.extents {
            backing.write_all_at(run, start)?;
        }
        backing.set_len(self.size)
    }
}

/// Fills `buf` from `file` at `offset`, with zeros past its end.
pub fn read_backing(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[done..].fill(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the whole merged view over `disk`.
    fn view(pending: &PendingFile, disk: &[u8]) -> Vec<u8> {
        pending
            .read(0, usize::MAX / 2, |offset, buf| {
                let offset = offset as usize;
                for (i, byte) in buf.iter_mut().enumerate() {
                    *byte = disk.get(offset + i).copied().unwrap_or(0);
                }
                Ok(())
            })
            .unwrap()
    }

    #[test]
    fn a_write_shows_over_the_disk() {
        let disk = b"0123456789";
        let mut pending = PendingFile::new(10);
        pending.write(4, b"ab");
        assert_eq!(view(&pending, disk), b"0123ab6789");
        assert_eq!(pending.unsynced_bytes(), 2);
        assert_eq!(pending.size(), 10);
    }

    #[test]
    fn a_write_past_the_end_extends_with_zeros_between() {
        let mut pending = PendingFile::new(4);
        pending.write(6, b"xy");
        assert_eq!(view(&pending, b"abcd"), b"abcd\0\0xy");
    }

    #[test]
    fn truncating_then_extending_hides_the_old_bytes() {
        let mut pending = PendingFile::new(10);
        pending.set_size(4);
        assert_eq!(view(&pending, b"0123456789"), b"0123");
        pending.set_size(8);
        assert_eq!(view(&pending, b"0123456789"), b"0123\0\0\0\0");
    }

    #[test]
    fn truncation_cuts_written_runs() {
        let mut pending = PendingFile::new(0);
        pending.write(0, b"hello world");
        pending.set_size(5);
        pending.set_size(7);
        assert_eq!(view(&pending, b""), b"hello\0\0");
        assert_eq!(pending.unsynced_bytes(), 5);
    }

    #[test]
    fn adjacent_and_overlapping_writes_merge_into_one_run() {
        let mut pending = PendingFile::new(0);
        pending.write(0, b"aaaa");
        pending.write(4, b"bbbb");
        pending.write(10, b"cc");
        pending.write(2, b"XXXXXXXXX");
        assert_eq!(pending.extents.len(), 1);
        assert_eq!(view(&pending, b""), b"aaXXXXXXXXXc");
        assert_eq!(pending.unsynced_bytes(), 12);
    }

    #[test]
    fn a_read_in_the_middle_sees_only_its_range() {
        let mut pending = PendingFile::new(10);
        pending.write(2, b"AB");
        pending.write(7, b"C");
        let got = pending
            .read(3, 5, |offset, buf| {
                assert_eq!((offset, buf.len()), (3, 5));
                buf.copy_from_slice(b"34567");
                Ok(())
            })
            .unwrap();
        assert_eq!(got, b"B456C");
        assert!(pending
            .read(10, 5, |_, _| unreachable!())
            .unwrap()
            .is_empty());
    }

    /// A tiny deterministic generator, so the model test needs no crate.
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Random writes and truncations agree with a plain byte vector, both in
    /// the merged view and after `write_to` a real file.
    #[test]
    fn random_operations_match_a_byte_vector_model() {
        let mut rng = Lcg(7);
        for round in 0..200 {
            let disk_len = rng.below(64) as usize;
            let disk: Vec<u8> = (0..disk_len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut model = disk.clone();
            let mut pending = PendingFile::new(disk_len as u64);
            for step in 0..20 {
                if rng.below(4) == 0 {
                    let size = rng.below(96) as usize;
                    model.resize(size, 0);
                    pending.set_size(size as u64);
                } else {
                    let offset = rng.below(96) as usize;
                    let data: Vec<u8> = (0..rng.below(24)).map(|_| b'A' + step as u8).collect();
                    if !data.is_empty() {
                        if model.len() < offset + data.len() {
                            model.resize(offset + data.len(), 0);
                        }
                        model[offset..offset + data.len()].copy_from_slice(&data);
                    }
                    pending.write(offset as u64, &data);
                }
                assert_eq!(view(&pending, &disk), model, "round {round} step {step}");
            }
            let path = std::env::temp_dir()
                .join(format!("powerloss-pending-{}-{round}", std::process::id()));
            std::fs::write(&path, &disk).unwrap();
            let file = File::options().read(true).write(true).open(&path).unwrap();
            pending.write_to(&file).unwrap();
            drop(file);
            assert_eq!(
                std::fs::read(&path).unwrap(),
                model,
                "round {round} on disk"
            );
            std::fs::remove_file(&path).unwrap();
        }
    }
}
