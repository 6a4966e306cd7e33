//! The server's one timer scheduler ([`Scheduler`]): when each app's
//! earliest timer is due, in one ordered queue watched by one thread.
//!
//! After every input an app's owner tells the scheduler when the app's
//! earliest timer is due (`DurableApp::next_due`); at that instant the
//! scheduler hands the app's name to whoever serves it ([`Fired`]), which
//! queues a wake-up behind the app's other events. So an app with timers
//! pending costs one entry here, not a thread or a task, and a timer that
//! fires is an event like any other for ordering. Parked apps keep their
//! entry: a due timer wakes them.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// An app whose earliest timer came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub app: String,
    /// When it was due (the app is woken at the wall clock's now, a little
    /// later: the difference is how late it fired).
    pub due: SystemTime,
}

pub struct Scheduler {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Each app's due time, and whether it is still in `order` (not yet
    /// handed over): a fired app keeps its entry until its owner sets the
    /// next one, so it still counts as an app with a timer.
    due: HashMap<String, (SystemTime, bool)>,
    order: BTreeSet<(SystemTime, String)>,
    stopped: bool,
}

/// The longest the thread sleeps without looking again: a wall clock set
/// forward is noticed within this.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

impl Scheduler {
    /// Starts the scheduler's thread; each app whose timer comes due is
    /// sent on `fired`. It stops when [`Scheduler::stop`] is called or the
    /// receiver is gone.
    pub fn start(fired: mpsc::Sender<Fired>) -> std::io::Result<Scheduler> {
        let shared = Arc::new(Shared::default());
        let watched = shared.clone();
        let thread = std::thread::Builder::new()
            .name("elmbox-timers".into())
            .spawn(move || watch(&watched, &fired))?;
        Ok(Scheduler {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Sets when `app`'s earliest timer is due (`None`: it has none, or is
    /// no longer served here).
    pub fn set(&self, app: &str, due: Option<SystemTime>) {
        let mut queue = self.lock();
        let before = queue.due.get(app).copied();
        // After every input of every app: most often nothing changed.
        let unchanged = match (before, due) {
            (None, None) => true,
            (Some((at, queued)), Some(due)) => queued && at == due,
            _ => false,
        };
        if unchanged {
            return;
        }
        if let Some((before, _)) = before {
            queue.order.remove(&(before, app.to_string()));
            queue.due.remove(app);
        }
        if let Some(due) = due {
            queue.due.insert(app.to_string(), (due, true));
            queue.order.insert((due, app.to_string()));
        }
        // Only an earlier first entry changes how long the thread sleeps.
        let first = queue.order.first().map(|(at, _)| *at);
        drop(queue);
        if due.is_some() && first == due {
            self.shared.changed.notify_one();
        }
    }

    /// When `app`'s earliest timer is due, as last set.
    pub fn due(&self, app: &str) -> Option<SystemTime> {
        self.lock().due.get(app).map(|&(at, _)| at)
    }

    /// How many apps have a timer armed (handed over or not).
    pub fn len(&self) -> usize {
        self.lock().due.len()
    }

    /// Stops the thread; nothing fires after this returns.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.shared.changed.notify_one();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The scheduler's thread: sleeps until the first entry is due, hands it
/// over, and goes on.
fn watch(shared: &Shared, fired: &mpsc::Sender<Fired>) {
    let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if queue.stopped {
            return;
        }
        let now = SystemTime::now();
        let first = queue.order.first().cloned();
        let wait = match first {
            Some((due, app)) if due <= now => {
                queue.order.remove(&(due, app.clone()));
                if let Some(entry) = queue.due.get_mut(&app) {
                    entry.1 = false;
                }
                if fired.send(Fired { app, due }).is_err() {
                    return;
                }
                continue;
            }
            Some((due, _)) => due.duration_since(now).unwrap_or_default().min(LOOK_AGAIN),
            None => LOOK_AGAIN,
        };
        queue = shared
            .changed
            .wait_timeout(queue, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_fire_in_due_order_once_each_and_cleared_ones_never() {
        let (send, fired) = mpsc::channel();
        let scheduler = Scheduler::start(send).unwrap();
        let now = SystemTime::now();
        let at = |ms| now + Duration::from_millis(ms);
        scheduler.set("c", Some(at(60)));
        scheduler.set("a", Some(at(20)));
        scheduler.set("b", Some(at(40)));
        scheduler.set("gone", Some(at(30)));
        scheduler.set("gone", None);
        // Moved later: fires at its new time only.
        scheduler.set("c", Some(at(80)));
        let names: Vec<String> = (0..3)
            .map(|_| fired.recv_timeout(Duration::from_secs(5)).unwrap().app)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(fired.recv_timeout(Duration::from_millis(200)).is_err());
        // Fired, they still have their timers until their owners say.
        assert_eq!(scheduler.len(), 3);
        scheduler.set("a", None);
        assert_eq!(scheduler.len(), 2);
        // The same due time set again after it fired fires again.
        let again = SystemTime::now();
        scheduler.set("b", Some(again));
        assert_eq!(fired.recv_timeout(Duration::from_secs(5)).unwrap().app, "b");
    }

    #[test]
    fn nothing_fires_early() {
        let (send, fired) = mpsc::channel();
        let scheduler = Scheduler::start(send).unwrap();
        let due = SystemTime::now() + Duration::from_millis(150);
        scheduler.set("a", Some(due));
        let got = fired.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.due, due);
        assert!(SystemTime::now() >= due);
    }
}
