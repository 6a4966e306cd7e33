//! A real `elmbox serve` for the tests ([`Served`]): started on a free
//! loopback port, called over HTTP, signalled, killed with SIGKILL when
//! dropped.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elmbox_tests::{elmbox_bin, spawn_listening, Listening};
use serde_json::Value;

pub(crate) const TOKEN: &str = "test-token";

/// A fresh, empty scratch directory for one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `elmbox serve`; killed when dropped.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) url: String,
    log: Arc<Mutex<String>>,
    pub(crate) http: ureq::Agent,
}

impl Served {
    /// On the state directory or database `state`.
    pub(crate) fn start(state: impl AsRef<OsStr>) -> Served {
        Served::start_with(state, Some(TOKEN), &[])
    }

    pub(crate) fn start_with(
        state: impl AsRef<OsStr>,
        token: Option<&str>,
        args: &[&str],
    ) -> Served {
        Served::start_under(&[], state, token, args)
    }

    /// Run by `wrapper` (`["fiu-run", "-x"]`, say), which execs the
    /// server in its own process.
    pub(crate) fn start_under(
        wrapper: &[&str],
        state: impl AsRef<OsStr>,
        token: Option<&str>,
        args: &[&str],
    ) -> Served {
        Served::start_in(wrapper, &[], state, token, args)
    }

    /// With the environment variables `env` besides.
    pub(crate) fn start_env(state: impl AsRef<OsStr>, env: &[(&str, &str)]) -> Served {
        Served::start_in(&[], env, state, Some(TOKEN), &[])
    }

    fn start_in(
        wrapper: &[&str],
        env: &[(&str, &str)],
        state: impl AsRef<OsStr>,
        token: Option<&str>,
        args: &[&str],
    ) -> Served {
        let mut command = match wrapper {
            [] => Command::new(elmbox_bin()),
            [program, rest @ ..] => {
                let mut command = Command::new(program);
                command.args(rest).arg(elmbox_bin());
                command
            }
        };
        command.env_remove("ELMBOX_ADMIN_TOKEN");
        if let Some(token) = token {
            command.env("ELMBOX_ADMIN_TOKEN", token);
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(state)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info");
        let Listening { child, url, log } = spawn_listening(&mut command);
        // A connection per request: the server closes a connection whose
        // request it refused before reading its body (an admin upload
        // without the token), and a pooled one would then be reused closed.
        let http = ureq::Agent::config_builder()
            .max_idle_connections(0)
            .http_status_as_error(false)
            // A node's 307 to another is for the tests to see.
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Served {
            child,
            url,
            log,
            http,
        }
    }

    pub(crate) fn deploy(&self, name: &str, query: &str, source: &[u8]) -> (u16, String) {
        let url = format!("{}/_elmbox/apps/{name}{query}", self.url);
        let response = self
            .http
            .put(&url)
            .header("Authorization", format!("Bearer {TOKEN}"))
            .send(source);
        read(response)
    }

    pub(crate) fn event(&self, name: &str, body: &str) -> (u16, String) {
        let url = format!("{}/apps/{name}/events", self.url);
        read(self.http.post(&url).send(body))
    }

    /// An event, and the `Location` of a redirect.
    pub(crate) fn event_located(&self, name: &str, body: &str) -> (u16, Option<String>, String) {
        let url = format!("{}/apps/{name}/events", self.url);
        let mut response = self.http.post(&url).send(body).expect("the server answers");
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, location, text)
    }

    /// Sends the process `signal` (`STOP`, `CONT`).
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
    }

    pub(crate) fn admin_get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = self.http.get(format!("{}/_elmbox/{path}", self.url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        read(request.call())
    }

    /// The count in a counter's answer.
    pub(crate) fn count(&self, name: &str, body: &str) -> u64 {
        let (status, answer) = self.event(name, body);
        assert_eq!(status, 200, "{answer}\n{}", self.log());
        count(&answer)
    }

    /// `GET /metrics`.
    pub(crate) fn metrics(&self) -> String {
        let (status, text) = read(self.http.get(format!("{}/metrics", self.url)).call());
        assert_eq!(status, 200, "{text}");
        text
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the server's log says `words` (it is read by a thread
    /// of its own), for up to 10 s.
    pub(crate) fn wait_for_log(&self, words: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(words) {
            assert!(
                Instant::now() < deadline,
                "no `{words}` in:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "SIGTERM did not stop the server");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client sending the event `x` to app `name` one after another until
/// `stop` is set: every answer, and the longest it waited for one.
pub(crate) fn steady_client(
    server: &Served,
    name: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Vec<(u16, String)>, Duration)> {
    let (url, http) = (
        format!("{}/apps/{name}/events", server.url),
        server.http.clone(),
    );
    std::thread::spawn(move || {
        let mut answers = Vec::new();
        let mut longest = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            let asked = Instant::now();
            answers.push(read(http.post(&url).send("x")));
            longest = longest.max(asked.elapsed());
        }
        (answers, longest)
    })
}

pub(crate) fn read(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, String) {
    let mut response = response.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, body)
}

/// The count in a counter's answer.
pub(crate) fn count(answer: &str) -> u64 {
    let value: Value = serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    value[0]["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("{answer}"))
}
