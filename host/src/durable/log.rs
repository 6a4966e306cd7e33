//! The event log's records: what a durable app received, in order, and what
//! came of it. Each record carries a CRC-32 of its bytes, so a damaged or
//! torn record is recognised and never replayed as if it were an event.

use crate::error::{Error, Result};

/// What a durable app received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An event, as `App::dispatch` takes it: text or JSON as the app's
    /// settings say, or `{"port": NAME, "value": VALUE}` with all ports.
    Event(Vec<u8>),
    /// The virtual clock moved forward by this many milliseconds (timers
    /// due by then fired, each at its own instant).
    Advance(u64),
    /// The app was woken for its timers: its clock moved to the record's
    /// instant, catching up (what came due by then fired once, then).
    Wake,
    /// A new version of the app's code was deployed: by replaying the log
    /// through it, or (`fresh`) starting from its `init`. `code` is the
    /// content hash of its code and settings.
    Deploy { code: String, fresh: bool },
    /// The answer to one of the app's outgoing HTTP requests, as
    /// `elmbox_abi::HttpResponse::encode` wrote it: a replay hands it to
    /// the app again instead of sending the request again.
    HttpResponse(Vec<u8>),
}

/// What came of an input, so a replay can check it comes out the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled; `answer` is the CRC-32 of the answer's JSON text.
    Answered { answer: u32 },
    /// The app refused it and went on (a bad event, a port's rejection).
    Refused,
    /// The app faulted on it: it is skipped on every replay.
    Faulted,
}

/// One entry of an app's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1, 2, 3, ... per app.
    pub seq: u64,
    /// The app's clock (ms since load). For an event or a wake, the instant
    /// it was handled at: the clock moves there first, never backwards, so
    /// a replay sees the times the first run saw. For an advance, where
    /// the clock was before it.
    pub clock_ms: u64,
    pub input: Input,
    pub outcome: Outcome,
}

/// Records written before version 2 (every field fixed-width, the seq
/// inside): still read.
const VERSION_1: u8 = 1;
/// Records as written now: the seq is the row's, not repeated inside.
const VERSION_2: u8 = 2;

impl Record {
    /// Version 2: `version u8, clock varint, kinds u8 (input tag | outcome
    /// tag << 4), answer crc u32 (when answered), payload, crc32 u32`,
    /// the crc over the seq (u64, little-endian) then everything before it.
    /// The seq is the store's key of the row, so it is not kept twice; it
    /// is in the checksum, so a record read under another seq is damage.
    /// An answered event costs 10 bytes besides its own and its instant's
    /// varint (version 1: 31).
    pub fn encode(&self) -> Vec<u8> {
        let (input_tag, payload): (u8, &[u8]) = match &self.input {
            Input::Event(bytes) => (0, bytes),
            Input::Advance(ms) => return self.encode_with(1, &ms.to_le_bytes()),
            Input::Deploy { code, fresh } => (if *fresh { 3 } else { 2 }, code.as_bytes()),
            Input::Wake => (4, &[]),
            Input::HttpResponse(bytes) => (5, bytes),
        };
        self.encode_with(input_tag, payload)
    }

