//! A new version of a durable app, made beside the one that serves
//! ([`Deploying`]): started from its code and replayed from the store (a
//! page at a time) while the old version goes on taking inputs, then caught
//! up with what those added, and switched in between two inputs
//! ([`DurableApp::finish_deploy`]), where the few records written since the
//! last catch-up are replayed and the deploy is recorded. A server's
//! clients see no refusal, only a short wait at the switch; a version that
//! fails on a logged input is refused ([`Error::DeployRefused`]) and the
//! old one never stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use elmbox_abi::AppSettings;

use crate::config::AppConfig;
use crate::error::{Error, Result};
use crate::runtime::Runtime;

use super::code::{check_source, encode_code, identity, is_module, module_settings, start};
use super::log::{Input, Outcome, Record};
use super::log_pages::{self, LogPages};
use super::store::Write;
use super::{http, DurableApp, DurableOptions, OnNewCode};

/// A new version being made: replayed up to `next.seq`.
pub struct Deploying {
    next: DurableApp,
    how: OnNewCode,
    progress: DeployProgress,
    /// A migration: the last input of the old version when the model the
    /// new one started from was exported.
    exported_at: u64,
}

/// How far a deploy's replay is, readable from other threads.
#[derive(Debug, Clone, Default)]
pub struct DeployProgress {
    replayed: Arc<AtomicU64>,
    of: Arc<AtomicU64>,
}

impl DeployProgress {
    /// Records replayed so far, and how many the log held when it began
    /// (those added since are caught up with at the end).
    pub fn replayed(&self) -> (u64, u64) {
        (
            self.replayed.load(Ordering::Relaxed),
            self.of.load(Ordering::Relaxed),
        )
    }
}

/// What a new version takes over from the app it replaces.
#[derive(Clone)]
pub struct DeployBase {
    name: String,
    settings: AppSettings,
    identity: String,
    seq: u64,
    console: crate::console::Console,
    store: Arc<dyn super::store::StateStore>,
    committer: Arc<super::commit::Committer>,
    /// For a migration, the model this app exported.
    exported: Option<String>,
}

impl DurableApp {
    /// What [`Deploying::start`] needs of this app to deploy a new version
    /// `how` says: cheap to take, so that a server holds the app only for a
    /// moment; for a migration, also the model it exports (from a copy:
    /// [`Error::MigrationRefused`] if it exports none).
    pub fn deploy_base(&mut self, how: OnNewCode) -> Result<DeployBase> {
        let exported = match how {
            OnNewCode::Migrate => Some(self.exported_model()?),
            _ => None,
        };
        Ok(DeployBase {
            name: self.name.clone(),
            settings: self.settings.clone(),
            identity: identity(&self.settings, &self.source),
            seq: self.seq,
            console: self.console.clone(),
            store: self.store.clone(),
            committer: self.committer.clone(),
            exported,
        })
    }

    /// Switches to the new version, between two inputs: once this app's
    /// writes are durable, the records written since the deploy's last
    /// catch-up are replayed into it, the new code and the record of its
    /// deploy are written together with its host options, and it takes
    /// this app's place. Refused, and nothing written, if it fails on one
    /// of those records: this app goes on.
    pub fn finish_deploy(&mut self, mut deploying: Deploying) -> Result<()> {
        self.committer.ticket_for(&self.name)?.wait()?;
        deploying.catch_up()?;
        let Deploying {
            mut next,
            how,
            exported_at,
            ..
        } = deploying;
        if how == OnNewCode::Migrate && exported_at != self.seq {
            // The old version took inputs since its model was exported: the
            // new one starts from what it is now.
            next.restart_migrated(self.exported_model()?)?;
        }
        if how.starts_anew() {
            // Its history starts at its deploy, which goes where the log ends.
            next.seq = self.seq;
        }
        if next.seq != self.seq {
            return Err(Error::BadLog {
                reason: format!(
                    "the new version of `{}` replayed to event {}, but the log ends at {}",
                    self.name, next.seq, self.seq
                ),
            });
        }
        next.seq = self.seq + 1;
        // The new code, the record of its deploy and its host options:
        // all in the store or none of them.
        let mut deployed = vec![
            Write::App {
                name: self.name.clone(),
                code: next.code.clone(),
            },
            Write::Record {
                app: self.name.clone(),
                record: Record {
                    seq: next.seq,
                    clock_ms: next.clock_ms,
                    // A migration is a fresh start whose settings hold the
                    // model: a restore from the log starts from it.
                    input: Input::Deploy {
                        code: next.code.clone(),
                        fresh: how.starts_anew(),
                    },
                    outcome: Outcome::Answered { answer: 0 },
                },
            },
        ];
        deployed.extend(next.host_options_write());
        self.committer.write_together(deployed)?;
        next.snapshot()?;
        next.keep_timer_due(true)?;
        self.committer.ticket_for(&self.name)?.wait()?;
        *self = DurableApp {
            restores: self.restores,
            restoring: self.restoring.clone(),
            ..next
        };
        Ok(())
    }
}

