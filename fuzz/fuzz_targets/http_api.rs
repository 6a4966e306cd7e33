//! Arbitrary calls on the HTTP API of a real server, in this process:
//! admin and event routes with arbitrary app names, query strings, headers
//! and bodies over TCP, restarts on the same store, then every app that
//! was deployed probed (`elmbox_tests::http_api` says what is checked). A
//! panic anywhere in the server aborts, which the fuzzer reports.

#![no_main]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use elmbox::durable::StateLocation;
use elmbox::PoolConfig;
use elmbox_server::{ServeConfig, Server};
use elmbox_tests::http_api::{self, Bodies, ServerUnderTest, RESPONSE_TIMEOUT_MS, TOKEN};
use libfuzzer_sys::fuzz_target;
use tokio::sync::oneshot;

static COUNTER: &[u8] = include_bytes!("../../target/fixtures/counter.js");
static TIMERS: &[u8] = include_bytes!("../../target/fixtures/timers.js");

/// The server on a tokio runtime of this process.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    code_cache: PathBuf,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

impl ServerUnderTest for InProcess {
    fn start(&mut self, state: &Path) -> SocketAddr {
        let config = ServeConfig {
            state: StateLocation::Directory(state.to_path_buf()),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_token: Some(TOKEN.into()),
            pool: PoolConfig {
                max_apps: 64,
                code_cache: Some(self.code_cache.clone()),
                ..PoolConfig::default()
            },
            response_timeout: Duration::from_millis(RESPONSE_TIMEOUT_MS),
            idle_timeout: None,
            node: None,
            http_ca: Vec::new(),
            retain_log: Default::default(),
        };
        let server = self
            .runtime
            .block_on(Server::bind(config))
            .expect("the server starts");
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = self.runtime.spawn(server.run(async {
            let _ = stopped.await;
        }));
        self.running = Some((stop, task));
        addr
    }

    fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let stopped = self.runtime.block_on(task).expect("the server task ends");
            stopped.expect("the server stops cleanly");
        }
    }

    fn soundness(&mut self) -> Result<(), String> {
        // A panic has aborted already (the hook below).
        Ok(())
    }
}

static SERVER: Mutex<Option<InProcess>> = Mutex::new(None);

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("elmbox-fuzz-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let mut guard = SERVER.lock().unwrap();
    let server = guard.get_or_insert_with(|| {
        // tokio catches a task's panic; the fuzzer must see it.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            std::process::abort();
        }));
        InProcess {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            code_cache: scratch().join("code-cache"),
            running: None,
        }
    });
    let bodies = Bodies {
        good: COUNTER.to_vec(),
        others: vec![TIMERS.to_vec(), b"\0asm\x01\0\0\0".to_vec(), b"(".to_vec()],
    };
    let calls = http_api::calls(data, &bodies, 16);
    let state = scratch().join("state");
    let _ = std::fs::remove_dir_all(&state);
    if let Err(e) = http_api::check(server, &state, &calls) {
        panic!("{e}");
    }
});
