//! The cluster: the PostgreSQL server and the `elmbox serve` nodes on it,
//! each node under `fiu-run -x` (so that its I/O can be failed at run time
//! with `fiu-ctrl`), its stdout and stderr appended to a file of its own.
//! Nodes are killed with SIGKILL, paused with SIGSTOP, resumed, restarted
//! (under the same `--node-id`, on a new port) and, at the end, stopped with
//! SIGTERM. [`Cluster::teardown`] kills whatever is left, whatever happened.

use std::fs::OpenOptions;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::postgres::Postgres;
use crate::processes::{run, signal};

/// The admin token the nodes are started with.
pub const TOKEN: &str = "chaos-admin-token";

/// How long a node may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cluster {
    pub pg: Postgres,
    /// `n1`, `n2`...: each node's `--node-id`, kept across restarts.
    ids: Vec<String>,
    nodes: Vec<Mutex<Node>>,
    /// Each node's `http://ADDRESS:PORT` while it runs (a paused one
    /// included): what clients pick from.
    urls: RwLock<Vec<Option<String>>>,
    elmbox: PathBuf,
    lease_ms: u64,
    /// Every node process started, one `ID PID` a line: what a later run
    /// kills if this harness was itself killed (see `sweep`).
    pids: PathBuf,
    started: Instant,
    torn_down: AtomicBool,
}