impl Deploying {
    /// Starts the new version `source` of the app `base` describes, with
    /// `config`'s settings, in `runtime`: from its `init`, then (`how` is
    /// [`OnNewCode::Replay`]) fed the log since the last fresh start as the
    /// store holds it now. Writes nothing but the new code (under its
    /// hash): the app goes on meanwhile. `None` when it is the code and
    /// settings the app runs already. `progress` says how far the replay
    /// is while it runs.
    pub fn start(
        base: &DeployBase,
        runtime: &Runtime,
        source: &[u8],
        config: AppConfig,
        how: OnNewCode,
        options: DurableOptions,
        progress: &DeployProgress,
    ) -> Result<Option<Deploying>> {
        check_source(how, source)?;
        let given = match is_module(source) {
            true => module_settings(runtime, source)?,
            false => config.settings()?,
        };
        if identity(&given, source) == base.identity {
            return Ok(None);
        }
        // A new version by replay continues the app's history: it keeps the
        // clock's epoch (replayed inputs must see the times they saw) and
        // `Math.random`'s seed (and so its requests' Idempotency-Keys). A
        // fresh one starts a history of its own.
        let fresh = how.starts_anew();
        let (epoch_ms, random_seed) = match fresh {
            true => (given.epoch_ms, given.random_seed),
            false => (
                base.settings.epoch_ms,
                base.settings.random_seed.or(given.random_seed),
            ),
        };
        let settings = AppSettings {
            epoch_ms,
            fixed_epoch: given.fixed_epoch || !fresh,
            random_seed: random_seed.or_else(|| Some(crate::config::host_random())),
            // A replay continues from the model the app was migrated from, if
            // it was; a migration starts from the one just exported.
            migrated: match how {
                OnNewCode::Migrate => base.exported.clone(),
                OnNewCode::Fresh => None,
                _ => base.settings.migrated.clone(),
            },
            ..given
        };
        let app =
            start(runtime, source, &settings, &base.name, &base.console).map_err(
                |e| match how {
                    OnNewCode::Migrate => super::migrating::init_failed(e),
                    _ => e,
                },
            )?;
        let code = base.store.put_code(&encode_code(&settings, source)?)?;
        let next = DurableApp::new(
            app,
            runtime,
            &base.name,
            &code,
            base.console.clone(),
            settings,
            source,
            base.store.clone(),
            base.committer.clone(),
            options,
        );
        let mut deploying = Deploying {
            next,
            how,
            progress: progress.clone(),
            exported_at: base.seq,
        };
        if how == OnNewCode::Replay {
            let fresh_at = log_pages::replay_start(&*base.store, &base.name)?.fresh;
            deploying.next.seq = fresh_at;
            let progress = &deploying.progress;
            progress
                .of
                .store(base.seq.saturating_sub(fresh_at), Ordering::Relaxed);
            deploying.catch_up()?;
        }
        Ok(Some(deploying))
    }

    /// Replays what the store holds beyond what was replayed; returns how
    /// many records that was. A fresh version replays nothing: it only
    /// learns where the log ends.
    pub fn catch_up(&mut self) -> Result<u64> {
        if self.how.starts_anew() {
            return Ok(0);
        }
        let next = &mut self.next;
        let store = next.store.clone();
        let name = next.name.clone();
        let mut log = LogPages::new(&*store, &name, next.seq);
        let mut replayed = 0;
        while let Some(record) = log.next_record()? {
            next.seq = record.seq;
            replayed += 1;
            self.progress.replayed.fetch_add(1, Ordering::Relaxed);
            if record.outcome == Outcome::Faulted {
                continue;
            }
            let Some(result) = next.apply(record.clock_ms, &record.input) else {
                continue;
            };
            // A recorded response that answers another request than the new
            // version makes would be given to the wrong one.
            if let Some(e) = result
                .as_ref()
                .err()
                .filter(|e| e.is_fatal() || http::answers_another_request(e))
            {
                return Err(Error::DeployRefused {
                    seq: record.seq,
                    error: e.to_string(),
                });
            }
        }
        next.clock_ms = next.app.memory()?.clock_ms;
        Ok(replayed)
    }

    /// How far the replay is.
    pub fn progress(&self) -> DeployProgress {
        self.progress.clone()
    }
}
