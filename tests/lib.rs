//! Shared helpers for the end-to-end tests: one compiled runtime per test
//! binary, and the example apps as JavaScript.
//!
//! Every example runs as our hand-written fixture (`make fixtures` assembles
//! them into `target/fixtures/`), and also as real `elm make` output when
//! `ELMBOX_ELM_OUT` names a folder holding `counter.js`, `wordcount.js` and
//! `timers.js` (`make elm` writes them where Elm's package server is reachable).

pub mod http_api;
pub mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use elmbox::{App, AppConfig, Console, ConsoleLine, Runtime};

/// Fixed start of the virtual clock, so timestamps in responses are exact.
pub const EPOCH_MS: f64 = 1_700_000_000_000.0;

/// elm-analyse's compiled app (`dist/app/backend-elm.js` of the npm
/// package), a real Elm program we did not write: `make test` installs it
/// (`make elm-analyse`) and names its folder in `ELMBOX_ELM_ANALYSE`.
pub fn elm_analyse_app() -> PathBuf {
    let dir = std::env::var_os("ELMBOX_ELM_ANALYSE")
        .map(PathBuf::from)
        .expect("ELMBOX_ELM_ANALYSE names no elm-analyse: run `make test`, which installs it");
    let app = dir.join("dist/app/backend-elm.js");
    assert!(
        app.is_file(),
        "{} missing: run `make elm-analyse`",
        app.display()
    );
    app
}

/// The guest compiled once and shared by every test in the binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("the embedded guest compiles"))
}

/// A runtime whose apps may have CPU deadlines (epoch interruption on).
pub fn deadline_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::with_deadlines().expect("the embedded guest compiles"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One build of an example app: a label for messages and its JavaScript.
pub struct Source {
    pub label: String,
    pub js: Vec<u8>,
}

/// The example `name` as our fixture, plus real Elm output when available.
pub fn sources(name: &str) -> Vec<Source> {
    let fixtures = std::env::var_os("ELMBOX_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/fixtures"));
    let fixture = fixtures.join(format!("{name}.js"));
    let js = std::fs::read(&fixture).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `make fixtures` (make test does)",
            fixture.display()
        )
    });
    let mut all = vec![Source {
        label: format!("fixture {name}"),
        js,
    }];
    if let Some(dir) = std::env::var_os("ELMBOX_ELM_OUT") {
        let compiled = Path::new(&dir).join(format!("{name}.js"));
        let js = std::fs::read(&compiled)
            .unwrap_or_else(|e| panic!("ELMBOX_ELM_OUT is set but {}: {e}", compiled.display()));
        all.push(Source {
            label: format!("elm make {name}"),
            js,
        });
    }
    all
}

/// Default test configuration: fixed clock, console collected.
pub fn config() -> (AppConfig, Arc<Mutex<Vec<ConsoleLine>>>) {
    let (console, lines) = Console::collect();
    (
        AppConfig::default().epoch_ms(EPOCH_MS).console(console),
        lines,
    )
}

/// Loads `js` with the default test configuration.
pub fn load(js: &[u8]) -> App {
    runtime().load(js, config().0).expect("the app loads")
}

/// A minimal app in the shape of Elm output, for error cases: `body` runs
/// inside the IIFE and must define `init(args)`.
pub fn elm_like(body: &str) -> String {
    format!(
        "(function(scope){{'use strict';\n{body}\nscope['Elm'] = {{ Main: {{ init: init }} }};\n}}(this));"
    )
}