    fn encode_with(&self, input_tag: u8, payload: &[u8]) -> Vec<u8> {
        let (outcome_tag, answer) = match self.outcome {
            Outcome::Answered { answer } => (0u8, Some(answer)),
            Outcome::Refused => (1, None),
            Outcome::Faulted => (2, None),
        };
        let mut out = Vec::with_capacity(payload.len() + 20);
        out.push(VERSION_2);
        push_varint(&mut out, self.clock_ms);
        out.push(input_tag | outcome_tag << 4);
        if let Some(answer) = answer {
            out.extend_from_slice(&answer.to_le_bytes());
        }
        out.extend_from_slice(payload);
        let crc = checksum(self.seq, &out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads back the record the store keeps as its `seq`-th; a record
    /// whose checksum or shape is wrong, or that is another seq's, is
    /// refused, saying so.
    pub fn decode(seq: u64, bytes: &[u8]) -> Result<Record> {
        let bad = |why: &str| Error::BadLog {
            reason: why.to_string(),
        };
        let (body, crc) = bytes
            .split_last_chunk::<4>()
            .ok_or_else(|| bad("a record is too short"))?;
        let crc = u32::from_le_bytes(*crc);
        match body.first() {
            Some(&VERSION_2) if checksum(seq, body) == crc => decode_2(seq, &body[1..]),
            Some(&VERSION_1) if crc32fast::hash(body) == crc => {
                let record = decode_1(body)?;
                match record.seq == seq {
                    true => Ok(record),
                    false => Err(bad("a record is not in its place in the log")),
                }
            }
            Some(&VERSION_1 | &VERSION_2) => Err(bad("a record's checksum does not match")),
            _ => Err(bad("a record is of an unknown version")),
        }
    }
}

/// A version 2 record's CRC-32: its seq, then its bytes.
fn checksum(seq: u64, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(body);
    hasher.finalize()
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A varint at the start of `bytes`, and the bytes after it.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (at, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * at as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, &bytes[at + 1..]));
        }
    }
    None
}

fn input(tag: u8, payload: &[u8]) -> Result<Input> {
    let bad = |why: &str| Error::BadLog {
        reason: why.to_string(),
    };
    Ok(match tag {
        0 => Input::Event(payload.to_vec()),
        1 => Input::Advance(u64::from_le_bytes(
            payload
                .try_into()
                .map_err(|_| bad("a clock record is malformed"))?,
        )),
        2 | 3 => Input::Deploy {
            code: String::from_utf8(payload.to_vec())
                .map_err(|_| bad("a deploy record is malformed"))?,
            fresh: tag == 3,
        },
        4 if payload.is_empty() => Input::Wake,
        4 => return Err(bad("a wake record is malformed")),
        5 => Input::HttpResponse(payload.to_vec()),
        _ => return Err(bad("a record holds an unknown kind of input")),
    })
}

fn outcome(tag: u8, answer: u32) -> Result<Outcome> {
    match tag {
        0 => Ok(Outcome::Answered { answer }),
        1 => Ok(Outcome::Refused),
        2 => Ok(Outcome::Faulted),
        _ => Err(Error::BadLog {
            reason: "a record holds an unknown outcome".into(),
        }),
    }
}

/// A version 2 record's fields, after its version byte.
fn decode_2(seq: u64, fields: &[u8]) -> Result<Record> {
    let cut = || Error::BadLog {
        reason: "a record is cut short".into(),
    };
    let (clock_ms, rest) = read_varint(fields).ok_or_else(cut)?;
    let (&kinds, rest) = rest.split_first().ok_or_else(cut)?;
    let (input_tag, outcome_tag) = (kinds & 0x0f, kinds >> 4);
    let (answer, payload) = match outcome_tag {
        0 => {
            let (answer, payload) = rest.split_first_chunk::<4>().ok_or_else(cut)?;
            (u32::from_le_bytes(*answer), payload)
        }
        _ => (0, rest),
    };
    Ok(Record {
        seq,
        clock_ms,
        input: input(input_tag, payload)?,
        outcome: outcome(outcome_tag, answer)?,
    })
}

/// A version 1 record, its checksum checked: `version u8, seq u64, clock
/// u64, input tag u8, outcome tag u8, answer crc u32, payload len u32,
/// payload` (little-endian).
fn decode_1(body: &[u8]) -> Result<Record> {
    let bad = |why: &str| Error::BadLog {
        reason: why.to_string(),
    };
    let fixed = body.get(..27).ok_or_else(|| bad("a record is cut short"))?;
    let u64_at = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8"));
    let u32_at = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().expect("4"));
    let payload = &body[27..];
    if payload.len() != u32_at(23) as usize {
        return Err(bad("a record's payload is not the size it says"));
    }
    Ok(Record {
        seq: u64_at(1),
        clock_ms: u64_at(9),
        input: input(fixed[17], payload)?,
        outcome: outcome(fixed[18], u32_at(19))?,
    })
}

