//! An app's settings as both sides read them: sent as JSON by the host when
//! it loads an app (`elmbox_load`), recorded by the guest, and read back
//! from a built module (`elmbox_settings`), so an image reports what its
//! snapshot really holds.

use serde::{Deserialize, Serialize};

/// How an event's bytes reach the app's incoming port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    /// As a JavaScript string (the port's type decides what it accepts).
    #[default]
    Text,
    /// Parsed as JSON first.
    Json,
}

/// How each event reaches the app. Only `Call` is elmbox's way; the others
/// reproduce the anti-patterns it replaces, so their cost can be measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DispatchMode {
    /// One function call into the app, which was loaded once.
    #[default]
    Call,
    /// Per event, evaluate a fresh snippet of source text that calls into the
    /// loaded app.
    Eval,
    /// Per event, evaluate the whole app again as a fresh ES module and send
    /// the event to that new instance: state is lost on every event.
    Reload,
}

/// What an app is and how it runs inside the guest. Fixed when the app is
/// loaded: a snapshot of the running app carries these with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSettings {
    /// The app's name: its file in stack traces and syntax errors, and the
    /// name in console lines.
    pub name: String,
    /// The Elm module whose `init` starts the app (dotted for nested ones).
    pub module: String,
    /// The incoming port events go to, and the outgoing port whose values
    /// answer them (unless `all_ports`).
    pub in_port: String,
    pub out_port: String,
    /// Every port at once: each event is `{"port": NAME, "value": VALUE}`
    /// for any incoming port, and every value the app sends on any outgoing
    /// port comes back as `{"port": NAME, "value": VALUE}`, in the order
    /// sent. `in_port`, `out_port` and `event_format` are then unused.
    #[serde(default)]
    pub all_ports: bool,
    /// Flags as JSON text; `None` calls `init()` without flags.
    pub flags: Option<String>,
    pub event_format: EventFormat,
    /// What `Date.now()` returns before any time is advanced.
    pub epoch_ms: f64,
    /// Whether `epoch_ms` was chosen by the user. If not, an instance started
    /// from a snapshot moves its clock to the wall-clock time it starts at,
    /// so `Date.now()` is never the time of the build.
    pub fixed_epoch: bool,
    /// Bytes QuickJS allocates before its cycle collector runs
    /// (`u32::MAX`: never).
    pub gc_threshold: u32,
    /// QuickJS heap limit in bytes; past it, allocations throw an
    /// out-of-memory error inside the app.
    pub js_memory_limit: Option<u32>,
    /// QuickJS's own stack limit in bytes. Only the native engine honours it:
    /// QuickJS-ng turns its stack limit off on WASI.
    pub max_stack_size: u32,
    /// Timer callbacks allowed at one virtual instant before the app is
    /// declared runaway (a `setTimeout(f, 0)` that re-arms itself forever).
    pub same_instant_timer_limit: u32,
    /// `Math.random`'s seed; `None` seeds it from the host's randomness.
    /// Either way its state lives in linear memory from load on.
    #[serde(default)]
    pub random_seed: Option<u64>,
    #[serde(default)]
    pub mode: DispatchMode,
    /// Whether the host rewrites the app's JavaScript before the guest
    /// evaluates it (`elmbox-optimize`: Elm's calls through `A2`…`A9` made without them).
    /// The app behaves the same either way; recorded so a restore loads
    /// exactly what ran. Settings recorded before it existed mean yes.
    #[serde(default = "yes")]
    pub optimize: bool,
    /// A version started by a migration: the old version's exported model
    /// (JSON text), given to `init` inside its flags
    /// ([`crate::migration::migrated_flags`]). Kept apart from `flags` so
    /// that the app's identity is its code and the flags its deploy gave.
    /// The host passes it on in `flags`; the guest never sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated: Option<String>,
}

fn yes() -> bool {
    true
}

/// How a built module (`elmbox build`) serves the line protocol on its own:
/// recorded before the snapshot (`elmbox_set_stdio`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StdioConfig {
    /// Virtual milliseconds to advance after each event.
    pub advance_ms: u64,
    /// Longest event line accepted, in bytes.
    pub max_event_bytes: u64,
    /// Largest answer (one event's JSON array), in bytes.
    pub max_output_bytes: u64,
}

/// What a built module holds: its app's settings and how it serves stdio
/// (`elmbox_settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleSettings {
    pub app: AppSettings,
    pub stdio: StdioConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_settings_round_trip_whole_through_json() {
        let settings = ModuleSettings {
            app: AppSettings {
                name: "app.js".into(),
                module: "Main".into(),
                in_port: "onEvent".into(),
                out_port: "respond".into(),
                all_ports: true,
                flags: Some(r#"{"a":1}"#.into()),
                event_format: EventFormat::Json,
                epoch_ms: 1.5e12,
                fixed_epoch: true,
                gc_threshold: 1 << 20,
                js_memory_limit: Some(16 << 20),
                max_stack_size: 256 << 10,
                same_instant_timer_limit: 1000,
                random_seed: Some(42),
                mode: DispatchMode::Eval,
                optimize: false,
                migrated: Some("{}".into()),
            },
            stdio: StdioConfig {
                advance_ms: 10,
                max_event_bytes: 32,
                max_output_bytes: 64,
            },
        };
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(
            serde_json::from_str::<ModuleSettings>(&json).unwrap(),
            settings
        );
        // The names the host and guest agree on, in camelCase.
        assert!(json.contains(r#""eventFormat":"json""#), "{json}");
        assert!(json.contains(r#""sameInstantTimerLimit":1000"#), "{json}");
        assert!(json.contains(r#""maxEventBytes":32"#), "{json}");
    }

    #[test]
    fn unknown_settings_are_refused() {
        let err = serde_json::from_str::<StdioConfig>(
            r#"{"advanceMs":0,"maxEventBytes":1,"maxOutputBytes":1,"extra":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
