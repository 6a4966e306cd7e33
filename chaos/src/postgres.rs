//! The one PostgreSQL server of the campaign: Debian's `postgresql`, its
//! data directory on a small tmpfs this harness mounts (so that its disk can
//! be filled on purpose), fsync on (it is the store whose promises are
//! checked), run as the `postgres` user as `elmbox_tests::PgServer` does.
//! Stopped, started, crashed and filled by the nemesis; torn down (server
//! killed, tmpfs unmounted) whatever happens.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::processes::{alive, run, run_ok, signal};

/// The superuser's password.
const PASSWORD: &str = "elmbox-chaos-secret";

/// How long any `pg_ctl`, `initdb`, `mount` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Postgres {
    bin: PathBuf,
    /// Owned by `postgres`: its log, unix socket and password file.
    dir: PathBuf,
    /// The tmpfs mount point; the data directory is `disk/data`.
    disk: PathBuf,
    port: u16,
    mounted: AtomicBool,
    /// The file that fills the disk, while it does.
    filler: Mutex<Option<PathBuf>>,
    torn_down: AtomicBool,
}

impl Postgres {
    /// Mounts a `disk_mb` tmpfs under `run_dir`, makes a cluster on it and
    /// starts the server. Whatever was set up is torn down if a later step
    /// fails (the value is dropped).
    pub fn start(run_dir: &Path, disk_mb: u64) -> Result<Postgres, String> {
        let dir = run_dir.join("postgres");
        let disk = run_dir.join("pgdisk");
        for made in [&dir, &disk] {
            std::fs::create_dir_all(made).map_err(|e| format!("{}: {e}", made.display()))?;
        }
        std::fs::write(dir.join("password"), PASSWORD).map_err(|e| e.to_string())?;
        run_ok(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir),
            COMMAND_TIMEOUT,
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let server = Postgres {
            bin: postgres_bin()?,
            dir,
            disk,
            port,
            mounted: AtomicBool::new(false),
            filler: Mutex::new(None),
            torn_down: AtomicBool::new(false),
        };
        let (uid, gid) = (id("-u")?, id("-g")?);
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={disk_mb}m,mode=0700,uid={uid},gid={gid}"))
                .arg("tmpfs")
                .arg(&server.disk),
            COMMAND_TIMEOUT,
        )?;
        server.mounted.store(true, Ordering::SeqCst);
        run_ok(
            server
                .command("initdb")
                .arg("-D")
                .arg(server.data())
                .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8"])
                .arg(format!(
                    "--pwfile={}",
                    server.dir.join("password").display()
                ))
                // Its files reach the tmpfs either way; fsync is on once it runs.
                .args(["--no-instructions", "--no-sync"]),
            COMMAND_TIMEOUT,
        )?;
        server.start_server()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.disk.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// The URL the nodes use: the default database, as the superuser.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// One of the server's programs, as the `postgres` user.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        command
    }

    /// Starts the server on its port and data, and waits until it takes
    /// connections. fsync on; a small WAL, so that a full disk is met soon.
    pub fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on -c synchronous_commit=on \
             -c full_page_writes=on -c max_wal_size=96MB -c min_wal_size=32MB",
            self.port,
            self.dir.display()
        );
        run_ok(
            self.command("pg_ctl")
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(self.data())
                .arg("-l")
                .arg(self.log_path())
                .args(["-o", &options]),
            COMMAND_TIMEOUT,
        )
        .map(drop)
    }

    /// `pg_ctl stop -m MODE`: `fast` (sessions ended, transactions rolled
    /// back, a checkpoint) or `immediate` (a crash: recovery on start).
    pub fn stop_server(&self, mode: &str) -> Result<(), String> {
        run_ok(
            self.command("pg_ctl")
                .args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
                .arg(self.data()),
            COMMAND_TIMEOUT,
        )
        .map(drop)
    }

    /// Whether the server takes connections now.
    pub fn ready(&self) -> bool {
        run(
            Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-t", "3", "-p"])
                .arg(self.port.to_string()),
            Duration::from_secs(10),
        )
        .is_ok_and(|ran| ran.status.success())
    }

    /// The postmaster's process id, from its pid file, if it lives.
    fn postmaster(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// Makes sure the server takes connections: waits for one that is
    /// starting or recovering, starts one that is down, and as a last
    /// resort crashes and starts it again. Every wait bounded.
    pub fn ensure_running(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.ready() {
                return Ok(());
            }
            if self.postmaster().is_none() {
                // Down (stopped, or gave up after a crash): start it.
                match self.start_server() {
                    Ok(()) => continue,
                    Err(e) => eprintln!("chaos: starting PostgreSQL again: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = self.stop_server("immediate");
        self.start_server()?;
        match self.ready() {
            true => Ok(()),
            false => Err("PostgreSQL does not take connections after a restart".into()),
        }
    }

    /// Fills the tmpfs with a file until it has no room left; the bytes
    /// written.
    pub fn fill_disk(&self) -> Result<u64, String> {
        let path = self.disk.join("filler");
        *self.filler.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.clone());
        let mut file = std::fs::File::create(&path).map_err(|e| format!("filler: {e}"))?;
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("filling the disk: {e}")),
            }
        }
        Ok(written)
    }

    /// Removes the filler file, if there is one.
    pub fn unfill_disk(&self) -> Result<(), String> {
        let filler = self.filler.lock().unwrap_or_else(|e| e.into_inner()).take();
        match filler {
            Some(path) => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("{}: {e}", path.display())),
            },
            None => Ok(()),
        }
    }

    /// The tmpfs's size and what is used of it, in MiB.
    pub fn disk_use(&self) -> String {
        match run(
            Command::new("df")
                .args(["-m", "--output=used,size"])
                .arg(&self.disk),
            Duration::from_secs(10),
        ) {
            Ok(ran) => {
                ran.stdout
                    .lines()
                    .nth(1)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" of ")
                    + " MiB"
            }
            Err(e) => e,
        }
    }

    /// Stops the server (a crash: nothing is left to keep), kills what is
    /// left of it, and unmounts the tmpfs. Idempotent; never panics.
    pub fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.unfill_disk();
        if self.mounted.load(Ordering::SeqCst) {
            if let Err(e) = self.stop_server("immediate") {
                if self.postmaster().is_some() {
                    eprintln!("chaos: stopping PostgreSQL: {e}");
                }
            }
            if let Some(pid) = self.postmaster() {
                eprintln!("chaos: PostgreSQL {pid} outlived pg_ctl stop: SIGKILL");
                let _ = signal(pid, libc::SIGKILL);
                std::thread::sleep(Duration::from_millis(500));
            }
            unmount(&self.disk);
            self.mounted.store(false, Ordering::SeqCst);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Unmounts `dir`, lazily if it is still busy.
pub fn unmount(dir: &Path) {
    for attempt in 0..10 {
        match run_ok(Command::new("umount").arg(dir), COMMAND_TIMEOUT) {
            Ok(_) => return,
            Err(e) if attempt == 9 => {
                eprintln!("chaos: {e}; unmounting lazily");
                let _ = run(Command::new("umount").arg("-l").arg(dir), COMMAND_TIMEOUT);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// `id -u postgres` or `id -g postgres`.
fn id(which: &str) -> Result<String, String> {
    let ran = run_ok(
        Command::new("id").args([which, "postgres"]),
        Duration::from_secs(10),
    )
    .map_err(|e| format!("{e}: install Debian's `postgresql` (make chaos does)"))?;
    Ok(ran.stdout.trim().to_string())
}

/// The newest PostgreSQL server programs Debian installed.
fn postgres_bin() -> Result<PathBuf, String> {
    elmbox_tests::postgres_server_bin().ok_or_else(|| {
        "no PostgreSQL server under /usr/lib/postgresql/*/bin: install Debian's `postgresql` \
         (make chaos does)"
            .to_string()
    })
}

/// tmpfs mounts an earlier run left under `work_dir` (it was killed with
/// SIGKILL, say): the PostgreSQL server on each killed (by its pid file)
/// and the tmpfs unmounted.
pub fn sweep_mounts(work_dir: &Path) {
    let Ok(work_dir) = work_dir.canonicalize() else {
        return;
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(point)) = (fields.next(), fields.next()) else {
            continue;
        };
        let point = Path::new(point);
        if !point.starts_with(&work_dir) {
            continue;
        }
        let pid_file = point.join("data/postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|&pid| alive(pid)) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("postgres") {
                eprintln!("chaos: killing PostgreSQL {pid} left by an earlier run");
                let _ = signal(pid, libc::SIGKILL);
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        eprintln!(
            "chaos: unmounting {} left by an earlier run",
            point.display()
        );
        unmount(point);
    }
}
