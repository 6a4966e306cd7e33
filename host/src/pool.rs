//! Many apps in one process, from many owners ([`Pool`]): one engine with
//! wasmtime's pooling allocator, every app started from a pre-initialised
//! image (its memory mapped copy-on-write from the snapshot), addressed by
//! name. Each app sits behind its own lock: different apps run on different
//! threads at once, and each app handles one event at a time, in order.
//!
//! ## Faults
//! An app stopped mid-call (CPU deadline, stack overflow or another trap,
//! runaway timers, a linear-memory cap the guest could not survive) is never
//! used again: its memory may be half-way through an update. What happens
//! next is the pool's [`FaultPolicy`]:
//! - [`FaultPolicy::Restore`] (the default): the pool replaces the instance
//!   with a fresh one from the app's image, in the state right after `init`,
//!   and the failed call returns [`Error::Restored`] with the cause and the
//!   number of restores so far. The app's state is lost; the next event
//!   meets the restored app.
//! - [`FaultPolicy::Fail`]: the instance is kept, failed; every later call
//!   returns [`Error::Failed`] until the app is unloaded.
//!
//! Errors that leave the app sound (it threw, a bad event, an output over its
//! limit) change nothing: the app keeps its state.
//!
//! ## Durable apps
//! An app loaded with [`Pool::load_durable`] keeps its state in a store
//! ([`DurableApp`]): each event is answered once it is durable (apps that
//! share a [`Committer`] share its commits), a fault restores the app from
//! its store to its state before the faulty event whatever the policy, and
//! loading it again, in this process or the next, carries on where it was.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::SystemTime;

use serde_json::Value;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::app::{parse_outputs, App};
use crate::app_name;
use crate::config::AppConfig;
use crate::durable::commit::Committer;
use crate::durable::store::StateStore;
use crate::durable::{DurableApp, DurableOptions, Opened};
use crate::error::{Error, Result};
use crate::image::AppImage;
use crate::limits::SandboxLimits;
use crate::runtime::Runtime;

/// What the pool does with an app whose instance faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultPolicy {
    /// Start the app again from its image and say so ([`Error::Restored`]).
    #[default]
    Restore,
    /// Keep it failed: later calls return [`Error::Failed`].
    Fail,
}

/// How big a pool is and how it treats faults.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Apps loaded at once.
    pub max_apps: u32,
    /// Linear memory any one app may reach, in bytes: the pooling
    /// allocator's slot size. Each app's own cap
    /// ([`SandboxLimits::max_memory_bytes`]) is kept under it.
    pub max_memory_per_app: usize,
    pub on_fault: FaultPolicy,
    /// Where to keep the compiled guest ([`RuntimeBuilder::code_cache`]).
    ///
    /// [`RuntimeBuilder::code_cache`]: crate::runtime::RuntimeBuilder::code_cache
    pub code_cache: Option<PathBuf>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_apps: 1024,
            max_memory_per_app: 256 << 20,
            on_fault: FaultPolicy::Restore,
            code_cache: None,
        }
    }
}

/// Instance slots beyond `max_apps`: images read their settings from one
/// instance, and building a snapshot takes one while it runs.
const SPARE_SLOTS: u32 = 16;

/// Apps by name, each in its own sandbox under its own limits. Its runtime
/// has deadlines, so any app may have one. `Send + Sync`: share it between
/// threads (in an `Arc`).
pub struct Pool {
    runtime: Runtime,
    config: PoolConfig,
    apps: RwLock<Apps>,
}

type Apps = HashMap<String, Arc<Mutex<Tenant>>>;

/// One loaded app. (One per app, behind its own lock: its size is no matter.)
#[allow(clippy::large_enum_variant)]
enum Tenant {
    /// Started from an image, and started from it again after a fault.
    Image {
        image: AppImage,
        app: App,
        restores: u64,
    },
    /// Kept in a store, and restored from it after a fault (or a restart).
    Durable(Box<DurableApp>),
}

