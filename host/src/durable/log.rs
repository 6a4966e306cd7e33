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

const VERSION: u8 = 1;

impl Record {
    /// `version u8, seq u64, clock u64, input tag u8, outcome tag u8,
    /// answer crc u32, payload len u32, payload, crc32 u32` (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let (input_tag, payload): (u8, Vec<u8>) = match &self.input {
            Input::Event(bytes) => (0, bytes.clone()),
            Input::Advance(ms) => (1, ms.to_le_bytes().to_vec()),
            Input::Deploy { code, fresh } => (if *fresh { 3 } else { 2 }, code.as_bytes().to_vec()),
            Input::Wake => (4, Vec::new()),
            Input::HttpResponse(bytes) => (5, bytes.clone()),
        };
        let (outcome_tag, answer) = match self.outcome {
            Outcome::Answered { answer } => (0u8, answer),
            Outcome::Refused => (1, 0),
            Outcome::Faulted => (2, 0),
        };
        let mut out = Vec::with_capacity(payload.len() + 36);
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.clock_ms.to_le_bytes());
        out.push(input_tag);
        out.push(outcome_tag);
        out.extend_from_slice(&answer.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a record back; a record whose checksum or shape is wrong is
    /// refused, saying so.
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        let bad = |why: &str| Error::BadLog {
            reason: why.to_string(),
        };
        let (body, crc) = bytes
            .split_last_chunk::<4>()
            .ok_or_else(|| bad("a record is too short"))?;
        if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
            return Err(bad("a record's checksum does not match"));
        }
        let fixed = body.get(..27).ok_or_else(|| bad("a record is cut short"))?;
        if fixed[0] != VERSION {
            return Err(bad("a record is of an unknown version"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().expect("4"));
        let (seq, clock_ms) = (u64_at(1), u64_at(9));
        let (input_tag, outcome_tag, answer) = (fixed[17], fixed[18], u32_at(19));
        let payload = &body[27..];
        if payload.len() != u32_at(23) as usize {
            return Err(bad("a record's payload is not the size it says"));
        }
        let input = match input_tag {
            0 => Input::Event(payload.to_vec()),
            1 => Input::Advance(u64::from_le_bytes(
                payload
                    .try_into()
                    .map_err(|_| bad("a clock record is malformed"))?,
            )),
            2 | 3 => Input::Deploy {
                code: String::from_utf8(payload.to_vec())
                    .map_err(|_| bad("a deploy record is malformed"))?,
                fresh: input_tag == 3,
            },
            4 if payload.is_empty() => Input::Wake,
            4 => return Err(bad("a wake record is malformed")),
            5 => Input::HttpResponse(payload.to_vec()),
            _ => return Err(bad("a record holds an unknown kind of input")),
        };
        let outcome = match outcome_tag {
            0 => Outcome::Answered { answer },
            1 => Outcome::Refused,
            2 => Outcome::Faulted,
            _ => return Err(bad("a record holds an unknown outcome")),
        };
        Ok(Record {
            seq,
            clock_ms,
            input,
            outcome,
        })
    }
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
            assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        }
    }

    #[test]
    fn any_damage_to_a_record_is_seen() {
        for record in every_record() {
            let bytes = record.encode();
            for at in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x01;
                assert!(Record::decode(&damaged).is_err(), "{record:?} byte {at}");
            }
            for cut in 0..bytes.len() {
                assert!(
                    Record::decode(&bytes[..cut]).is_err(),
                    "{record:?} cut {cut}"
                );
            }
        }
    }
}