/// An app whose answers draw on `Math.random` and the clock: each event is
/// answered with its number, a draw and `Date.now()`, and again with a draw
/// from a timer 1 s later. What a restored or replayed app must repeat.
pub fn dicey_app() -> String {
    elm_like(
        "var subs = [], n = 0;
         function emit(v) { subs.forEach(function (s) { s(v); }); }
         function init() { return { ports: {
           onEvent: { send: function (v) {
             n++;
             var mine = n;
             emit({ n: mine, draw: Math.random(), now: Date.now() });
             setTimeout(function () { emit({ later: mine, draw: Math.random(), now: Date.now() }); }, 1000);
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    )
}

/// Path of the `elmbox` binary built by `make build`.
pub fn elmbox_bin() -> PathBuf {
    let bin = std::env::var_os("ELMBOX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/elmbox"));
    assert!(
        bin.is_file(),
        "{} missing: run `make build` (make test does)",
        bin.display()
    );
    bin
}

/// Path of a fixture assembled by `make fixtures`.
pub fn fixture(name: &str) -> String {
    let dir = std::env::var("ELMBOX_FIXTURES")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/fixtures").to_string());
    format!("{dir}/{name}.js")
}

/// Runs `program` with `args`, feeding it `stdin`; returns what it did.
pub fn run_with_stdin(program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let mut input = child.stdin.take().unwrap();
    // A program that exits early may not read it all; that is its answer.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// A server process that has said where it listens, and what it has
/// written to its standard error (collected as it goes).
pub struct Listening {
    pub child: std::process::Child,
    /// `http://ADDRESS:PORT`, as the server said it.
    pub url: String,
    pub log: Arc<Mutex<String>>,
}

/// Spawns `command` (an `elmbox serve`) with its standard error piped, and
/// waits until it says `elmbox: listening on URL`; panics with what it wrote
/// if it stops before.
pub fn spawn_listening(command: &mut Command) -> Listening {
    use std::io::BufRead;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("elmbox serve starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!(
                "the server stopped before listening ({:?}):\n{log}",
                child.wait()
            );
        };
        log.push_str(&line);
        log.push('\n');
        if let Some(url) = line.strip_prefix("elmbox: listening on ") {
            break url.trim().to_string();
        }
    };
    let log = Arc::new(Mutex::new(log));
    let more = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = more.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    Listening { child, url, log }
}

/// Runs the `elmbox` binary.
pub fn elmbox(args: &[&str], stdin: &[u8]) -> Output {
    run_with_stdin(&elmbox_bin(), args, stdin)
}

/// Each stdout line parsed as JSON.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An app with a count, and a few ways to break its limits, chosen by the event.
pub fn unruly_app() -> String {
    elm_like(
        "var subs = [], count = 0;
         function init() { return { ports: {
           onEvent: { send: function (v) {
             count++;
             if (v === 'spin') { for (;;) {} }
             if (v === 'hoard') { var h = []; for (;;) h.push(new Array(4096).fill(count)); }
             if (v === 'recurse') { (function deeper(n) { return deeper(n + 1) + 1; })(0); }
             if (v === 'storm') { (function again() { setTimeout(again, 0); })(); }
             subs.forEach(function (s) { s({ count: count, event: v }); });
           } },
           respond: { subscribe: function (f) { subs.push(f); } } } }; }",
    )
}

/// A throwaway PostgreSQL server from Debian's `postgresql` package: a
/// cluster made by `initdb` in a temporary directory, listening on a free
/// loopback port (and on a unix socket in that directory), logins by
/// password. Run as the `postgres` user when the tests run as root (as CI
/// does: PostgreSQL refuses root). Stopped and removed when dropped.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    fsync: bool,
}

/// The superuser's password on every [`PgServer`].
pub const PG_PASSWORD: &str = "elmbox-test-secret";

impl PgServer {
    /// A server for tests: without fsync, as only elmbox is ever killed
    /// there, never the server.
    pub fn start() -> PgServer {
        PgServer::start_with_fsync(false)
    }

    /// A server that syncs its commits to disk as PostgreSQL does by
    /// default: for measuring durable writes.
    pub fn start_durable() -> PgServer {
        PgServer::start_with_fsync(true)
    }

    fn start_with_fsync(fsync: bool) -> PgServer {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("elmbox-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("password"), PG_PASSWORD).unwrap();
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
        if as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(chown.success(), "chown of {} to postgres", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let server = PgServer {
            bin: postgres_bin(),
            dir,
            port,
            as_postgres,
            fsync,
        };
        let data = server.dir.join("data");
        server.check(
            server
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8"])
                .arg(format!(
                    "--pwfile={}",
                    server.dir.join("password").display()
                ))
                // The cluster does not outlive its user: no need to wait for
                // its files to reach the disk.
                .args(["--no-instructions", "--no-sync"]),
        );
        server.restart();
        server
    }

    /// Starts the server (again) on its port and data directory, and
    /// waits until it takes connections.
    pub fn restart(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync={}",
            self.port,
            self.dir.display(),
            if self.fsync { "on" } else { "off" }
        );
        self.check(
            self.command("pg_ctl")
                .args(["start", "-w", "-D"])
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-o", &options]),
        );
    }

    /// Stops the server as an administrator would in a hurry (`pg_ctl
    /// stop -m fast`): its sessions are ended, transactions in flight
    /// rolled back, and it is down when this returns.
    pub fn stop(&self) {
        self.check(
            self.command("pg_ctl")
                .args(["stop", "-w", "-m", "fast", "-D"])
                .arg(self.dir.join("data")),
        );
    }

    /// One of the server's programs, run as the user the server runs as.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.as_postgres {
            true => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(path);
                command
            }
            false => Command::new(path),
        }
    }

    /// Runs `command`; panics with its output and the server's log if it
    /// fails.
    fn check(&self, command: &mut Command) {
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{command:?} failed: {}{}\nserver log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` on this server, logged in as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// A client of database `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to {db}: {e}"))
    }

    /// A new, empty database; its URL.
    pub fn database(&self, db: &str) -> String {
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .unwrap();
        self.url(db)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest PostgreSQL server programs Debian installed (their `bin`
/// folder), if any.
pub fn postgres_server_bin() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn postgres_bin() -> PathBuf {
    postgres_server_bin().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin: install Debian's \
             `postgresql` package (make test does)"
        )
    })
}