/// The CRC-32 of an answer's JSON text, as a record keeps it.
pub fn answer_checksum(answer: &str) -> u32 {
    crc32fast::hash(answer.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_record() -> Vec<Record> {
        vec![
            Record {
                seq: 1,
                clock_ms: 0,
                input: Input::Event(br#"{"port":"p","value":[1,"\u00e9"]}"#.to_vec()),
                outcome: Outcome::Answered {
                    answer: 0xDEAD_BEEF,
                },
            },
            Record {
                seq: 2,
                clock_ms: 5,
                input: Input::Advance(1000),
                outcome: Outcome::Refused,
            },
            Record {
                seq: u64::MAX,
                clock_ms: u64::MAX,
                input: Input::Deploy {
                    code: "ab12".into(),
                    fresh: true,
                },
                outcome: Outcome::Faulted,
            },
            Record {
                seq: 4,
                clock_ms: 1_000_000,
                input: Input::Wake,
                outcome: Outcome::Answered { answer: 7 },
            },
            Record {
                seq: 3,
                clock_ms: 7,
                input: Input::Event(Vec::new()),
                outcome: Outcome::Answered { answer: 0 },
            },
            Record {
                seq: 5,
                clock_ms: 9,
                input: Input::HttpResponse(b"\x05\0\0\0{...}\x01\0\0\0\xff".to_vec()),
                outcome: Outcome::Refused,
            },
        ]
    }

    #[test]
    fn records_round_trip_whole() {
        for record in every_record() {
            assert_eq!(
                Record::decode(record.seq, &record.encode()).unwrap(),
                record
            );
        }
    }

    /// Version 1, as elmbox wrote it before: fixed-width fields, the seq
    /// inside.
    fn encode_1(record: &Record, input_tag: u8, payload: &[u8]) -> Vec<u8> {
        let (outcome_tag, answer) = match record.outcome {
            Outcome::Answered { answer } => (0u8, answer),
            Outcome::Refused => (1, 0),
            Outcome::Faulted => (2, 0),
        };
        let mut out = vec![VERSION_1];
        out.extend_from_slice(&record.seq.to_le_bytes());
        out.extend_from_slice(&record.clock_ms.to_le_bytes());
        out.extend_from_slice(&[input_tag, outcome_tag]);
        out.extend_from_slice(&answer.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn version_1_records_still_read_and_only_in_their_place() {
        let record = Record {
            seq: 7,
            clock_ms: 1_234,
            input: Input::Event(b"e7".to_vec()),
            outcome: Outcome::Answered { answer: 99 },
        };
        let old = encode_1(&record, 0, b"e7");
        assert_eq!(old.len(), 31 + 2);
        assert_eq!(Record::decode(7, &old).unwrap(), record);
        let e = Record::decode(8, &old).unwrap_err().to_string();
        assert!(e.contains("not in its place"), "{e}");
        // Version 2 keeps the same record in 10 bytes besides the event's
        // and its instant's (1,234 ms: two bytes).
        assert_eq!(record.encode().len(), 10 + 2 + 2);
    }

    #[test]
    fn a_record_read_under_another_seq_is_damage() {
        for record in every_record() {
            let e = Record::decode(record.seq.wrapping_add(1), &record.encode()).unwrap_err();
            assert!(e.to_string().contains("checksum"), "{e}");
        }
    }

    #[test]
    fn any_damage_to_a_record_is_seen() {
        for record in every_record() {
            let bytes = record.encode();
            for at in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x01;
                assert!(
                    Record::decode(record.seq, &damaged).is_err(),
                    "{record:?} byte {at}"
                );
            }
            for cut in 0..bytes.len() {
                assert!(
                    Record::decode(record.seq, &bytes[..cut]).is_err(),
                    "{record:?} cut {cut}"
                );
            }
        }
    }
}
