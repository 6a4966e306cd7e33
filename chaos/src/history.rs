//! What the clients saw: one [`Entry`] per event sent, and the rules that
//! turn an answer into an [`Outcome`]. `Fail` is only for answers that say
//! the event never reached the app (the server turned it away first); an
//! error that may come after the app took it (a commit that failed, a
//! timeout, a reset connection) is `Unknown`, since the server's rule
//! allows such an event to be in the store or not.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200, with the count answered.
    Ok(u64),
    /// Certainly not applied.
    Fail,
    /// Applied or not.
    Unknown,
}

/// One event a client sent, and what came of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub app: usize,
    pub event: String,
    pub outcome: Outcome,
    /// Why a non-200 is what it is (`503 fenced`, `timeout`...); empty for 200.
    pub why: String,
    /// The node that gave the last answer (after redirects).
    pub node: String,
    /// Microseconds since the campaign started: sent, and answered.
    pub sent_us: u64,
    pub done_us: u64,
    /// For a 200: whether the answer echoed this event (the counter
    /// answers `[{"count": n, "event": <the event>}]`).
    pub echoed: bool,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            Outcome::Ok(count) => format!("ok({count})"),
            Outcome::Fail => format!("fail ({})", self.why),
            Outcome::Unknown => format!("unknown ({})", self.why),
        };
        write!(
            f,
            "`{}` via {} sent +{:.3}s answered +{:.3}s: {outcome}",
            self.event,
            self.node,
            self.sent_us as f64 / 1e6,
            self.done_us as f64 / 1e6
        )
    }
}

/// The outcome of an HTTP answer (after redirects) to an event for `app`,
/// and a short label for the tallies. The 503 texts that mean "turned away
/// before the app saw it" come from server/src/routes.rs and
/// server/src/hosted/{mod,nodes}.rs; each is matched whole, so that the
/// reason of a failed commit (any text) cannot pass for one.
pub fn classify(app: &str, status: u16, body: &str) -> (Outcome, String) {
    let body = body.trim_end();
    let quoted = format!("`{app}`");
    let fail = |why: &str| (Outcome::Fail, why.to_string());
    let unknown = |why: String| (Outcome::Unknown, why);
    match status {
        // Hosted::http, Hosted::send, Hosted::locate: no such app here or
        // in the store; nothing queued.
        404 => fail("404 no such app"),
        // Every hop answered 307: no node took it.
        307 => fail("307 redirected too often"),
        // Error::NotTaken: refused before the app saw anything of it.
        503 | 507 if body.starts_with("not taken (the app saw nothing of it): ") => {
            fail(if status == 507 {
                "507 not taken, disk full"
            } else {
                "503 not taken"
            })
        }
        503 => match body.strip_prefix(&quoted) {
            // routes.rs, app_request: locate said TakeOver.
            Some(" is being taken over by this node (its lease had expired); try again") => {
                fail("503 being taken over")
            }
            // Hosted::http / Hosted::send: the slot is Busy.
            Some(" is being deployed, parked or woken; try again") => fail("503 busy"),
            // Hosted::stop (a deploy meeting a takeover).
            Some(" is being taken over by this node; try again") => fail("503 being taken over"),
            // HostError::Parked.
            Some(" is parked") => fail("503 parked"),
            // HostError::Restoring: turned away, not queued behind a replay.
            Some(" is being restored after a fault; try again") => fail("503 restoring"),
            // Hosted::send: the owner's queue is closed; nothing queued.
            Some(" has stopped; try again") => fail("503 owner stopped"),
            // Hosted::locate: the lease table could not be read.
            Some(rest)
                if rest.starts_with(" cannot be located or taken over now (")
                    && rest.ends_with("); try again") =>
            {
                fail("503 cannot be located")
            }
            // routes.rs, unwritable: the answer was dropped.
            Some(" could not answer: its state could not be written") => {
                unknown("503 answer dropped".into())
            }
            // routes.rs, event_error: a commit failed (fenced, the database
            // gone, the store stopped), or was refused before it.
            _ if body.contains("is fenced off this node") => unknown("503 fenced".into()),
            _ => unknown(format!("503 {}", shorten(body))),
        },
        // A commit that failed while the disk was full: in doubt.
        507 => unknown("507 disk full".into()),
        500 => unknown(format!("500 {}", shorten(body))),
        // routes.rs, event_error: an error after the event reached the app's
        // owner (a refusal by its port would even be logged): in doubt. The
        // counter takes any text, so none is expected.
        // axum's body extractor: the request's body never arrived, so the
        // handler never ran (socket I/O failed under libfiu).
        400 if body.starts_with("Failed to buffer the request body") => {
            fail("400 body not received")
        }
        400 => unknown(format!("400 {}", shorten(body))),
        other => unknown(format!("{other} {}", shorten(body))),
    }
}

