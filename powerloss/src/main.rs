//! `powerloss-fs --backing DIR MOUNTPOINT`: mounts the power-loss file
//! system in the foreground until it is unmounted or told to stop.
//!
//! Signals: `SIGUSR1` drops all unsynced data (a power loss), `SIGUSR2`
//! counts it, `SIGTERM`/`SIGINT` unmount and exit. Each answers with one line
//! on stderr, which a test waits for.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: powerloss-fs --backing DIR MOUNTPOINT

Mounts DIR at MOUNTPOINT; data written there lives in memory until fsync.
  kill -USR1 PID    drop all unsynced data (power loss)
  kill -USR2 PID    print how much is unsynced
  kill PID, umount MOUNTPOINT    unmount (unsynced data is dropped)";

struct Args {
    backing: PathBuf,
    mountpoint: PathBuf,
}

fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut backing = None;
    let mut mountpoint = None;
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--backing") => {
                backing = Some(PathBuf::from(
                    args.next().ok_or("--backing needs a directory")?,
                ));
            }
            Some("-h" | "--help") => return Err(String::new()),
            Some(flag) if flag.starts_with('-') => {
                return Err(format!("unknown option {flag}"));
            }
            _ if mountpoint.is_some() => {
                return Err(format!(
                    "one MOUNTPOINT only, got a second: {}",
                    arg.to_string_lossy()
                ));
            }
            _ => mountpoint = Some(PathBuf::from(arg)),
        }
    }
    Ok(Args {
        backing: backing.ok_or("--backing DIR is missing")?,
        mountpoint: mountpoint.ok_or("MOUNTPOINT is missing")?,
    })
}

/// The signals this program answers; blocked in every thread, so that only
/// the thread that waits for them receives them.
fn control_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before it is read; the
    // signal numbers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGTERM, libc::SIGINT] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("powerloss-fs: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let signals = control_signals();
    // Before any thread starts, so that all of them inherit the mask.
    // SAFETY: `signals` is an initialised set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) };

    let (mut session, controller) =
        match elmbox_powerloss::mount_session(&args.backing, &args.mountpoint) {
            Ok(mounted) => mounted,
            Err(e) => {
                eprintln!("powerloss-fs: {e}");
                return ExitCode::FAILURE;
            }
        };
    let mut unmounter = session.unmount_callable();
    let mountpoint = args.mountpoint.clone();
    std::thread::spawn(move || loop {
        let mut signal = 0;
        // SAFETY: `signals` is an initialised set and `signal` a valid out
        // parameter.
        if unsafe { libc::sigwait(&signals, &mut signal) } != 0 {
            continue;
        }
        match signal {
            libc::SIGUSR1 => eprintln!("powerloss-fs: dropped {}", controller.power_loss()),
            libc::SIGUSR2 => eprintln!("powerloss-fs: unsynced {}", controller.unsynced()),
            _ => {
                if let Err(e) = unmounter.unmount() {
                    // Busy (files still open): detach it, and serve the
                    // open files until they are closed.
                    eprintln!(
                        "powerloss-fs: cannot unmount {}: {e}; detaching it",
                        mountpoint.display()
                    );
                    if let Ok(path) =
                        std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes())
                    {
                        // SAFETY: `path` is NUL-terminated.
                        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
                    }
                }
            }
        }
    });
    eprintln!(
        "{}",
        elmbox_powerloss::mounted_line(&args.backing, &args.mountpoint)
    );
    match session.run() {
        Ok(()) => {
            eprintln!("powerloss-fs: unmounted {}", args.mountpoint.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "powerloss-fs: serving {} failed: {e}",
                args.mountpoint.display()
            );
            ExitCode::FAILURE
        }
    }
}
