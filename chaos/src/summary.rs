//! The campaign's summary: printed at the end, and written as a markdown
//! table with `--summary FILE` (for docs/BENCHMARKS.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::checker::Report;
use crate::history::{Entry, Outcome};

#[derive(Debug, Default)]
pub struct Summary {
    pub seed: u64,
    pub nodes: usize,
    pub apps: usize,
    pub clients: usize,
    pub lease_ms: u64,
    /// How long the nemesis ran, and the whole run.
    pub campaign: Duration,
    pub total: Duration,
    pub faults: BTreeMap<String, u64>,
    pub sent: u64,
    pub ok: u64,
    pub fail: u64,
    pub unknown: u64,
    pub unknown_logged: u64,
    pub fail_why: BTreeMap<String, u64>,
    pub unknown_why: BTreeMap<String, u64>,
    pub logged_events: u64,
    pub checked: u64,
    pub violations: u64,
    pub violations_by_kind: BTreeMap<&'static str, u64>,
    /// Apps that answered no event with 200 after everything was healed.
    pub unanswered: Vec<String>,
    /// Node processes that exited without being told to.
    pub self_exits: Vec<String>,
    /// Heals that did not work at once.
    pub nemesis_problems: Vec<String>,
    /// How each node ended at SIGTERM.
    pub node_ends: Vec<(String, String)>,
    pub other_records: BTreeMap<String, u64>,
    pub notes: Vec<String>,
    pub interrupted: bool,
    /// With `--self-check`: what was injected, and whether it was caught.
    pub self_check: Option<String>,
}

impl Summary {
    pub fn tally(&mut self, history: &[Entry]) {
        for entry in history {
            self.sent += 1;
            match entry.outcome {
                Outcome::Ok(_) => self.ok += 1,
                Outcome::Fail => {
                    self.fail += 1;
                    *self.fail_why.entry(entry.why.clone()).or_default() += 1;
                }
                Outcome::Unknown => {
                    self.unknown += 1;
                    *self.unknown_why.entry(entry.why.clone()).or_default() += 1;
                }
            }
        }
    }

    pub fn checked(&mut self, report: &Report) {
        self.unknown_logged = report.unknown_logged;
        self.logged_events = report.logged_events;
        self.checked = report.checked;
        self.violations = report.violation_count();
        self.violations_by_kind = report.by_kind();
        self.other_records = report.other_records.clone();
        self.notes.extend(report.notes.iter().cloned());
    }

    /// Whether the run found something wrong with elmbox.
    pub fn failed(&self) -> bool {
        self.violations > 0 || !self.unanswered.is_empty() || !self.self_exits.is_empty()
    }

    fn faults_line(&self) -> String {
        let total: u64 = self.faults.values().sum();
        let each: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!("{total} ({})", each.join(", "))
    }

    fn kinds(&self) -> String {
        let each: Vec<String> = self
            .violations_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        each.join("; ")
    }

    fn percent(&self, n: u64) -> String {
        match self.sent {
            0 => "-".into(),
            sent => format!("{:.1}%", 100.0 * n as f64 / sent as f64),
        }
    }

    fn tallied(map: &BTreeMap<String, u64>) -> String {
        let mut by_count: Vec<(&String, &u64)> = map.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        by_count
            .iter()
            .map(|(why, n)| format!("{why}: {n}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn print(&self) {
        println!();
        println!("==== elmbox-chaos summary ====");
        println!("seed                 {}", self.seed);
        println!(
            "cluster              {} nodes (lease {} ms), {} apps, {} clients, \
             one PostgreSQL (fsync on, tmpfs)",
            self.nodes, self.lease_ms, self.apps, self.clients
        );
        println!(
            "duration             {:.1} min of faults, {:.1} min in all{}",
            self.campaign.as_secs_f64() / 60.0,
            self.total.as_secs_f64() / 60.0,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        println!("faults injected      {}", self.faults_line());
        println!("events sent          {}", self.sent);
        println!(
            "  ok (200)           {} ({})",
            self.ok,
            self.percent(self.ok)
        );
        println!(
            "  fail               {} ({})",
            self.fail,
            self.percent(self.fail)
        );
        println!(
            "  unknown            {} ({}), of which the logs hold {}",
            self.unknown,
            self.percent(self.unknown),
            self.unknown_logged
        );
        println!("  fail, by reason    {}", Self::tallied(&self.fail_why));
        println!("  unknown, by reason {}", Self::tallied(&self.unknown_why));
        println!(
            "events checked       {} history entries against {} logged events",
            self.checked, self.logged_events
        );
        if !self.other_records.is_empty() {
            println!("other log records    {:?}", self.other_records);
        }
        println!("violations           {} {}", self.violations, self.kinds());
        println!(
            "apps unanswered after healing: {}",
            match self.unanswered.is_empty() {
                true => "none".into(),
                false => self.unanswered.join(", "),
            }
        );
        println!("node exits nobody asked for: {}", self.self_exits.len());
        for exit in &self.self_exits {
            println!("  {exit}");
        }
        for problem in &self.nemesis_problems {
            println!("nemesis problem: {problem}");
        }
        for (node, how) in &self.node_ends {
            println!("SIGTERM {node}: {how}");
        }
        for note in &self.notes {
            println!("note: {note}");
        }
        if let Some(self_check) = &self.self_check {
            println!("self-check: {self_check}");
        }
    }

    /// The summary as a markdown table.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "| `make chaos` | |");
        let _ = writeln!(md, "| --- | --- |");
        let mut row = |what: &str, value: String| {
            let _ = writeln!(md, "| {what} | {} |", value.replace('|', "\\|"));
        };
        row(
            "cluster",
            format!(
                "{} nodes (`--lease-ms {}`), {} counter apps, {} client threads, \
                 one PostgreSQL (fsync on, data on tmpfs)",
                self.nodes, self.lease_ms, self.apps, self.clients
            ),
        );
        row(
            "duration",
            format!(
                "{:.1} min of faults, {:.1} min in all{}",
                self.campaign.as_secs_f64() / 60.0,
                self.total.as_secs_f64() / 60.0,
                if self.interrupted {
                    " (interrupted)"
                } else {
                    ""
                }
            ),
        );
        row("seed", self.seed.to_string());
        row("faults injected", self.faults_line());
        row("events sent", self.sent.to_string());
        row(
            "ok (200)",
            format!("{} ({})", self.ok, self.percent(self.ok)),
        );
        row(
            "fail (certainly not applied)",
            format!("{} ({})", self.fail, self.percent(self.fail)),
        );
        row(
            "unknown (applied or not)",
            format!(
                "{} ({}); the logs hold {} of them",
                self.unknown,
                self.percent(self.unknown),
                self.unknown_logged
            ),
        );
        row(
            "events checked",
            format!(
                "{} history entries against {} logged events",
                self.checked, self.logged_events
            ),
        );
        row(
            "violations",
            match self.violations_by_kind.is_empty() {
                true => "0".into(),
                false => format!("{} ({})", self.violations, self.kinds()),
            },
        );
        row(
            "apps unanswered after healing",
            self.unanswered.len().to_string(),
        );
        row(
            "node exits nobody asked for",
            self.self_exits.len().to_string(),
        );
        md
    }
}
