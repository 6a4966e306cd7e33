//! Opening a durable app: created from its code if its store has none,
//! otherwise restored from its newest usable snapshot and the log after it
//! (each replayed outcome checked against the recorded one), and deployed
//! anew if its code changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elmbox_abi::AppSettings;

use crate::app::{json_text, App};
use crate::app_name;
use crate::config::{host_random, AppConfig};
use crate::console::Console;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::state::SandboxState;

use super::code::{decode_code, encode_code, identity, is_module, module_settings, start};
use super::commit::Committer;
use super::log::{Input, Outcome, Record};
use super::log_pages::{self, LogPages};
use super::store::{StateStore, Write};
use super::{
    outcome, DeployProgress, Deploying, DurableApp, DurableOptions, OnNewCode, Opened, Restoring,
};

impl DurableApp {
    /// Opens the app `name` of `store`: created from `source` and `config`
    /// if the store has no such app, otherwise restored from its snapshot
    /// and log (and deployed anew if `source` or `config` differ, as
    /// `options.on_new_code` says).
    ///
    /// `source` is the app's JavaScript, or a module made by `elmbox build`
    /// from this runtime's guest; a module's settings were fixed when it
    /// was built, so only `config`'s console applies to it.
    pub fn open(
        runtime: &Runtime,
        store: Arc<dyn StateStore>,
        committer: Arc<Committer>,
        name: &str,
        source: &[u8],
        config: AppConfig,
        options: DurableOptions,
    ) -> Result<(DurableApp, Opened)> {
        app_name::check(name)?;
        let console = config.console.clone();
        let mut given = match is_module(source) {
            true => module_settings(runtime, source)?,
            false => config.settings()?,
        };
        // Recorded with the app, so a replay from its start draws what the
        // first run drew.
        given.random_seed = given.random_seed.or_else(|| Some(host_random()));
        store.claim(name)?;
        let Some(stored) = store.app(name)? else {
            let app = start(runtime, source, &given, name, &console)?;
            let code = store.put_code(&encode_code(&given, source)?)?;
            let mut durable = DurableApp::new(
                app, runtime, name, &code, console, given, source, store, committer, options,
            );
            let mut created = vec![Write::App {
                name: name.to_string(),
                code,
            }];
            created.extend(durable.host_options_write());
            let made = durable
                .committer
                .write_together(created)
                .and_then(|()| durable.snapshot())
                .and_then(|()| durable.committer.ticket()?.wait());
            if let Err(e) = made {
                // Refused, so it leaves nothing behind: a failed commit
                // wrote none of its writes, and what did reach the store is
                // taken out again if the store still takes writes.
                let _ = durable.committer.write(Write::Remove { app: name.into() });
                let _ = durable.committer.ticket().and_then(|t| t.wait());
                return Err(e);
            }
            durable.keep_timer_due(true)?;
            let opened = Opened {
                created: true,
                snapshot: Some(0),
                ..Opened::default()
            };
            return Ok((durable, opened));
        };
        let (recorded, recorded_source) = decode_code(&store.code(&stored.code)?)?;
        let (mut durable, mut opened) = DurableApp::restore(
            runtime,
            store,
            committer,
            name,
            &stored.code,
            recorded.clone(),
            recorded_source.clone(),
            console.clone(),
            options.clone(),
        )?;
        if identity(&recorded, &recorded_source) == identity(&given, source) {
            if options.host_options.is_some()
                && durable.store.host_options(name)? != options.host_options
            {
                let writes = durable.host_options_write().into_iter().collect();
                durable.committer.write_together(writes)?;
                durable.committer.ticket()?.wait()?;
            }
            return Ok((durable, opened));
        }
        match options.on_new_code {
            OnNewCode::Refuse => Err(Error::CodeChanged {
                recorded: identity(&recorded, &recorded_source),
                given: identity(&given, source),
            }),
            how => {
                let mut config = config;
                config.random_seed = given.random_seed;
                let base = durable.deploy_base(how)?;
                let progress = DeployProgress::default();
                let deploying =
                    Deploying::start(&base, runtime, source, config, how, options, &progress)?;
                if let Some(deploying) = deploying {
                    durable.finish_deploy(deploying)?;
                }
                opened.deployed = Some(how);
                Ok((durable, opened))
            }
        }
    }

