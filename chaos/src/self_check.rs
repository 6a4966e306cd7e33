//! `--self-check`, the negative control: the history falsified on purpose,
//! in ways the checker must each report.

use crate::history::{Entry, Outcome};

/// `--self-check`: falsifies the history four ways, each of which the
/// checker must report; the kinds it must report.
pub fn falsify(history: &mut Vec<Entry>) -> Result<Vec<&'static str>, String> {
    let oks: Vec<usize> = (0..history.len())
        .filter(|&i| matches!(history[i].outcome, Outcome::Ok(_)))
        .collect();
    let [phantom, miscounted, relabelled, dropped] = match oks.as_slice() {
        [a, .., b, c, d] => [*a, *b, *c, *d],
        _ => return Err("--self-check needs at least four events answered 200".into()),
    };
    // An `ok` answer for an event no client sent.
    let mut never_sent = history[phantom].clone();
    never_sent.event = "self-check-never-sent".into();
    println!("self-check: recorded {never_sent}");
    // A real `ok` event answered with a count one more than it had.
    if let Outcome::Ok(count) = history[miscounted].outcome {
        history[miscounted].outcome = Outcome::Ok(count + 1);
    }
    println!("self-check: miscounted {}", history[miscounted]);
    // A real `ok` event relabelled as certainly failed.
    history[relabelled].outcome = Outcome::Fail;
    history[relabelled].why = "self-check relabelled".into();
    println!("self-check: relabelled as failed {}", history[relabelled]);
    // A real `ok` event left out of the history.
    let gone = history.remove(dropped);
    println!("self-check: dropped from the history {gone}");
    history.push(never_sent);
    Ok(vec![
        "(a) answered 200, not in the log",
        "(b) failed, yet in the log",
        "(c) count answered is not the log's",
        "(d) in the log, never sent to this app",
    ])
}
