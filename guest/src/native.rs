//! The guest's engine as a plain Rust library, without Wasm: the same
//! QuickJS, timer queue and Elm glue, compiled for the host. Used by the
//! benchmarks to measure what the sandbox costs.

use elmbox_abi::{AppError, AppSettings};

use crate::reply;
use crate::session::Session;

/// One app, run natively in the calling thread.
pub struct NativeApp {
    session: Session,
}

impl NativeApp {
    /// Loads the app's JavaScript with `settings`, as `elmbox_load` does.
    pub fn load(settings: AppSettings, source: &[u8]) -> Result<NativeApp, AppError> {
        reply::begin();
        Session::load(settings, source).map(|session| NativeApp { session })
    }

    /// Dispatches one event; returns the outputs as a JSON array.
    pub fn dispatch(&mut self, event: &[u8]) -> Result<Vec<u8>, AppError> {
        reply::begin();
        let result = self.session.dispatch(event, None);
        reply::finish::<AppError>(Ok(()));
        result.map(|()| reply::last(|outputs, _| outputs.to_vec()))
    }

    /// Moves the virtual clock by `ms`, firing due timers; returns what
    /// they sent, as a JSON array.
    pub fn advance(&mut self, ms: u64) -> Result<Vec<u8>, AppError> {
        reply::begin();
        let result = self.session.advance(ms as f64);
        reply::finish::<AppError>(Ok(()));
        result.map(|()| reply::last(|outputs, _| outputs.to_vec()))
    }

    /// QuickJS's allocated bytes.
    pub fn heap_bytes(&self) -> i64 {
        self.session.memory().malloc_size
    }
}

#[cfg(test)]
mod tests {
    //! The guest's engine natively: how it classifies what an app throws,
    //! and the all-ports envelopes. (Each test runs on its own thread, so
    //! each has its own virtual clock.)

    use elmbox_abi::{AppError, AppSettings, DispatchMode, EventFormat, FaultSite};

    use super::NativeApp;

    fn settings(all_ports: bool) -> AppSettings {
        AppSettings {
            name: "app.js".into(),
            module: "Main".into(),
            in_port: "onEvent".into(),
            out_port: "respond".into(),
            all_ports,
            flags: None,
            event_format: EventFormat::Text,
            epoch_ms: 0.0,
            fixed_epoch: true,
            gc_threshold: 1 << 20,
            js_memory_limit: None,
            max_stack_size: 256 << 10,
            same_instant_timer_limit: 1000,
            random_seed: Some(7),
            mode: DispatchMode::Call,
            optimize: false,
            migrated: None,
        }
    }

    /// An app in Elm's calling convention whose port rejects numbers before
    /// anything happens (Elm's hint-4 crash), throws in "update" on "now",
    /// in a timer on "later", and sends a value JSON cannot encode (a BigInt)
    /// from a timer on "unencodable".
    const APP: &str = r#"(function (scope) {
      scope.Elm = { Main: { init: function () {
        var subs = [], seen = 0;
        function emit(v) { subs.forEach(function (s) { s(v); }); }
        return { ports: {
          respond: { subscribe: function (f) { subs.push(f); } },
          other: { subscribe: function () {} },
          onEvent: { send: function (v) {
            if (typeof v !== 'string') { throw new Error('https://github.com/elm/core/blob/1.0.0/hints/4.md'); }
            seen++;
            if (v === 'now') { throw new Error('Cannot perform mod 0'); }
            if (v === 'later') { setTimeout(function () { throw new Error('later'); }, 10); }
            if (v === 'unencodable') { setTimeout(function () { emit(10n); }, 0); }
            emit(seen);
          } }
        } };
      } } };
    }(this));"#;

    fn load(all_ports: bool) -> NativeApp {
        NativeApp::load(settings(all_ports), APP.as_bytes()).expect("the app loads")
    }

    fn fault_site(error: AppError) -> FaultSite {
        match error {
            AppError::Faulted { during, .. } => during,
            other => panic!("not a fault: {other}"),
        }
    }

    #[test]
    fn a_port_rejection_is_an_event_error_and_the_app_goes_on() {
        let mut app = NativeApp::load(
            AppSettings {
                event_format: EventFormat::Json,
                ..settings(false)
            },
            APP.as_bytes(),
        )
        .unwrap();
        let err = app.dispatch(b"7").unwrap_err();
        assert!(
            matches!(&err, AppError::Threw(t) if t.message.ends_with("hints/4.md")),
            "{err}"
        );
        assert!(!err.is_fatal());
        assert_eq!(app.dispatch(br#""a""#).unwrap(), b"[1]");
    }

    #[test]
    fn a_throw_after_the_port_took_the_event_is_a_fault() {
        let mut app = load(false);
        assert_eq!(app.dispatch(b"a").unwrap(), b"[1]");
        assert_eq!(
            fault_site(app.dispatch(b"now").unwrap_err()),
            FaultSite::Event
        );
    }

    #[test]
    fn a_throw_in_a_timer_is_a_fault() {
        let mut app = load(false);
        assert_eq!(app.dispatch(b"later").unwrap(), b"[1]");
        assert_eq!(fault_site(app.advance(10).unwrap_err()), FaultSite::Timer);
    }

    #[test]
    fn a_value_the_outgoing_port_cannot_send_is_a_fault_there() {
        let mut app = load(false);
        let err = app.dispatch(b"unencodable").unwrap_err();
        assert_eq!(fault_site(err), FaultSite::OutgoingPort);
    }

    #[test]
    fn all_ports_events_and_answers_name_their_ports() {
        let mut app = load(true);
        assert_eq!(
            app.dispatch(br#"{"port":"onEvent","value":"a"}"#).unwrap(),
            br#"[{"port":"respond","value":1}]"#
        );
        let err = app
            .dispatch(br#"{"port":"respond","value":1}"#)
            .unwrap_err();
        assert!(
            matches!(&err, AppError::PortNotFound { available, .. } if available == &["onEvent"]),
            "{err}"
        );
        let err = app.dispatch(br#"{"value":1}"#).unwrap_err();
        assert!(matches!(err, AppError::NotAPortEvent { .. }), "{err}");
    }

    #[test]
    fn timers_due_at_one_instant_fire_in_the_order_they_were_set() {
        const ORDERED: &str = r#"(function (scope) {
          scope.Elm = { Main: { init: function () {
            var subs = [];
            function emit(v) { subs.forEach(function (s) { s(v); }); }
            return { ports: {
              respond: { subscribe: function (f) { subs.push(f); } },
              onEvent: { send: function () {
                setTimeout(function () { emit('b'); }, 5);
                setTimeout(function () { emit('a'); }, 0);
                setTimeout(function () { emit('c'); }, 5);
              } }
            } };
          } } };
        }(this));"#;
        let mut app = NativeApp::load(settings(false), ORDERED.as_bytes()).unwrap();
        assert_eq!(app.dispatch(b"go").unwrap(), br#"["a"]"#);
        assert_eq!(app.advance(5).unwrap(), br#"["b","c"]"#);
    }
}
