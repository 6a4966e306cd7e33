//! Pre-initialised app modules, made with Wizer: the guest is instantiated,
//! the app's JavaScript is evaluated and `init` run exactly as
//! [`Runtime::load`] does, and the instance's memory and globals are written
//! out as a new module. Instances of that module start with the app already
//! running, without evaluating any JavaScript (see [`crate::image`]).
//!
//! The module is also a WASI command: Wizer renames the guest's
//! `elmbox_main` export to `_start`, which serves the line protocol on stdio,
//! so `wasmtime run app.wasm < events` works on its own.

use std::future::Future;

use elmbox_abi::{StdioConfig, EVENT_JSON, EVENT_TEXT};
use wasmtime::{Engine, Instance, InstancePre, Linker, Module, Store};
use wasmtime_wizer::{InstanceState, ModuleContext, SnapshotVal, ValType, Wizer};

use crate::app::App;
use crate::config::{AppConfig, EventFormat};
use crate::error::{Error, Result};
use crate::guest::run_to_completion;
use crate::runtime::{Runtime, StoreState, GUEST_WASM};

/// The guest with Wizer's instrumentation (its globals and memory exported),
/// compiled once per runtime.
pub(crate) struct Instrumented {
    context: ModuleContext<'static>,
    pre: InstancePre<StoreState>,
}

impl Instrumented {
    pub(crate) fn new(engine: &Engine, linker: &Linker<StoreState>) -> Result<Instrumented> {
        let (context, wasm) = wizer().instrument(GUEST_WASM)?;
        let module = Module::new(engine, wasm)?;
        Ok(Instrumented {
            context,
            pre: linker.instantiate_pre(&module)?,
        })
    }
}

fn wizer() -> Wizer {
    let mut wizer = Wizer::new();
    wizer.func_rename("_start", "elmbox_main");
    wizer
}

/// How a standalone module serves stdio, besides what [`AppConfig`] says.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Virtual milliseconds to advance after each event (as `elmbox run
    /// --advance-ms`), so timers fire between events.
    pub advance_ms: u64,
}

impl Runtime {
    /// Loads the app as [`Runtime::load`] does, then snapshots the running
    /// instance into the bytes of a new module: a WASI command that serves
    /// the line protocol on stdio, and that [`Runtime::image`] loads back.
    ///
    /// Everything about the app is fixed in the module: module and port
    /// names, flags, event format, QuickJS settings and heap limit, the
    /// clock's epoch if [`AppConfig::epoch_ms`] is set (otherwise the clock
    /// starts at the wall-clock time when an instance starts), and the event
    /// and output size limits the module applies on its own.
    pub fn build(
        &self,
        source: impl AsRef<[u8]>,
        config: AppConfig,
        options: &BuildOptions,
    ) -> Result<Vec<u8>> {
        let instrumented = self.instrumented()?;
        let stdio = StdioConfig {
            name: config.name.clone(),
            event_kind: match config.event_format {
                EventFormat::Text => EVENT_TEXT,
                EventFormat::Json => EVENT_JSON,
            },
            advance_ms: options.advance_ms,
            max_event_bytes: config.limits.max_event_bytes as u64,
            max_output_bytes: config.limits.max_output_bytes as u64,
            fixed_epoch: config.epoch_ms.is_some(),
        };
        let mut store = self.new_store(&config.limits)?;
        let instance = run_to_completion(instrumented.pre.instantiate_async(&mut store))?;
        let mut app = App::start(store, instance, source.as_ref(), config)?;
        app.set_stdio(&stdio)?;
        let (mut store, instance) = app.into_parts();
        let mut state = SnapshotSource {
            store: &mut store,
            instance,
        };
        run_to_completion(wizer().snapshot(&instrumented.context, &mut state))
            .map_err(|e| Error::Engine(e.into()))
    }
}

/// Wizer reads the instance's state through this.
struct SnapshotSource<'a> {
    store: &'a mut Store<StoreState>,
    instance: Instance,
}

impl InstanceState for SnapshotSource<'_> {
    fn global_get(&mut self, name: &str, _: ValType) -> impl Future<Output = SnapshotVal> + Send {
        // Wizer asks only for the globals its instrumentation exported.
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("Wizer's instrumentation exports every mutable global");
        let value = match global.get(&mut *self.store) {
            wasmtime::Val::I32(x) => SnapshotVal::I32(x),
            wasmtime::Val::I64(x) => SnapshotVal::I64(x),
            wasmtime::Val::F32(x) => SnapshotVal::F32(x),
            wasmtime::Val::F64(x) => SnapshotVal::F64(x),
            wasmtime::Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => unreachable!(
                "the guest has no global of type {:?}",
                other.ty(&*self.store)
            ),
        };
        std::future::ready(value)
    }

    fn memory_contents(
        &mut self,
        name: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("Wizer's instrumentation exports every memory");
        contents(memory.data(&*self.store));
        std::future::ready(())
    }
}
