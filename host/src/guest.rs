//! The host's half of the guest ABI (the other half is `guest/src/lib.rs`):
//! typed handles on the exports, and decoding of the reply record.

use elmbox_abi::{MemoryReport, Reply as ReplyRecord, ABI_VERSION};
use sha2::{Digest, Sha256};
use wasmtime::error::Context;
use wasmtime::{bail, Result, WasmParams, WasmResults};
use wasmtime::{Instance, Memory, Store, TypedFunc};

use crate::clock::AppClock;
use crate::store::{run_to_completion, StoreState};

/// Identifies a guest build: the SHA-256 of its module's bytes. A state is
/// only ever restored into the guest it was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestId(pub [u8; 32]);

impl GuestId {
    pub fn of(wasm: &[u8]) -> GuestId {
        GuestId(Sha256::digest(wasm).into())
    }

    /// The id its `Display` wrote. Text that is not one reads as an id no
    /// guest has (all zeros): what was kept under it is then passed over,
    /// as from another build.
    pub fn from_hex(text: &str) -> GuestId {
        let mut id = [0u8; 32];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = text
                .get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .unwrap_or(0);
        }
        GuestId(id)
    }
}

impl std::fmt::Display for GuestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Calls a guest export on a fiber stack.
pub(crate) fn call<P: WasmParams + Sync, R: WasmResults + Sync>(
    func: &TypedFunc<P, R>,
    store: &mut Store<StoreState>,
    params: P,
) -> Result<R> {
    // Each call gets the app's whole CPU deadline, counted by the guest
    // from its start (`elmbox_set_deadline`).
    run_to_completion(func.call_async(store, params))
}

pub(crate) struct GuestExports {
    memory: Memory,
    input: TypedFunc<u32, u32>,
    pub(crate) load: TypedFunc<(u32, u32), u32>,
    pub(crate) dispatch: TypedFunc<(u32, f64), u32>,
    pub(crate) advance: TypedFunc<f64, u32>,
    pub(crate) advance_to: TypedFunc<f64, u32>,
    pub(crate) http_response: TypedFunc<(u32, f64), u32>,
    pub(crate) http_waiting: TypedFunc<(), u32>,
    pub(crate) export: TypedFunc<(), u32>,
    set_deadline: TypedFunc<f64, ()>,
    memory_report: TypedFunc<(), u32>,
    pub(crate) collect_garbage: TypedFunc<(), ()>,
    pub(crate) set_stdio: TypedFunc<u32, u32>,
    pub(crate) settings: TypedFunc<(), u32>,
    pub(crate) startup: TypedFunc<(), u32>,
    pub(crate) set_clock: TypedFunc<f64, ()>,
    pub(crate) reseed: TypedFunc<u64, ()>,
    reply_at: usize,
}

/// One call's results, borrowed from guest memory.
pub(crate) struct Reply<'a> {
    pub ok: bool,
    /// A JSON array of the outgoing-port values.
    pub outputs: &'a [u8],
    /// Console frames (see `elmbox_abi::console::frames`).
    pub console: &'a [u8],
    /// A JSON `AppError` when `ok` is false.
    pub error: &'a [u8],
    /// Timers fired during the call.
    pub timers_fired: u32,
    /// Frames of the HTTP requests the call started or aborted.
    pub http: &'a [u8],
    /// The app's clock after the call.
    pub clock: AppClock,
}

