//! `elmbox serve`: the HTTP server (crate `elmbox-server`), on a tokio
//! runtime, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use elmbox::durable::StateLocation;
use elmbox::PoolConfig;
use elmbox_server::{NodeConfig, ServeConfig, Server};

/// Serve Elm apps over HTTP: deploy them through the admin API
/// (`PUT /_elmbox/apps/NAME` with the app's JavaScript or built module),
/// send them events (`POST /apps/NAME/events`). Every event is kept in the
/// state (as with `run --state`), and answered once it is durable. SIGTERM lets
/// requests in flight finish, snapshots every app and exits 0.
#[derive(Args)]
pub struct ServeArgs {
    /// Where the apps, their event logs and snapshots are kept: a
    /// directory, or the PostgreSQL database at
    /// `postgres://user:password@host:port/db`.
    #[arg(long, value_name = "DIR|URL")]
    state: StateLocation,

    /// Address to listen on (port 0: any free port, printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Token the admin API requires (`Authorization: Bearer TOKEN`);
    /// without one the admin API refuses every call.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ELMBOX_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,

    /// In HTTP mode (`http=true`), how long a request waits for the app's
    /// response before it gets 504, in ms.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    response_timeout_ms: u64,

    /// Park an app idle this long, in ms: snapshot it and drop it from
    /// memory until its next request (0: never).
    #[arg(long, value_name = "MS", default_value_t = 600_000)]
    idle_ms: u64,

    /// Apps served at once.
    #[arg(long, value_name = "N", default_value_t = PoolConfig::default().max_apps)]
    max_apps: u32,

    /// Run as one node of many on a PostgreSQL state, under this name
    /// (unique among the nodes): an app runs on the node that holds its
    /// lease; requests for an app another live node holds are redirected
    /// there (307), and an app whose lease expired is taken over.
    #[arg(long, value_name = "NAME")]
    node_id: Option<String>,

    /// How long a node's lease on an app lasts unless renewed (every third
    /// of it), in ms: how long an app is unavailable after its node dies.
    #[arg(long, value_name = "MS", default_value_t = 5_000, requires = "node_id")]
    lease_ms: u64,

    /// The address other nodes redirect this node's apps' clients to
    /// (default: http:// and the listen address).
    #[arg(long, value_name = "URL", requires = "node_id")]
    advertise: Option<String>,

    /// A PEM file of CA certificates to trust, besides the system's, for
    /// the apps' outgoing https requests (e.g. a company's own CA);
    /// repeatable. Which hosts an app may call is set per app when it is
    /// deployed (`allow-http=HOST[:PORT],...`).
    #[arg(long, value_name = "FILE")]
    http_ca: Vec<std::path::PathBuf>,

    /// How much of each app's history to keep, unless its deploy says
    /// (`retain-log=`): `all` (every event, so that a new version can
    /// always be deployed by replay), or N, the log back to the N-th newest
    /// snapshot and no further (the store stays bounded; a deploy by replay
    /// over a log whose start was dropped is refused: use `migrate=true` or
    /// `fresh=true`).
    #[arg(long, value_name = "N|all", default_value = "all")]
    retain_log: elmbox::durable::RetainLog,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if args.node_id.as_deref() == Some("") {
        anyhow::bail!("--node-id cannot be empty");
    }
    if args.lease_ms < 30 {
        anyhow::bail!("--lease-ms {} is too short: at least 30", args.lease_ms);
    }
    if let Some(address) = &args.advertise {
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            anyhow::bail!("--advertise {address}: an http:// or https:// URL");
        }
    }
    let config = ServeConfig {
        state: args.state,
        listen: args.listen,
        admin_token: args.admin_token,
        pool: PoolConfig {
            max_apps: args.max_apps,
            code_cache: crate::code_cache::dir(),
            ..PoolConfig::default()
        },
        response_timeout: std::time::Duration::from_millis(args.response_timeout_ms),
        idle_timeout: (args.idle_ms > 0).then(|| std::time::Duration::from_millis(args.idle_ms)),
        node: args.node_id.map(|id| NodeConfig {
            id,
            advertise: args.advertise,
            lease: std::time::Duration::from_millis(args.lease_ms),
        }),
        http_ca: args.http_ca,
        retain_log: args.retain_log,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        // Scripts and tests read the address from this line.
        eprintln!("elmbox: listening on http://{}", server.local_addr()?);
        server.run(shutdown()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or Ctrl-C.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing requests in flight, then a snapshot of every app");
}
