//! The checks, per app, of the clients' history against the app's log as
//! PostgreSQL holds it at the end:
//!
//! - (a) every event answered 200 is in its app's log, exactly once;
//! - (b) no event that certainly failed is in it;
//! - (c) each 200 agrees with the log's order: `ok(count)` is the count-th
//!   event the app counted (its position among the log's Event records the
//!   app answered: the counter counts every event it takes, and a fault or a
//!   refusal leaves its count as it was), so counts answered 200 never repeat;
//! - (d) the log holds nothing no client sent to that app;
//! - (e) real time: an event answered 200 before another was sent has the
//!   smaller count (with (c), the counter is linearizable);
//!
//! and that every 200 echoed its own event.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use elmbox::durable::log::{Input, Outcome as Logged, Record};
use elmbox::durable::log_pages::read_log;
use elmbox::durable::StateLocation;

use crate::history::{Entry, Outcome};

/// Violations of one kind and app shown in full at most; the rest counted.
const SHOWN: usize = 20;

#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: &'static str,
    pub app: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Event records read from the logs.
    pub logged_events: u64,
    /// History entries checked against them.
    pub checked: u64,
    /// Events answered neither 200 nor a certain failure, and of those, how
    /// many the logs hold.
    pub unknown: u64,
    pub unknown_logged: u64,
    /// Records other than answered events, by kind.
    pub other_records: BTreeMap<String, u64>,
    pub violations: Vec<Violation>,
    /// Violations past [`SHOWN`] per kind and app, not detailed.
    pub more: BTreeMap<(&'static str, String), u64>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn violation_count(&self) -> u64 {
        self.violations.len() as u64 + self.more.values().sum::<u64>()
    }

    pub fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut kinds = BTreeMap::new();
        for v in &self.violations {
            *kinds.entry(v.kind).or_default() += 1;
        }
        for ((kind, _), n) in &self.more {
            *kinds.entry(*kind).or_default() += n;
        }
        kinds
    }

    fn add(&mut self, kind: &'static str, app: &str, detail: String) {
        let shown = self
            .violations
            .iter()
            .filter(|v| v.kind == kind && v.app == app)
            .count();
        if shown < SHOWN {
            self.violations.push(Violation {
                kind,
                app: app.to_string(),
                detail,
            });
        } else {
            *self.more.entry((kind, app.to_string())).or_default() += 1;
        }
    }
}