struct Node {
    id: String,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// fiu failure points enabled now.
    fiu: Vec<String>,
    /// Processes of this node that exited without being told to.
    self_exits: Vec<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    /// Starts `nodes` nodes `n1`, `n2`... on `pg`, their logs under
    /// `run_dir/nodes/`.
    pub fn start(
        pg: Postgres,
        nodes: usize,
        run_dir: &Path,
        elmbox: PathBuf,
        lease_ms: u64,
        started: Instant,
    ) -> Result<Cluster, String> {
        let logs = run_dir.join("nodes");
        std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        let cluster = Cluster {
            pg,
            ids: (1..=nodes).map(|n| format!("n{n}")).collect(),
            nodes: (1..=nodes)
                .map(|n| {
                    Mutex::new(Node {
                        id: format!("n{n}"),
                        log: logs.join(format!("n{n}.log")),
                        child: None,
                        paused: false,
                        fiu: Vec::new(),
                        self_exits: Vec::new(),
                    })
                })
                .collect(),
            urls: RwLock::new(vec![None; nodes]),
            elmbox,
            lease_ms,
            pids: run_dir.join("pids"),
            started,
            torn_down: AtomicBool::new(false),
        };
        for i in 0..nodes {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    pub fn id(&self, i: usize) -> String {
        self.ids[i].clone()
    }

    pub fn log_dir(&self) -> PathBuf {
        lock(&self.nodes[0])
            .log
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Node `i`'s URL, if it has a process (running or paused).
    pub fn url(&self, i: usize) -> Option<String> {
        self.urls.read().unwrap_or_else(|e| e.into_inner())[i].clone()
    }

    fn set_url(&self, i: usize, url: Option<String>) {
        self.urls.write().unwrap_or_else(|e| e.into_inner())[i] = url;
    }

    /// A line in node `i`'s log from the harness, so that its log reads
    /// with the campaign's faults.
    fn mark(&self, log: &Path, text: &str) {
        let at = self.started.elapsed().as_secs_f64();
        if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(file, "=== elmbox-chaos +{at:.1}s: {text} ===");
        }
    }

    /// Starts node `i`'s process (it must have none), and waits until it
    /// listens. A node that exits before (the database briefly unreachable
    /// while it opens its store, say) is tried again a few times.
    pub fn start_node(&self, i: usize) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 1..=5 {
            match self.start_once(i) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    eprintln!("chaos: starting {} (attempt {attempt}): {e}", self.id(i));
                    last = e;
                    std::thread::sleep(Duration::from_secs(attempt));
                }
            }
        }
        Err(last)
    }

    fn start_once(&self, i: usize) -> Result<(), String> {
        let mut node = lock(&self.nodes[i]);
        if node.child.is_some() {
            return Err(format!("{} is running already", node.id));
        }
        self.mark(&node.log, &format!("starting {}", node.id));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new("fiu-run");
        command
            .arg("-x")
            .arg(&self.elmbox)
            .args(["serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(self.pg.url())
            .args([
                "--node-id",
                &node.id,
                "--lease-ms",
                &self.lease_ms.to_string(),
            ])
            .env("ELMBOX_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // Its own process group: a ^C at the terminal is the harness's to
        // handle, not the nodes'.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("fiu-run -x elmbox serve: {e} (make chaos installs fiu-utils)"))?;
        let pid = child.id();
        if let Ok(mut pids) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.pids)
        {
            let _ = writeln!(pids, "{} {pid}", node.id);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let url = loop {
            if let Some(url) = listening_in(&node.log, offset) {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                remove_fifos(pid);
                return Err(format!(
                    "{} exited before listening ({status}):\n{}",
                    node.id,
                    tail(&node.log, offset, 2000)
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                remove_fifos(pid);
                return Err(format!(
                    "{} did not listen within {START_TIMEOUT:?}:\n{}",
                    node.id,
                    tail(&node.log, offset, 2000)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        node.child = Some(child);
        node.paused = false;
        node.fiu.clear();
        drop(node);
        self.set_url(i, Some(url));
        Ok(())
    }

    /// The process id of node `i`, if it has a process.
    pub fn pid(&self, i: usize) -> Option<u32> {
        lock(&self.nodes[i]).child.as_ref().map(Child::id)
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&self, i: usize) -> Result<(), String> {
        let mut node = lock(&self.nodes[i]);
        let Some(mut child) = node.child.take() else {
            return Err(format!("{} has no process", node.id));
        };
        self.mark(&node.log, &format!("SIGKILL {}", node.id));
        let _ = child.kill();
        let _ = child.wait();
        remove_fifos(child.id());
        node.paused = false;
        node.fiu.clear();
        drop(node);
        self.set_url(i, None);
        Ok(())
    }

    /// SIGSTOP: the node keeps its sockets, and answers nothing.
    pub fn pause(&self, i: usize) -> Result<(), String> {
        let mut node = lock(&self.nodes[i]);
        let pid = node.child.as_ref().map(Child::id).ok_or("no process")?;
        self.mark(&node.log, &format!("SIGSTOP {}", node.id));
        signal(pid, libc::SIGSTOP)?;
        node.paused = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&self, i: usize) -> Result<(), String> {
        let mut node = lock(&self.nodes[i]);
        let pid = node.child.as_ref().map(Child::id).ok_or("no process")?;
        signal(pid, libc::SIGCONT)?;
        node.paused = false;
        self.mark(&node.log, &format!("SIGCONT {}", node.id));
        Ok(())
    }

    /// Runs `fiu-ctrl -c COMMAND PID` for each command on node `i`:
    /// `enable…` records the point as enabled, `disable` forgets it.
    pub fn fiu(&self, i: usize, commands: &[String]) -> Result<(), String> {
        let mut node = lock(&self.nodes[i]);
        let pid = node.child.as_ref().map(Child::id).ok_or("no process")?;
        if node.paused {
            // Its control thread is stopped too: fiu-ctrl would wait.
            return Err(format!("{} is paused", node.id));
        }
        let mut fiu = Command::new("fiu-ctrl");
        for c in commands {
            fiu.args(["-c", c]);
        }
        fiu.arg(pid.to_string());
        self.mark(&node.log, &format!("fiu-ctrl {}", commands.join("; ")));
        // Counted as enabled before they are: a command that failed half
        // way is disabled by the next heal all the same.
        let named = |c: &String| {
            c.split("name=")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or_default()
                .to_string()
        };
        let disabling = commands.iter().all(|c| c.starts_with("disable"));
        for c in commands {
            match c.starts_with("disable") {
                true => node.fiu.retain(|enabled| *enabled != named(c)),
                false => node.fiu.push(named(c)),
            }
        }
        let ran = run(&mut fiu, Duration::from_secs(15))?;
        let said = ran.output();
        // fiu-ctrl exits 0 even when a command fails, and says so; disabling
        // a point that was not enabled is such a failure, and harmless.
        let refused = said.contains("Error") || said.contains("returned error");
        if !ran.status.success() || (refused && !disabling) {
            return Err(format!("fiu-ctrl on {}: {said}", node.id));
        }
        Ok(())
    }

    /// Node processes that exited though nobody told them to, since the
    /// last call: each reaped, said, and its node left without a process
    /// (the nemesis starts it again).
    pub fn reap_self_exits(&self) -> Vec<String> {
        let mut found = Vec::new();
        for i in 0..self.len() {
            let mut node = lock(&self.nodes[i]);
            let exited = match node.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status),
                _ => None,
            };
            if let Some(status) = exited {
                let child = node.child.take();
                remove_fifos(child.map_or(0, |c| c.id()));
                let at = self.started.elapsed().as_secs_f64();
                let said = format!(
                    "{} exited by itself at +{at:.1}s ({status}); its log: {}",
                    node.id,
                    node.log.display()
                );
                self.mark(&node.log, &format!("exited by itself ({status})"));
                node.self_exits.push(said.clone());
                found.push(said);
                drop(node);
                self.set_url(i, None);
            }
        }
        found
    }

    /// Every self exit seen so far.
    pub fn self_exits(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flat_map(|n| lock(n).self_exits.clone())
            .collect()
    }

    /// Puts every node back: resumed if paused, its failure points
    /// disabled, started if it has no process. What could not be done.
    pub fn heal_nodes(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.reap_self_exits();
        for i in 0..self.len() {
            let (paused, points, running) = {
                let node = lock(&self.nodes[i]);
                (node.paused, node.fiu.clone(), node.child.is_some())
            };
            if paused {
                if let Err(e) = self.resume(i) {
                    problems.push(format!("resuming {}: {e}", self.id(i)));
                }
            }
            if !points.is_empty() {
                let disable: Vec<String> =
                    points.iter().map(|p| format!("disable name={p}")).collect();
                if let Err(e) = self.fiu(i, &disable) {
                    problems.push(format!("disabling faults on {}: {e}", self.id(i)));
                }
            }
            if !running {
                if let Err(e) = self.start_node(i) {
                    problems.push(format!("starting {}: {e}", self.id(i)));
                }
            }
        }
        problems
    }

    /// SIGTERM to every node, each waited for up to `timeout` (then
    /// SIGKILL): how each ended.
    pub fn terminate(&self, timeout: Duration) -> Vec<(String, String)> {
        let mut ended = Vec::new();
        for i in 0..self.len() {
            let mut node = lock(&self.nodes[i]);
            let id = node.id.clone();
            let Some(mut child) = node.child.take() else {
                ended.push((id, "no process".into()));
                continue;
            };
            self.mark(&node.log, &format!("SIGTERM {id}"));
            if node.paused {
                let _ = signal(child.id(), libc::SIGCONT);
            }
            let _ = signal(child.id(), libc::SIGTERM);
            let how = match wait_for(&mut child, timeout) {
                Some(status) => describe(status),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    format!("still running {timeout:?} after SIGTERM: killed")
                }
            };
            remove_fifos(child.id());
            drop(node);
            self.set_url(i, None);
            ended.push((id, how));
        }
        ended
    }

    /// Deploys `source` as `app` through node `i`: 201, a new app.
    pub fn deploy(&self, i: usize, app: &str, source: &[u8]) -> Result<(), String> {
        let url = self
            .url(i)
            .ok_or_else(|| format!("{} has no address", self.id(i)))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut response = agent
            .put(format!("{url}/_elmbox/apps/{app}"))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .send(source)
            .map_err(|e| format!("deploying {app}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            201 => Ok(()),
            _ => Err(format!("deploying {app}: {status} {text}")),
        }
    }

    /// Waits (up to 30 s) until every node answers `/healthz`.
    pub fn wait_healthy(&self) -> Result<(), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.len() {
            loop {
                let url = self.url(i).unwrap_or_default();
                let healthy = agent
                    .get(format!("{url}/healthz"))
                    .call()
                    .is_ok_and(|r| r.status().as_u16() == 200);
                if healthy {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "{} does not answer /healthz after healing",
                        self.id(i)
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// Kills every node left and tears PostgreSQL down. Idempotent, for
    /// any way out of the campaign (a panic included).
    pub fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        for node in &self.nodes {
            let mut node = lock(node);
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
                remove_fifos(child.id());
            }
        }
        // Every node is gone: nothing for a later run to sweep.
        let _ = std::fs::remove_file(&self.pids);
        self.pg.teardown();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn wait_for(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(0) => "exited 0".into(),
        _ => format!("{status}"),
    }
}

/// The URL in the first `elmbox: listening on URL` line after `offset`.
fn listening_in(log: &Path, offset: u64) -> Option<String> {
    let text = read_from(log, offset, usize::MAX);
    text.lines()
        .find_map(|line| line.strip_prefix("elmbox: listening on "))
        .map(|url| url.trim().to_string())
}

fn read_from(path: &Path, offset: u64, at_most: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = offset.max(len.saturating_sub(at_most as u64));
    if file.seek(SeekFrom::Start(from)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `at_most` bytes of `path` after `offset`.
fn tail(path: &Path, offset: u64, at_most: usize) -> String {
    read_from(path, offset, at_most)
}

/// The FIFOs libfiu's remote control made for `pid` (a process killed
/// with SIGKILL leaves them behind).
fn remove_fifos(pid: u32) {
    let prefix = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
    for end in ["in", "out"] {
        let _ = std::fs::remove_file(format!("{prefix}/fiu-ctrl-{pid}.{end}"));
    }
}

/// Node processes a run of this harness left behind (it was itself killed
/// with SIGKILL, say), by the pid files under `work_dir`: killed if they
/// still are `elmbox serve` nodes.
pub fn sweep(work_dir: &Path) {
    let Ok(runs) = std::fs::read_dir(work_dir) else {
        return;
    };
    for run in runs.flatten() {
        let pids = run.path().join("pids");
        let Ok(text) = std::fs::read_to_string(&pids) else {
            continue;
        };
        for pid in text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("elmbox")
                && cmdline.contains(" serve ")
                && cmdline.contains("--node-id")
            {
                eprintln!(
                    "chaos: killing node {pid} left by an earlier run ({})",
                    pids.display()
                );
                let _ = signal(pid, libc::SIGCONT);
                let _ = signal(pid, libc::SIGKILL);
                remove_fifos(pid);
            }
        }
        let _ = std::fs::remove_file(&pids);
        // The copy of the binary its nodes ran.
        let _ = std::fs::remove_file(run.path().join("elmbox"));
    }
    crate::postgres::sweep_mounts(work_dir);
}