    /// Opens the app `name` of `store` with the code it recorded (after a
    /// restart, say); `None` if the store has no such app.
    pub fn open_recorded(
        runtime: &Runtime,
        store: Arc<dyn StateStore>,
        committer: Arc<Committer>,
        name: &str,
        console: Console,
        options: DurableOptions,
    ) -> Result<Option<(DurableApp, Opened)>> {
        app_name::check(name)?;
        store.claim(name)?;
        let Some(stored) = store.app(name)? else {
            return Ok(None);
        };
        let (settings, source) = decode_code(&store.code(&stored.code)?)?;
        DurableApp::restore(
            runtime,
            store,
            committer,
            name,
            &stored.code,
            settings,
            source,
            console,
            options,
        )
        .map(Some)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        app: App,
        runtime: &Runtime,
        name: &str,
        code: &str,
        console: Console,
        settings: AppSettings,
        source: &[u8],
        store: Arc<dyn StateStore>,
        committer: Arc<Committer>,
        options: DurableOptions,
    ) -> DurableApp {
        let clock_ms = app.clock().now_ms;
        DurableApp {
            app,
            runtime: runtime.clone(),
            name: name.to_string(),
            code: code.to_string(),
            console,
            settings,
            source: source.to_vec(),
            store,
            committer,
            options,
            seq: 0,
            clock_ms,
            since_snapshot: 0,
            work_since_snapshot: Duration::ZERO,
            cpu_at_snapshot: None,
            snapshot_at: Instant::now(),
            restores: 0,
            restoring: Restoring::default(),
            kept_due: None,
        }
    }