/// Every app's log records, read from the database at `url` (read-only,
/// as `elmbox state` does).
pub fn read_logs(
    url: &str,
    apps: &[String],
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, Vec<Record>>, String> {
    let store = StateLocation::parse(url)
        .open_read_only()
        .map_err(|e| format!("opening the store to read it: {e}"))?;
    let stored = store
        .apps()
        .map_err(|e| format!("listing the stored apps: {e}"))?;
    for summary in &stored {
        if !apps.contains(&summary.app.name) {
            notes.push(format!(
                "the store holds an app nobody deployed: {}",
                summary.app.name
            ));
        }
    }
    let mut logs = BTreeMap::new();
    for app in apps {
        let read =
            read_log(&*store, app, 0).map_err(|e| format!("reading the log of {app}: {e}"))?;
        if read.cut > 0 {
            notes.push(format!(
                "{app}: {} damaged record(s) at the log's end",
                read.cut
            ));
        }
        logs.insert(app.clone(), read.records);
    }
    Ok(logs)
}

/// One Event record of an app's log.
struct LogEvent {
    seq: u64,
    text: String,
    outcome: Logged,
    /// Its count, if the app answered it (1, 2, ...).
    count: Option<u64>,
}

fn describe(event: &LogEvent) -> String {
    let counted = match event.count {
        Some(count) => format!("count {count}"),
        None => format!("{:?}, not counted", event.outcome),
    };
    format!("seq {} `{}` ({counted})", event.seq, event.text)
}

/// The log around its `at`-th Event record.
fn excerpt(events: &[LogEvent], at: usize) -> String {
    let from = at.saturating_sub(2);
    let to = (at + 3).min(events.len());
    let mut text = String::new();
    for (i, event) in events.iter().enumerate().take(to).skip(from) {
        let mark = if i == at { ">" } else { " " };
        let _ = writeln!(text, "      {mark} {}", describe(event));
    }
    text
}

pub fn check(apps: &[String], history: &[Entry], logs: &BTreeMap<String, Vec<Record>>) -> Report {
    let mut report = Report::default();
    // Which app each event was sent to, for (d)'s details.
    let sent_to: HashMap<&str, usize> = history.iter().map(|e| (e.event.as_str(), e.app)).collect();
    for (index, app) in apps.iter().enumerate() {
        let records = logs.get(app).map(Vec::as_slice).unwrap_or_default();
        let mut events = Vec::new();
        let mut counted = 0;
        for record in records {
            match &record.input {
                Input::Event(bytes) => {
                    let count = match record.outcome {
                        Logged::Answered { .. } => {
                            counted += 1;
                            Some(counted)
                        }
                        other => {
                            *report
                                .other_records
                                .entry(format!("event {other:?}"))
                                .or_default() += 1;
                            None
                        }
                    };
                    events.push(LogEvent {
                        seq: record.seq,
                        text: String::from_utf8_lossy(bytes).into_owned(),
                        outcome: record.outcome,
                        count,
                    });
                }
                other => {
                    let kind = match other {
                        Input::Advance(_) => "advance",
                        Input::Wake => "wake",
                        Input::Deploy { .. } => "deploy",
                        Input::HttpResponse(_) => "http response",
                        Input::Event(_) => unreachable!(),
                    };
                    *report.other_records.entry(kind.into()).or_default() += 1;
                }
            }
        }
        report.logged_events += events.len() as u64;
        let mut at: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            at.entry(event.text.as_str()).or_default().push(i);
        }
        let mine: Vec<&Entry> = history.iter().filter(|e| e.app == index).collect();
        let by_event: HashMap<&str, &Entry> = mine.iter().map(|e| (e.event.as_str(), *e)).collect();

        // (a), and (d)'s other half: an event twice in the log.
        for (text, places) in &at {
            if places.len() > 1 {
                let sent = by_event
                    .get(text)
                    .map_or("never sent".into(), |e| e.to_string());
                let mut detail = format!(
                    "`{text}` is in the log {} times; client: {sent}\n",
                    places.len()
                );
                for &i in places {
                    detail += &excerpt(&events, i);
                }
                report.add("(a) applied more than once", app, detail);
            }
        }
        for entry in &mine {
            report.checked += 1;
            let place = at.get(entry.event.as_str()).map(|p| p[0]);
            match (entry.outcome, place) {
                (Outcome::Ok(_), None) => report.add(
                    "(a) answered 200, not in the log",
                    app,
                    format!(
                        "client: {entry}\n      the log holds {} events",
                        events.len()
                    ),
                ),
                (Outcome::Ok(count), Some(i)) if events[i].count != Some(count) => report.add(
                    "(c) count answered is not the log's",
                    app,
                    format!(
                        "client: {entry}\n      the log has it as {}\n{}",
                        describe(&events[i]),
                        excerpt(&events, i)
                    ),
                ),
                (Outcome::Ok(_), Some(_)) => {}
                (Outcome::Fail, Some(i)) => report.add(
                    "(b) failed, yet in the log",
                    app,
                    format!(
                        "client: {entry}\n      the log has it as {}\n{}",
                        describe(&events[i]),
                        excerpt(&events, i)
                    ),
                ),
                (Outcome::Fail, None) => {}
                (Outcome::Unknown, place) => {
                    report.unknown += 1;
                    report.unknown_logged += place.is_some() as u64;
                }
            }
            if matches!(entry.outcome, Outcome::Ok(_)) && !entry.echoed {
                report.add("200 echoed another event", app, format!("client: {entry}"));
            }
        }

        // (c): counts answered 200 never repeat.
        let mut by_count: BTreeMap<u64, Vec<&Entry>> = BTreeMap::new();
        for entry in &mine {
            if let Outcome::Ok(count) = entry.outcome {
                by_count.entry(count).or_default().push(entry);
            }
        }
        for (count, entries) in &by_count {
            if entries.len() > 1 {
                let clients: Vec<String> = entries.iter().map(|e| format!("\n      {e}")).collect();
                report.add(
                    "(c) count answered 200 twice",
                    app,
                    format!("count {count} answered to:{}", clients.concat()),
                );
            }
        }

        // (d): nothing in the log that no client sent to this app.
        for (i, event) in events.iter().enumerate() {
            if by_event.contains_key(event.text.as_str()) {
                continue;
            }
            let elsewhere = match sent_to.get(event.text.as_str()) {
                Some(&other) => format!("sent to app {}", apps[other]),
                None => "sent by no client".into(),
            };
            report.add(
                "(d) in the log, never sent to this app",
                app,
                format!("{} ({elsewhere})\n{}", describe(event), excerpt(&events, i)),
            );
        }

        // (e): going down the counts, the earliest answer among the higher
        // counts must not come before this one was sent.
        let mut earliest_higher: Option<&Entry> = None;
        for entries in by_count.values().rev() {
            if let Some(higher) = earliest_higher {
                for entry in entries {
                    if higher.done_us < entry.sent_us {
                        report.add(
                            "(e) real-time order broken",
                            app,
                            format!(
                                "{higher}\n      was answered before this was sent, \
                                 with a higher count:\n      {entry}"
                            ),
                        );
                    }
                }
            }
            for entry in entries {
                if earliest_higher.is_none_or(|h| entry.done_us < h.done_us) {
                    earliest_higher = Some(entry);
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(texts: &[&str]) -> Vec<Record> {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| Record {
                seq: i as u64 + 1,
                clock_ms: 0,
                input: Input::Event(text.as_bytes().to_vec()),
                outcome: Logged::Answered { answer: 0 },
            })
            .collect()
    }

    fn entry(event: &str, outcome: Outcome, sent_us: u64, done_us: u64) -> Entry {
        Entry {
            app: 0,
            event: event.into(),
            outcome,
            why: String::new(),
            node: "n1".into(),
            sent_us,
            done_us,
            echoed: true,
        }
    }

    fn kinds(history: &[Entry], log: &[&str]) -> Vec<&'static str> {
        let apps = vec!["a".to_string()];
        let logs = BTreeMap::from([("a".to_string(), logged(log))]);
        let report = check(&apps, history, &logs);
        report.by_kind().into_keys().collect()
    }

    #[test]
    fn a_history_the_log_agrees_with_passes() {
        let history = [
            entry("x", Outcome::Ok(1), 0, 10),
            entry("y", Outcome::Unknown, 5, 20),
            entry("z", Outcome::Ok(3), 15, 30),
            entry("w", Outcome::Fail, 15, 30),
            entry("v", Outcome::Unknown, 15, 30),
        ];
        assert!(kinds(&history, &["x", "y", "z"]).is_empty());
    }

    #[test]
    fn each_kind_of_violation_is_caught() {
        let ok = |e, c| entry(e, Outcome::Ok(c), 0, 10);
        assert_eq!(
            kinds(&[ok("x", 1)], &[]),
            ["(a) answered 200, not in the log"]
        );
        assert_eq!(
            kinds(&[ok("x", 1)], &["x", "x"]),
            ["(a) applied more than once"]
        );
        assert_eq!(
            kinds(&[entry("x", Outcome::Fail, 0, 1)], &["x"]),
            ["(b) failed, yet in the log"]
        );
        assert_eq!(
            kinds(&[ok("x", 2)], &["x"]),
            ["(c) count answered is not the log's"]
        );
        assert_eq!(
            kinds(&[ok("x", 1), ok("y", 1)], &["x"]),
            [
                "(a) answered 200, not in the log",
                "(c) count answered 200 twice"
            ]
        );
        assert_eq!(
            kinds(&[], &["x"]),
            ["(d) in the log, never sent to this app"]
        );
        // y was answered (count 2) before x was sent, yet x has count 1.
        assert_eq!(
            kinds(
                &[
                    entry("x", Outcome::Ok(1), 50, 60),
                    entry("y", Outcome::Ok(2), 0, 10)
                ],
                &["x", "y"]
            ),
            ["(e) real-time order broken"]
        );
        let mut wrong_echo = ok("x", 1);
        wrong_echo.echoed = false;
        assert_eq!(kinds(&[wrong_echo], &["x"]), ["200 echoed another event"]);
    }
}