impl Pool {
    pub fn new(config: PoolConfig) -> Result<Pool> {
        let slots = config.max_apps.saturating_add(SPARE_SLOTS);
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            // Fiber stacks are taken per call, not per app.
            .total_stacks(slots)
            .max_memory_size(config.max_memory_per_app);
        let mut engine = Config::new();
        engine.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let mut runtime = Runtime::builder()
            .engine_config(&engine)
            .deadlines(true)
            .limits(SandboxLimits {
                max_memory_bytes: Some(config.max_memory_per_app),
                ..SandboxLimits::default()
            });
        if let Some(dir) = &config.code_cache {
            runtime = runtime.code_cache(dir);
        }
        let runtime = runtime.build()?;
        Ok(Pool {
            runtime,
            config,
            apps: RwLock::default(),
        })
    }

    /// The pool's runtime, to build images it can load
    /// ([`Runtime::image`], [`Runtime::snapshot`], with other limits through
    /// [`Runtime::with_limits`]). Its own limits are the defaults, with
    /// linear memory capped at the slot size.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Loads an app from its JavaScript under `name`, to run under `limits`:
    /// evaluated once into a snapshot (which compiles a module: about a
    /// second), then started from it. Use [`Pool::load_image`] to start
    /// many apps from one image.
    pub fn load(
        &self,
        name: &str,
        source: impl AsRef<[u8]>,
        config: AppConfig,
        limits: SandboxLimits,
    ) -> Result<()> {
        app_name::check(name)?;
        self.room_for(name, &self.read_apps())?;
        let image = self
            .runtime
            .with_limits(self.within_slot(limits))?
            .snapshot(source, config)?;
        self.load_image(name, &image)
    }

    /// Starts an app from an image made by this pool's runtime (or one that
    /// shares its compiled guest), under the image's limits.
    pub fn load_image(&self, name: &str, image: &AppImage) -> Result<()> {
        app_name::check(name)?;
        if !image.made_by(&self.runtime) {
            return Err(Error::Config(
                "the image was made by another runtime: make it with pool.runtime()".into(),
            ));
        }
        let image = image.with_limits(self.within_slot(image.limits().clone()))?;
        self.room_for(name, &self.read_apps())?;
        let app = image.instantiate()?;
        let mut apps = self.apps.write().unwrap_or_else(|e| e.into_inner());
        // Checked again under the write lock: another thread may have won.
        self.room_for(name, &apps)?;
        let tenant = Tenant::Image {
            image,
            app,
            restores: 0,
        };
        apps.insert(name.to_string(), Arc::new(Mutex::new(tenant)));
        Ok(())
    }

    /// Loads `name` as a durable app kept in `store` (see [`DurableApp`]):
    /// created from `source` if the store has no such app, otherwise
    /// restored from it. Its events are answered once durable, through
    /// `committer`, which apps of one store share so that their events
    /// share commits. After a fault it is restored from its store, with
    /// its state up to the event before the fault, whatever the pool's
    /// fault policy.
    #[allow(clippy::too_many_arguments)]
    pub fn load_durable(
        &self,
        name: &str,
        source: impl AsRef<[u8]>,
        config: AppConfig,
        limits: SandboxLimits,
        store: Arc<dyn StateStore>,
        committer: Arc<Committer>,
        options: DurableOptions,
    ) -> Result<Opened> {
        app_name::check(name)?;
        self.room_for(name, &self.read_apps())?;
        let (app, opened) = DurableApp::open(
            &self.durable_runtime(limits)?,
            store,
            committer,
            name,
            source.as_ref(),
            config,
            options,
        )?;
        self.insert_durable(app)?;
        Ok(opened)
    }

    /// The runtime to open a durable app of this pool with (for
    /// [`Pool::insert_durable`]), under `limits` capped at the pool's slot.
    pub fn durable_runtime(&self, limits: SandboxLimits) -> Result<Runtime> {
        self.runtime.with_limits(self.within_slot(limits))
    }

    /// Adds a durable app opened with [`Pool::durable_runtime`], under its
    /// name.
    pub fn insert_durable(&self, app: DurableApp) -> Result<()> {
        if !wasmtime::Engine::same(app.runtime().engine(), self.runtime.engine()) {
            return Err(Error::Config(
                "the app was opened with another runtime: open it with pool.durable_runtime()"
                    .into(),
            ));
        }
        let mut apps = self.apps.write().unwrap_or_else(|e| e.into_inner());
        self.room_for(app.name(), &apps)?;
        apps.insert(
            app.name().to_string(),
            Arc::new(Mutex::new(Tenant::Durable(Box::new(app)))),
        );
        Ok(())
    }

