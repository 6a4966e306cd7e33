//! `elmbox serve`: Elm backends over HTTP ([`Server`]). Apps are deployed
//! through the admin API, kept in a state directory or a PostgreSQL
//! database (as `elmbox run --state`: every event logged, the sandbox
//! snapshotted), and answer
//! `POST /apps/{name}/events` once the event is durable. See the crate's
//! README for the layout.

mod hosted;
mod http_mode;
mod metrics;
mod options;
mod outgoing;
mod routes;
mod scheduler;
mod unserved;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use elmbox::durable::{RetainLog, StateLocation};
use elmbox::PoolConfig;

pub use hosted::{AppInfo, HostError};
pub use options::{AppOptions, Deploy, DEFAULT_DEADLINE_MS};

use hosted::{Hosted, Node};
use routes::ServerState;

/// What `elmbox serve` is given.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the apps are kept: a state directory or a database.
    pub state: StateLocation,
    pub listen: SocketAddr,
    /// `None`: the admin API refuses every call.
    pub admin_token: Option<String>,
    /// The apps served at once, and the linear memory any one may reach.
    pub pool: PoolConfig,
    /// In HTTP mode, how long a request waits for the app's response
    /// before it gets 504.
    pub response_timeout: Duration,
    /// Apps idle this long are parked: snapshotted and dropped from memory
    /// until their next request. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// One node of many on a shared database: apps run under leases.
    pub node: Option<NodeConfig>,
    /// CA certificates (PEM files) trusted for the apps' outgoing https
    /// requests, besides the system's.
    pub http_ca: Vec<std::path::PathBuf>,
    /// How much of an app's history the store keeps unless its deploy
    /// says (`retain-log=`).
    pub retain_log: RetainLog,
}

/// `--node-id`, `--advertise`, `--lease-ms`.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: String,
    /// Where other nodes send this node's apps' clients; `None`: the
    /// listen address.
    pub advertise: Option<String>,
    pub lease: Duration,
}

/// A server with its apps loaded and its socket bound, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    idle_timeout: Option<Duration>,
    state: Arc<ServerState>,
}

impl Server {
    /// Opens the state, loads every app it holds, and binds.
    pub async fn bind(config: ServeConfig) -> anyhow::Result<Server> {
        let ServeConfig {
            state,
            listen,
            admin_token,
            pool,
            response_timeout,
            idle_timeout,
            node,
            http_ca,
            retain_log,
        } = config;
        let client = elmbox_outgoing::OutgoingClient::new(&http_ca)?;
        // Bound first: a node leases apps under the address it listens on.
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let node = match node {
            Some(node) => Some(Node {
                address: match node.advertise {
                    Some(address) => address,
                    None => format!("http://{}", listener.local_addr()?),
                },
                id: node.id,
                lease: node.lease,
            }),
            None => None,
        };
        let metrics = Arc::new(metrics::Metrics::new());
        let for_apps = metrics.clone();
        let outgoing = Arc::new(outgoing::Outgoing::new(
            client,
            tokio::runtime::Handle::current(),
            metrics.clone(),
        ));
        let hosted = tokio::task::spawn_blocking(move || {
            Hosted::open(&state, pool, node, outgoing, for_apps, retain_log)
        })
        .await??;
        Ok(Server {
            listener,
            idle_timeout,
            state: Arc::new(ServerState {
                hosted,
                admin_token: admin_token.filter(|t| !t.is_empty()),
                response_timeout,
                metrics,
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets the requests in flight
    /// finish, snapshots every app and waits until everything is durable.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = routes::router(self.state.clone());
        // Until the apps are closed, which stops the scheduler.
        let timers = self.state.clone();
        let firing = std::thread::Builder::new()
            .name("elmbox-wakes".into())
            .spawn(move || timers.hosted.fire_timers())?;
        let parking = self.idle_timeout.map(|idle| {
            every(
                &self.state,
                (idle / 2).max(Duration::from_millis(50)),
                move |hosted| {
                    hosted.park_idle(idle);
                },
            )
        });
        // Until the apps are closed: their last writes need their leases.
        let renewing = self
            .state
            .hosted
            .lease_time()
            .map(|lease| every(&self.state, lease / 3, Hosted::renew_leases));
        // Apart from the renewals, which a long takeover must not hold up.
        let waking = self.state.hosted.lease_time().map(|lease| {
            every(&self.state, lease / 3, move |hosted| {
                // Due before the next look: taken over in time.
                hosted.take_over_due_timers(std::time::SystemTime::now() + lease / 3)
            })
        });
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        if let Some(parking) = parking {
            parking.abort();
        }
        if let Some(waking) = waking {
            waking.abort();
        }
        let state = self.state;
        let closed = tokio::task::spawn_blocking(move || state.hosted.close()).await;
        if let Some(renewing) = renewing {
            renewing.abort();
        }
        let _ = firing.join();
        closed??;
        Ok(())
    }
}

/// Calls `work` on the hosted apps every `period`, on a blocking thread,
/// one call at a time, until the task is aborted.
fn every(
    state: &Arc<ServerState>,
    period: Duration,
    work: impl Fn(&Hosted) + Clone + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            let (state, work) = (state.clone(), work.clone());
            let _ = tokio::task::spawn_blocking(move || work(&state.hosted)).await;
        }
    })
}
