//! What the admin API shows of an app ([`AppInfo`]): from memory while it
//! is served, from the store while it is parked or not served.

use elmbox::durable::log_pages::read_log;
use elmbox::durable::Health;
use elmbox::{Error, MemoryStats};
use serde::Serialize;

use super::{internal, lock, HostError, Hosted, Slot};
use crate::options::AppOptions;

/// What `GET /_elmbox/apps/{name}` shows.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub name: String,
    /// The content hash of the code and settings it runs.
    pub code: String,
    pub options: AppOptions,
    /// Events (and clock moves, deploys) in its log.
    pub events: u64,
    pub restores: u64,
    /// `serving`, `parked` (idle, out of memory until its next request),
    /// or `unserved` (in the store, not served: see `problem`).
    pub state: &'static str,
    /// Why an unserved app is not served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// In HTTP mode, the requests waiting for their response.
    pub waiting: Option<usize>,
    /// The app's own outgoing HTTP requests in flight.
    pub requests_in_flight: usize,
    /// While it is in memory.
    pub memory: Option<MemoryInfo>,
    /// The event the newest snapshot was taken after.
    pub last_snapshot: Option<u64>,
    /// The store, as the app's commit thread last found it.
    pub store: StoreInfo,
    /// A deploy under way: its new version replayed `replayed` of the `of`
    /// records the log held when it began, beside the version serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployInfo>,
}

#[derive(Debug, Serialize)]
pub struct DeployInfo {
    pub replayed: u64,
    pub of: u64,
}

/// How the store is: `healthy`, `healing` (a commit failed; the store was
/// opened again and the apps it failed restore themselves) or `down` (it
/// cannot be opened again), why, and whether this app must restore itself
/// from it before its next input.
#[derive(Debug, Serialize)]
pub struct StoreInfo {
    pub health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Commits that failed so far.
    pub errors: u64,
    pub app_lost: bool,
}

#[derive(Debug, Serialize)]
pub struct MemoryInfo {
    pub linear_memory_bytes: u64,
    pub js_heap_bytes: u64,
    pub js_used_bytes: u64,
}

impl From<MemoryStats> for MemoryInfo {
    fn from(stats: MemoryStats) -> Self {
        MemoryInfo {
            linear_memory_bytes: stats.linear_memory_bytes,
            js_heap_bytes: stats.js_heap_bytes,
            js_used_bytes: stats.js_used_bytes,
        }
    }
}

impl Hosted {
    /// How the store is, over every commit thread (a node has one per
    /// app): the worst of them, and their failed commits.
    pub fn store_health(&self) -> (Health, u64) {
        let mut worst = self.committer.health().health();
        let mut errors = self.committer.health().errors();
        for committer in lock(&self.committers).values() {
            let health = committer.health();
            errors += health.errors();
            let this = health.health();
            let rank = |h: &Health| match h {
                Health::Healthy => 0,
                Health::Healing { .. } => 1,
                Health::Down { .. } => 2,
                Health::Stopped { .. } => 0,
            };
            if rank(&this) > rank(&worst) {
                worst = this;
            }
        }
        (worst, errors)
    }

    fn store_info(&self, name: &str) -> StoreInfo {
        // Looked up, not made: a node makes an app's commit thread when it
        // takes the app.
        let committers = lock(&self.committers);
        let health = committers
            .get(name)
            .unwrap_or(&self.committer)
            .health()
            .clone();
        drop(committers);
        let now = health.health();
        StoreInfo {
            health: now.name(),
            reason: now.reason().map(str::to_string),
            errors: health.errors(),
            app_lost: health.is_lost(name),
        }
    }

    /// Every served app's memory now (an app busy with an event is waited
    /// for; one being restored after a fault is left out).
    pub fn memory(&self) -> Vec<(String, MemoryStats)> {
        self.names()
            .into_iter()
            .filter_map(|name| {
                if self.is_restoring(&name) {
                    return None;
                }
                let stats = self.pool.with_durable(&name, |app| app.memory()).ok()?;
                Some((name, stats))
            })
            .collect()
    }

    pub fn info(&self, name: &str) -> Result<AppInfo, HostError> {
        let (options, waiting) = match lock(&self.apps).get(name) {
            Some(Slot::Serving(owner)) if owner.restoring.now() => {
                return Err(HostError::Restoring(name.into()))
            }
            Some(Slot::Serving(owner)) => (
                owner.options.clone(),
                owner.pending.as_ref().map(|p| p.len()),
            ),
            Some(Slot::Parked(options)) => return self.parked_info(name, options.clone()),
            Some(Slot::Busy) => {
                return Err(HostError::Busy(format!(
                    "`{name}` is being deployed, parked or woken; try again"
                )))
            }
            None => {
                return match self.unserved.problem(name) {
                    Some(problem) => {
                        let options = self.kept_options(name).unwrap_or_default();
                        let mut info = self.parked_info(name, options)?;
                        info.state = "unserved";
                        info.problem = Some(problem);
                        Ok(info)
                    }
                    None => Err(HostError::NotFound(name.into())),
                }
            }
        };
        let (events, restores, memory, code) = self
            .pool
            .with_durable(name, |app| {
                Ok((
                    app.seq(),
                    app.restores(),
                    app.memory()?,
                    app.code().to_string(),
                ))
            })
            .map_err(|e| match e {
                Error::NoSuchApp { .. } => HostError::NotFound(name.into()),
                e => internal(e),
            })?;
        Ok(AppInfo {
            name: name.to_string(),
            code,
            options,
            events,
            restores,
            state: "serving",
            problem: None,
            waiting,
            requests_in_flight: self.outgoing.in_flight(name),
            memory: Some(memory.into()),
            last_snapshot: self.last_snapshot(name)?,
            store: self.store_info(name),
            deploy: self
                .deploy_progress(name)
                .map(|(replayed, of)| DeployInfo { replayed, of }),
        })
    }

    /// What the store says of a parked app.
    fn parked_info(&self, name: &str, options: AppOptions) -> Result<AppInfo, HostError> {
        let stored = self
            .store
            .app(name)
            .map_err(internal)?
            .ok_or_else(|| HostError::NotFound(name.into()))?;
        let waiting = options.http.then_some(0);
        // Parking snapshots the app: its log after that is short, if any.
        let last_snapshot = self.last_snapshot(name)?;
        let since = last_snapshot.unwrap_or(0);
        let events = read_log(&*self.store, name, since)
            .map_err(internal)?
            .records
            .last()
            .map_or(since, |r| r.seq);
        Ok(AppInfo {
            name: name.to_string(),
            code: stored.code,
            options,
            events,
            restores: 0,
            state: "parked",
            problem: None,
            waiting,
            requests_in_flight: 0,
            memory: None,
            last_snapshot,
            store: self.store_info(name),
            deploy: None,
        })
    }

    fn last_snapshot(&self, name: &str) -> Result<Option<u64>, HostError> {
        Ok(self
            .store
            .snapshots(name)
            .map_err(internal)?
            .first()
            .map(|s| s.seq))
    }
}
