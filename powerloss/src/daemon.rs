//! The `powerloss-fs` binary run as a child process and driven by its
//! signals, for tests whose own process maps files of the mount (SQLite's
//! `-shm`): such a process must not also serve the mount (see the crate
//! docs).

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::Unsynced;

/// How long to wait for the daemon to answer (mount, drop, count, exit).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `powerloss-fs` child process. Dropping it stops it.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// Its stderr, line by line.
    lines: Receiver<String>,
    /// What it said so far, to explain a failure.
    said: Vec<String>,
    mountpoint: PathBuf,
}

impl Daemon {
    /// Runs `program` (the `powerloss-fs` binary; in this crate's tests
    /// `env!("CARGO_BIN_EXE_powerloss-fs")`) over `backing` at `mountpoint`
    /// and waits until the mount is ready.
    pub fn start(
        program: impl AsRef<Path>,
        backing: impl AsRef<Path>,
        mountpoint: impl AsRef<Path>,
    ) -> io::Result<Daemon> {
        let (program, backing, mountpoint) =
            (program.as_ref(), backing.as_ref(), mountpoint.as_ref());
        let mut child = Command::new(program)
            .arg("--backing")
            .arg(backing)
            .arg(mountpoint)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("run {}: {e}", program.display())))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            lines,
            said: Vec::new(),
            mountpoint: mountpoint.to_path_buf(),
        };
        let ready = crate::mounted_line(backing, mountpoint);
        daemon.wait_for(|line| line == ready)?;
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// A power loss (`SIGUSR1`); returns what was dropped once the daemon
    /// has done it.
    pub fn power_loss(&mut self) -> io::Result<Unsynced> {
        self.ask(libc::SIGUSR1, "powerloss-fs: dropped ")
    }

    /// What a power loss would drop now (`SIGUSR2`).
    pub fn unsynced(&mut self) -> io::Result<Unsynced> {
        self.ask(libc::SIGUSR2, "powerloss-fs: unsynced ")
    }

    /// Unmounts (`SIGTERM`) and waits for the daemon to exit.
    pub fn stop(mut self) -> io::Result<()> {
        self.signal(libc::SIGTERM)?;
        self.wait_for_exit()
    }

    /// Waits for the daemon to exit by itself (after `umount MOUNTPOINT`).
    pub fn wait(mut self) -> io::Result<()> {
        self.wait_for_exit()
    }

    fn ask(&mut self, signal: libc::c_int, answer: &str) -> io::Result<Unsynced> {
        self.signal(signal)?;
        let line = self.wait_for(|line| line.starts_with(answer))?;
        parse_unsynced(&line[answer.len()..]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("powerloss-fs answered an unreadable line: {line}"),
            )
        })
    }

    fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        // SAFETY: kill has no memory preconditions; the pid is our child's,
        // not yet reaped.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, signal) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits for the first line that `wanted` accepts.
    fn wait_for(&mut self, wanted: impl Fn(&str) -> bool) -> io::Result<String> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.said.push(line.clone());
                    if wanted(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure("did not answer in time"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    return Err(self.failure(&format!("exited ({status})")));
                }
            }
        }
    }

    fn wait_for_exit(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(self.failure(&format!("exited ({status})")))
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(self.failure("did not exit in time"))
    }

    fn failure(&mut self, what: &str) -> io::Error {
        self.said.extend(self.lines.try_iter());
        io::Error::other(format!(
            "powerloss-fs at {} {what}; it said: {:?}",
            self.mountpoint.display(),
            self.said
        ))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if self.signal(libc::SIGTERM).is_ok() && self.wait_for_exit().is_ok() {
            return;
        }
        // It would not unmount: kill it, and detach the dead mount so the
        // directory can be removed.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(path) = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes()) {
            // SAFETY: `path` is NUL-terminated.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Reads "N bytes in M files".
fn parse_unsynced(text: &str) -> Option<Unsynced> {
    let mut words = text.split(' ');
    let bytes = words.next()?.parse().ok()?;
    let files = match (words.next()?, words.next()?, words.next()?, words.next()?) {
        ("bytes", "in", files, "files") => files.parse().ok()?,
        _ => return None,
    };
    Some(Unsynced { bytes, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_lines_read_back() {
        let unsynced = Unsynced {
            bytes: 4096,
            files: 2,
        };
        assert_eq!(parse_unsynced(&unsynced.to_string()), Some(unsynced));
        assert_eq!(parse_unsynced("12 bytes"), None);
    }
}
