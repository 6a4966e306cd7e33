//! Apps the store holds that this server does not serve, and why
//! ([`Unserved`]): a name that an older elmbox let in and today's rule
//! refuses, options that do not read back, code that no longer loads.
//! Each is reported at error level when the server starts and listed by
//! the admin API with its problem; the others are served all the same,
//! and the admin can remove it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use elmbox::app_name;
use serde::Serialize;

/// One app not served, as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct UnservedApp {
    /// Its name as the store has it (JSON escapes what needs escaping).
    pub name: String,
    pub problem: String,
}

#[derive(Default)]
pub struct Unserved(Mutex<BTreeMap<String, String>>);

impl Unserved {
    /// Notes that `name` is not served because of `problem`, and says so
    /// in the log, with the name shown safely.
    pub fn report(&self, name: &str, problem: String) {
        tracing::error!(app = %app_name::printable(name), %problem, "not served");
        self.lock().insert(name.to_string(), problem);
    }

    /// Why `name` is not served, if it is one of these.
    pub fn problem(&self, name: &str) -> Option<String> {
        self.lock().get(name).cloned()
    }

    /// `name` is served after all (deployed anew), or gone.
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    pub fn list(&self) -> Vec<UnservedApp> {
        self.lock()
            .iter()
            .map(|(name, problem)| UnservedApp {
                name: name.clone(),
                problem: problem.clone(),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