/// The first words of a server's text, the database's URL, numbers and
/// app names left out, so that alike texts tally together.
fn shorten(text: &str) -> String {
    let mut text = text.trim().to_string();
    // `postgres://user@host:port/db: ` -> `<db>: `
    while let Some(at) = text.find("postgres://") {
        let end = text[at..].find(": ").map_or(text.len(), |e| at + e);
        text.replace_range(at..end, "<db>");
    }
    for (long, short) in [
        ("cannot write the state: ", "commit failed: "),
        ("cannot use the state in <db>: ", ""),
        ("<db>: ", ""),
        (
            "the connection to it was lost, and connecting again failed: ",
            "reconnect failed: ",
        ),
    ] {
        text = text.replace(long, short);
    }
    text.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(90)
        .collect()
}

/// The history, one event a line, for reading alongside the logs.
pub fn write_tsv(path: &Path, apps: &[String], history: &[Entry]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut sorted: Vec<&Entry> = history.iter().collect();
    sorted.sort_by_key(|e| e.sent_us);
    let _ = writeln!(out, "sent_us\tdone_us\tapp\tevent\tnode\toutcome\twhy");
    for e in sorted {
        let outcome = match e.outcome {
            Outcome::Ok(count) => format!("ok({count})"),
            Outcome::Fail => "fail".into(),
            Outcome::Unknown => "unknown".into(),
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{outcome}\t{}",
            e.sent_us, e.done_us, apps[e.app], e.event, e.node, e.why
        );
    }
    out.flush().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turned_away_is_fail_and_a_failed_commit_is_unknown() {
        let app = "counter-3";
        for body in [
            "`counter-3` is being taken over by this node (its lease had expired); try again\n",
            "`counter-3` is being deployed, parked or woken; try again\n",
            "`counter-3` is parked\n",
            "`counter-3` is being restored after a fault; try again\n",
            "`counter-3` has stopped; try again\n",
            "`counter-3` cannot be located or taken over now (db down); try again\n",
        ] {
            assert_eq!(classify(app, 503, body).0, Outcome::Fail, "{body}");
        }
        for body in [
            "cannot write the state: db error: connection closed\n",
            "`counter-3` could not answer: its state could not be written\n",
            // A reason that quotes the app but is not one of the texts above.
            "`counter-3` is parked, and more\n",
            "app `counter-3` is fenced off this node: it held the app's lease at epoch 1\n",
        ] {
            assert_eq!(classify(app, 503, body).0, Outcome::Unknown, "{body}");
        }
        assert_eq!(classify(app, 404, "no app").0, Outcome::Fail);
        for (status, body) in [
            (
                503,
                "not taken (the app saw nothing of it): the store cannot be opened again: x\n",
            ),
            (
                507,
                "not taken (the app saw nothing of it): the state's disk is full: x\n",
            ),
        ] {
            assert_eq!(classify(app, status, body).0, Outcome::Fail, "{body}");
        }
        assert_eq!(classify(app, 507, "full").0, Outcome::Unknown);
        assert_eq!(classify(app, 500, "fault").0, Outcome::Unknown);
        assert_eq!(classify(app, 400, "refused").0, Outcome::Unknown);
    }
}