impl GuestExports {
    /// Binds a fresh instance: runs its constructors, checks its ABI version
    /// and asks where its reply record is. `known_reply_at` skips both
    /// calls for another instance of a module already bound once (the
    /// record's address is fixed by the module's layout).
    pub(crate) fn bind(
        store: &mut Store<StoreState>,
        instance: &Instance,
        known_reply_at: Option<usize>,
    ) -> Result<Self> {
        let reply_at = match known_reply_at {
            Some(at) => at,
            None => {
                // A reactor module: run its constructors once before any export.
                if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
                    call(&init, store, ())?;
                }
                let version = instance
                    .get_typed_func::<(), u32>(&mut *store, "elmbox_abi_version")
                    .context("not an elmbox guest module")?;
                let version = call(&version, store, ())?;
                if version != ABI_VERSION {
                    bail!("guest ABI version {version}, host expects {ABI_VERSION}");
                }
                let reply_at = instance.get_typed_func::<(), u32>(&mut *store, "elmbox_reply")?;
                call(&reply_at, store, ())? as usize
            }
        };
        Ok(GuestExports {
            memory: instance
                .get_memory(&mut *store, "memory")
                .context("guest exports no memory")?,
            input: instance.get_typed_func(&mut *store, "elmbox_input")?,
            load: instance.get_typed_func(&mut *store, "elmbox_load")?,
            dispatch: instance.get_typed_func(&mut *store, "elmbox_dispatch")?,
            advance: instance.get_typed_func(&mut *store, "elmbox_advance")?,
            advance_to: instance.get_typed_func(&mut *store, "elmbox_advance_to")?,
            http_response: instance.get_typed_func(&mut *store, "elmbox_http_response")?,
            http_waiting: instance.get_typed_func(&mut *store, "elmbox_http_waiting")?,
            export: instance.get_typed_func(&mut *store, "elmbox_export")?,
            set_deadline: instance.get_typed_func(&mut *store, "elmbox_set_deadline")?,
            memory_report: instance.get_typed_func(&mut *store, "elmbox_memory")?,
            collect_garbage: instance.get_typed_func(&mut *store, "elmbox_collect_garbage")?,
            set_stdio: instance.get_typed_func(&mut *store, "elmbox_set_stdio")?,
            settings: instance.get_typed_func(&mut *store, "elmbox_settings")?,
            startup: instance.get_typed_func(&mut *store, "elmbox_startup")?,
            set_clock: instance.get_typed_func(&mut *store, "elmbox_set_clock")?,
            reseed: instance.get_typed_func(&mut *store, "elmbox_reseed")?,
            reply_at,
        })
    }

    /// Tells the instance how long each call may run (`None`: for ever); an
    /// instance restored from a snapshot carries the budget of the one
    /// snapshotted, so every instance is told.
    pub(crate) fn set_deadline(
        &self,
        store: &mut Store<StoreState>,
        deadline: Option<std::time::Duration>,
    ) -> Result<()> {
        let ms = deadline.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        call(&self.set_deadline, store, ms)
    }

    pub(crate) fn reply_at(&self) -> usize {
        self.reply_at
    }

    /// Copies `parts`, back to back, into the guest's input buffer.
    pub(crate) fn write_input(&self, store: &mut Store<StoreState>, parts: &[&[u8]]) -> Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut at = call(&self.input, store, u32::try_from(total)?)? as usize;
        for part in parts {
            self.memory.write(&mut *store, at, part)?;
            at += part.len();
        }
        Ok(())
    }

    /// Reads the reply record. Fails only if the guest wrote nonsense.
    pub(crate) fn reply<'a>(&self, store: &'a Store<StoreState>) -> Result<Reply<'a>> {
        let data = self.memory.data(store);
        let record = data
            .get(self.reply_at..)
            .and_then(ReplyRecord::from_le_bytes)
            .context("reply record out of bounds")?;
        let slice = |ptr: u32, len: u32| -> Result<&'a [u8]> {
            let (ptr, len) = (ptr as usize, len as usize);
            data.get(ptr..ptr + len)
                .context("reply points outside guest memory")
        };
        Ok(Reply {
            ok: record.status == 0,
            outputs: slice(record.outputs_ptr, record.outputs_len)?,
            console: slice(record.console_ptr, record.console_len)?,
            error: slice(record.error_ptr, record.error_len)?,
            timers_fired: record.timers_fired,
            http: slice(record.http_ptr, record.http_len)?,
            clock: AppClock {
                now_ms: record.clock_ms,
                next_due_ms: record.next_due(),
                epoch_ms: record.epoch_ms,
            },
        })
    }

    pub(crate) fn memory_report(&self, store: &mut Store<StoreState>) -> Result<MemoryReport> {
        let at = call(&self.memory_report, store, ())? as usize;
        self.memory
            .data(&*store)
            .get(at..)
            .and_then(MemoryReport::from_le_bytes)
            .context("memory report out of bounds")
    }

    pub(crate) fn linear_memory_bytes(&self, store: &Store<StoreState>) -> usize {
        self.memory.data_size(store)
    }
}
