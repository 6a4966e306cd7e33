//! Other programs, each waited for at most a while (a hung `pg_ctl` or
//! `fiu-ctrl` must not hang the campaign), signals by process id, and the
//! harness's own SIGINT/SIGTERM, turned into a flag so that an interrupted
//! run still cleans up.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a finished program said.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr).trim().to_string()
    }
}

/// Runs `command` in a process group of its own, for at most `timeout`;
/// past it the whole group is killed (SIGKILL), so that no helper it
/// started (`cat` on a FIFO, say) is left behind.
pub fn run(command: &mut Command, timeout: Duration) -> Result<Ran, String> {
    let shown = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let group = child.id() as i32;
    let (done, finished) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(timeout) {
        Ok(output) => output,
        Err(_) => {
            // SAFETY: a plain kill(2) of the group this function made.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = waiter.join();
            return Err(format!("{shown}: still running after {timeout:?}, killed"));
        }
    };
    let _ = waiter.join();
    let output = output.map_err(|e| format!("{shown}: {e}"))?;
    Ok(Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// [`run`], and an error with its output unless it exits 0.
pub fn run_ok(command: &mut Command, timeout: Duration) -> Result<Ran, String> {
    let shown = format!("{command:?}");
    let ran = run(command, timeout)?;
    match ran.status.success() {
        true => Ok(ran),
        false => Err(format!("{shown}: {}: {}", ran.status, ran.output())),
    }
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) -> Result<(), String> {
    // SAFETY: kill(2) with a process id this harness started.
    match unsafe { libc::kill(pid as i32, signal) } {
        0 => Ok(()),
        _ => Err(format!(
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        )),
    }
}

/// Whether a process `pid` exists (and is not a zombie of ours: those are
/// reaped by whoever holds their `Child`).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP end the campaign early (it then heals,
/// checks and cleans up as usual); a second one kills the harness.
pub fn catch_interrupts() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic; SA_RESETHAND makes
        // the next signal act as if none were installed.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps for `duration`, waking early if `stop` is set or the harness was
/// interrupted; whether it slept the whole time.
pub fn nap(duration: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + duration;
    loop {
        if stop.load(Ordering::Relaxed) || interrupted() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}
