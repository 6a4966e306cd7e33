//! The line protocol of `elmbox run` and of standalone modules: one event per
//! `\n`-terminated line on stdin (a trailing `\r` is dropped, the last line
//! may lack its `\n`), and for each event exactly one line on stdout, the
//! JSON array of what the app sent on its outgoing port. Both sides read
//! input with [`read_line`], so they agree on every edge case.

use std::io::{self, BufRead, Read};

/// One line of input, or the size of a line too long to keep.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line is in the buffer, without its line ending.
    Event,
    /// The line was longer than the limit: skipped, with its size in bytes.
    TooLong(usize),
}

/// Reads one line into `line`, never holding more than `limit` + 2 bytes of
/// it: longer lines are skipped to their end and reported with their size.
/// `None` at end of input.
pub fn read_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<Line>> {
    line.clear();
    let read = input
        .by_ref()
        .take(limit as u64 + 2)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(None);
    }
    let complete = line.last() == Some(&b'\n');
    if complete {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() <= limit {
        return Ok(Some(Line::Event));
    }
    // Over the limit: skip to the end of the line, counting its size.
    let mut size = line.len();
    if !complete {
        loop {
            let chunk = input.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    size += i;
                    input.consume(i + 1);
                    break;
                }
                None => {
                    let n = chunk.len();
                    size += n;
                    input.consume(n);
                }
            }
        }
    }
    line.clear();
    Ok(Some(Line::TooLong(size)))
}

/// Exit status of a line-protocol run: every event handled.
pub const EXIT_OK: u8 = 0;
/// Some events failed; the app carried on.
pub const EXIT_SOME_FAILED: u8 = 1;
/// The app could not be loaded.
pub const EXIT_LOAD_FAILED: u8 = 2;
/// The app failed and stopped taking events.
pub const EXIT_APP_FAILED: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8], limit: usize) -> Vec<Result<String, usize>> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(kind) = read_line(&mut reader, &mut line, limit).unwrap() {
            out.push(match kind {
                Line::Event => Ok(String::from_utf8(line.clone()).unwrap()),
                Line::TooLong(n) => Err(n),
            });
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            lines(b"a\r\nbb\n\nccc", 10),
            vec![
                Ok("a".into()),
                Ok("bb".into()),
                Ok("".into()),
                Ok("ccc".into())
            ]
        );
    }

    #[test]
    fn skips_overlong_lines_whole() {
        assert_eq!(
            lines(b"ok\n0123456789abcdef\nnext\n0123456789", 5),
            vec![Ok("ok".into()), Err(16), Ok("next".into()), Err(10)]
        );
    }
}