    /// Takes the durable app `name` out of the pool, once a call in flight
    /// on it ends, and hands it over (to close, or remove from its store).
    pub fn take_durable(&self, name: &str) -> Result<DurableApp> {
        let mut tenant = self
            .apps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| Error::NoSuchApp { name: name.into() })?;
        if matches!(*lock(&tenant), Tenant::Image { .. }) {
            // Put back, unless a load took the name in the meantime.
            let mut apps = self.apps.write().unwrap_or_else(|e| e.into_inner());
            apps.entry(name.to_string()).or_insert(tenant);
            return Err(Error::Config(format!(
                "`{name}` is not durable: unload it instead"
            )));
        }
        // Other holders are calls in flight; none can start any more.
        loop {
            match Arc::try_unwrap(tenant) {
                Ok(tenant) => match tenant.into_inner().unwrap_or_else(|e| e.into_inner()) {
                    Tenant::Durable(app) => return Ok(*app),
                    Tenant::Image { .. } => unreachable!("checked above"),
                },
                Err(shared) => {
                    drop(lock(&shared));
                    std::thread::yield_now();
                    tenant = shared;
                }
            }
        }
    }

    /// Runs `f` on the durable app `name`, alone (see [`Pool::with_app`]).
    pub fn with_durable<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut DurableApp) -> Result<T>,
    ) -> Result<T> {
        self.call(
            name,
            |_| {
                Err(Error::Config(format!(
                    "`{name}` is not durable: it has no log to write to"
                )))
            },
            f,
        )
    }

    /// Removes the app; its slot is free once a call in flight on it ends.
    /// A durable app is checkpointed first ([`DurableApp::checkpoint`]), so
    /// that loading it again replays nothing; it is removed even if that
    /// fails (its log holds every answered event anyway), and the failure
    /// is returned.
    pub fn unload(&self, name: &str) -> Result<()> {
        let tenant = self
            .apps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| Error::NoSuchApp { name: name.into() })?;
        let mut tenant = lock(&tenant);
        match &mut *tenant {
            Tenant::Durable(app) => app.checkpoint(),
            Tenant::Image { .. } => Ok(()),
        }
    }

    /// Sends one event to the app `name` (see [`App::dispatch`]); a
    /// durable app answers once the event is durable.
    pub fn dispatch(&self, name: &str, event: impl AsRef<[u8]>) -> Result<Vec<Value>> {
        let event = event.as_ref();
        self.call(
            name,
            |app| app.dispatch(event),
            |app| parse_outputs(app.dispatch_json(event)?.as_bytes()),
        )
    }

    /// Like [`Pool::dispatch`], with the outputs as JSON array text.
    pub fn dispatch_json(&self, name: &str, event: impl AsRef<[u8]>) -> Result<String> {
        let event = event.as_ref();
        self.call(
            name,
            |app| app.dispatch_json(event),
            |app| app.dispatch_json(event),
        )
    }

    /// Moves the app's virtual clock (see [`App::advance_time`]).
    pub fn advance_time(&self, name: &str, ms: u64) -> Result<Vec<Value>> {
        self.call(
            name,
            |app| app.advance_time(ms),
            |app| parse_outputs(app.advance_time_json(ms)?.as_bytes()),
        )
    }

    /// Sends one event to the app `name` at the wall-clock time `at` (see
    /// [`App::dispatch_at`]); a durable app records the instant with it.
    pub fn dispatch_at(
        &self,
        name: &str,
        at: SystemTime,
        event: impl AsRef<[u8]>,
    ) -> Result<Vec<Value>> {
        let event = event.as_ref();
        self.call(
            name,
            |app| app.dispatch_at(at, event),
            |app| parse_outputs(app.dispatch_json_at(at, event)?.as_bytes()),
        )
    }

    /// Moves the app's clock to the wall-clock time `at`, firing the timers
    /// due by then (see [`App::advance_to`]).
    pub fn advance_to(&self, name: &str, at: SystemTime) -> Result<Vec<Value>> {
        self.call(
            name,
            |app| app.advance_to(at),
            |app| parse_outputs(app.advance_to_json(at)?.as_bytes()),
        )
    }

    /// When the app's earliest armed timer is due (see [`App::next_due`]).
    pub fn next_due(&self, name: &str) -> Result<Option<SystemTime>> {
        self.call(name, |app| Ok(app.next_due()), |app| Ok(app.next_due()))
    }

    /// Runs `f` on the app `name`, alone: other calls to the same app wait;
    /// calls to other apps do not. A fault is handled by the pool's policy.
    /// Not for durable apps, whose every input must go into their log.
    pub fn with_app<T>(&self, name: &str, f: impl FnOnce(&mut App) -> Result<T>) -> Result<T> {
        self.call(name, f, |_| {
            Err(Error::Config(format!(
                "`{name}` is durable: its events go through dispatch, so that each is logged"
            )))
        })
    }

    /// Runs `image` on an app started from an image, `durable` on a durable
    /// one, alone.
    fn call<T>(
        &self,
        name: &str,
        image: impl FnOnce(&mut App) -> Result<T>,
        durable: impl FnOnce(&mut DurableApp) -> Result<T>,
    ) -> Result<T> {
        let tenant = {
            self.read_apps()
                .get(name)
                .cloned()
                .ok_or_else(|| Error::NoSuchApp { name: name.into() })?
        };
        let mut tenant = lock(&tenant);
        let (image_of, app, restores) = match &mut *tenant {
            Tenant::Durable(app) => return durable(app),
            Tenant::Image {
                image,
                app,
                restores,
            } => (image, app, restores),
        };
        match image(app) {
            Err(cause) if self.config.on_fault == FaultPolicy::Restore && faulted(&cause) => {
                match image_of.instantiate() {
                    Ok(fresh) => {
                        *app = fresh;
                        *restores += 1;
                        Err(Error::Restored {
                            cause: Box::new(cause),
                            restores: *restores,
                            before: None,
                        })
                    }
                    // The failed instance stays, and says why from now on.
                    Err(e) => Err(Error::Failed {
                        reason: format!("{cause}; restoring it from its image failed: {e}"),
                    }),
                }
            }
            result => result,
        }
    }

    /// How often the app has been restored after a fault.
    pub fn restores(&self, name: &str) -> Result<u64> {
        let apps = self.read_apps();
        let tenant = apps
            .get(name)
            .ok_or_else(|| Error::NoSuchApp { name: name.into() })?;
        let restores = match &*lock(tenant) {
            Tenant::Image { restores, .. } => *restores,
            Tenant::Durable(app) => app.restores(),
        };
        Ok(restores)
    }

    /// The names of the loaded apps, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read_apps().keys().cloned().collect();
        names.sort();
        names
    }

    pub fn len(&self) -> usize {
        self.read_apps().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read_apps(&self) -> RwLockReadGuard<'_, Apps> {
        self.apps.read().unwrap_or_else(|e| e.into_inner())
    }

    /// `limits` with linear memory capped at the pool's slot size.
    fn within_slot(&self, mut limits: SandboxLimits) -> SandboxLimits {
        let slot = self.config.max_memory_per_app;
        limits.max_memory_bytes = Some(limits.max_memory_bytes.map_or(slot, |cap| cap.min(slot)));
        limits
    }

    /// Whether `name` may join `apps`: not taken, and the pool not full.
    /// `Ok` if an app named `name` could be added now: the name is free
    /// and the pool is not full (else [`Error::AppExists`],
    /// [`Error::PoolFull`]). For a caller that must know before it writes
    /// anything for the app.
    pub fn has_room_for(&self, name: &str) -> Result<()> {
        self.room_for(name, &self.read_apps())
    }

    fn room_for(&self, name: &str, apps: &Apps) -> Result<()> {
        if apps.contains_key(name) {
            return Err(Error::AppExists { name: name.into() });
        }
        if apps.len() >= self.config.max_apps as usize {
            return Err(Error::PoolFull {
                max_apps: self.config.max_apps,
            });
        }
        Ok(())
    }
}

/// Whether the instance behind `error` can no longer be trusted.
fn faulted(error: &Error) -> bool {
    error.is_fatal() && !matches!(error, Error::Failed { .. })
}

/// A tenant's lock. A panic while holding it (a bug in the caller's `f`)
/// leaves the app as sound as any error would, so poisoning is ignored.
fn lock(tenant: &Mutex<Tenant>) -> MutexGuard<'_, Tenant> {
    tenant.lock().unwrap_or_else(|e| e.into_inner())
}