    /// The app as the store has it: its newest usable snapshot (taken from
    /// this guest build, running the current code), then the log after it;
    /// without one, the current code from its start (its `init`, or the
    /// last fresh deploy) and the whole log.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn restore(
        runtime: &Runtime,
        store: Arc<dyn StateStore>,
        committer: Arc<Committer>,
        name: &str,
        code: &str,
        settings: AppSettings,
        source: Vec<u8>,
        console: Console,
        options: DurableOptions,
    ) -> Result<(DurableApp, Opened)> {
        let mut opened = Opened::default();
        let mut from_snapshot = None;
        for snapshot in store.snapshots(name)? {
            if snapshot.code != code {
                continue;
            }
            if snapshot.guest != runtime.guest_id() {
                opened.passed_over.push(format!(
                    "the snapshot after event {} is from another guest build",
                    snapshot.seq
                ));
                continue;
            }
            let restored = store
                .snapshot(name, snapshot.seq)
                .and_then(|bytes| SandboxState::decode(&bytes))
                .and_then(|state| {
                    runtime.restore(
                        &state,
                        AppConfig::default().name(name).console(console.clone()),
                    )
                });
            match restored {
                Ok(app) => {
                    from_snapshot = Some((snapshot.seq, app));
                    break;
                }
                Err(e) => opened
                    .passed_over
                    .push(format!("the snapshot after event {}: {e}", snapshot.seq)),
            }
        }
        // The snapshot's own record must be in the log: a snapshot is
        // committed with or after it, so only damage can take it away.
        if let Some((seq, _)) = from_snapshot.as_ref().filter(|(seq, _)| *seq > 0) {
            let mut own = LogPages::new(&*store, name, seq - 1);
            if own.next_record()?.map(|r| r.seq) != Some(*seq) {
                opened.cut = own.cut();
                opened.passed_over.push(format!(
                    "the snapshot after event {seq} is ahead of the log's last sound record"
                ));
                from_snapshot = None;
            }
        }
        // From the start, the current code replays every input since the
        // last fresh start; those before the last deploy were answered by
        // an older version, so only later ones must come out as recorded.
        // The log is read a page at a time: a replay's memory does not grow
        // with the log.
        let (from, checked_after, app) = match from_snapshot {
            Some((seq, app)) => {
                opened.snapshot = Some(seq);
                (seq, seq, app)
            }
            None => {
                let from = log_pages::replay_start(&*store, name)
                    .map_err(|e| cannot_restore(e, &opened.passed_over))?;
                opened.cut = opened.cut.max(from.cut);
                (
                    from.fresh,
                    from.deploy,
                    start(runtime, &source, &settings, name, &console)?,
                )
            }
        };
        let mut durable = DurableApp::new(
            app,
            runtime,
            name,
            code,
            console,
            settings,
            &source,
            store.clone(),
            committer,
            options,
        );
        durable.clock_ms = durable.app.memory()?.clock_ms;
        let mut log = LogPages::new(&*store, name, from);
        let mut last = from;
        while let Some(record) = log.next_record()? {
            durable.replay(&record, record.seq > checked_after)?;
            opened.replayed += 1;
            last = record.seq;
        }
        opened.cut = opened.cut.max(log.cut());
        durable.seq = last;
        durable.keep_timer_due_as_stored()?;
        Ok((durable, opened))
    }

    /// Applies one logged input again; with `check`, it must come out as
    /// recorded.
    fn replay(&mut self, record: &Record, check: bool) -> Result<()> {
        if record.outcome == Outcome::Faulted {
            // Skipped last time, and again.
            return Ok(());
        }
        // Deploys are replayed by running the newest code from the start.
        let Some(result) = self.apply(record.clock_ms, &record.input) else {
            return Ok(());
        };
        let now = outcome(&result);
        if check && record.outcome != now {
            return Err(Error::Diverged {
                seq: record.seq,
                recorded: describe(record.outcome),
                now: match &result {
                    Err(e) => format!("{} ({e})", describe(now)),
                    Ok(_) => describe(now),
                },
            });
        }
        Ok(())
    }

    /// Hands one input to the app at the instant `clock_ms` (an advance:
    /// from there) and keeps up with its clock; `None` for a deploy, which
    /// is no input to the app.
    pub(super) fn apply(&mut self, clock_ms: u64, input: &Input) -> Option<Result<String>> {
        let result = match input {
            Input::Event(event) => self.app.dispatch_json_at_instant(clock_ms, event),
            Input::Advance(ms) => self.app.advance_time_json(*ms),
            Input::Wake => self.app.advance_to_instant_json(clock_ms),
            Input::HttpResponse(response) => {
                self.app
                    .deliver_http_encoded(Some(clock_ms), response, json_text)
            }
            Input::Deploy { .. } => return None,
        };
        self.clock_ms = self.app.clock().now_ms;
        Some(result)
    }
}

/// Why an app whose history retention dropped cannot be restored: no
/// snapshot it kept could be (an elmbox whose guest build differs from the
/// one that took them, say), and its log no longer goes back to a start.
fn cannot_restore(e: Error, passed_over: &[String]) -> Error {
    match e {
        Error::HistoryDropped { app, first_kept } => Error::BadLog {
            reason: format!(
                "`{app}` cannot be restored: its log begins at event {first_kept} (the events \
                 before it dropped by --retain-log) and no snapshot it kept can be restored{}",
                match passed_over.is_empty() {
                    true => String::new(),
                    false => format!(" ({})", passed_over.join("; ")),
                }
            ),
        },
        e => e,
    }
}

fn describe(outcome: Outcome) -> String {
    match outcome {
        Outcome::Answered { answer } => format!("an answer (checksum {answer:08x})"),
        Outcome::Refused => "a refusal".into(),
        Outcome::Faulted => "a fault".into(),
    }
}
