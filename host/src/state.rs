//! The state of a running sandbox ([`SandboxState`]): its linear memory and
//! mutable globals at a moment between two calls, which is everything the
//! app is (its JavaScript heap, Elm's model, its timers, its virtual clock
//! and `Math.random`'s state all live in linear memory). Taken from any app
//! ([`App::state`]) and restored into a fresh instance of the same guest
//! ([`Runtime::restore`]), it carries on exactly where it was.
//!
//! Encoded for storage as a small header, the memory compressed with zstd
//! (most of the 8.4 MB is zero) and a CRC-32 of everything before it, so a
//! damaged snapshot is refused rather than restored.

use wasmtime::{Instance, Store, Val};

use crate::app::App;
use crate::config::AppConfig;
use crate::error::{Error, Result};
use crate::guest::GuestId;
use crate::runtime::Runtime;
use crate::store::{run_to_completion, StoreState};

/// The memory the instrumented guest exports for snapshots (Wizer's name).
const MEMORY_EXPORT: &str = "__wizer_memory_0";

/// One mutable global's value, by its index among the guest's exported ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GlobalValue {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
}

/// A running sandbox's memory and mutable globals, between two calls.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxState {
    /// The guest build it was taken from.
    pub guest: GuestId,
    pub memory: Vec<u8>,
    /// `__wizer_global_N` for N = 0, 1, ...
    pub globals: Vec<GlobalValue>,
}

const MAGIC: &[u8; 16] = b"elmbox-state\0\0\0\x01";

impl SandboxState {
    /// The state as bytes to store: header, zstd-compressed memory, CRC-32.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 << 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.guest.0);
        out.extend_from_slice(&(self.memory.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.globals.len() as u32).to_le_bytes());
        for global in &self.globals {
            let (tag, bits) = match *global {
                GlobalValue::I32(v) => (0u8, v as u32 as u64),
                GlobalValue::I64(v) => (1, v as u64),
                GlobalValue::F32(v) => (2, v as u64),
                GlobalValue::F64(v) => (3, v),
            };
            out.push(tag);
            out.extend_from_slice(&bits.to_le_bytes());
        }
        // Level 3 (zstd's default): a counter's 9 MB of memory, 770 KB of
        // it not zero, in 258 KB for 3.3 ms of the commit thread; level 1
        // took 309 KB, 2.4 ms; level 6, 246 KB for 8.6 ms.
        let compressed = zstd::bulk::compress(&self.memory, 3)
            .map_err(|e| Error::Config(format!("compressing a snapshot: {e}")))?;
        out.extend_from_slice(&compressed);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Reads back what [`SandboxState::encode`] wrote; anything damaged or
    /// not a snapshot is refused, saying what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<SandboxState> {
        let bad = |why: &str| Error::BadSnapshot {
            reason: why.to_string(),
        };
        let (body, crc) = bytes
            .split_last_chunk::<4>()
            .ok_or_else(|| bad("it is too short"))?;
        if !body.starts_with(MAGIC) {
            return Err(bad("it is not an elmbox snapshot (or of another version)"));
        }
        if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
            return Err(bad("its checksum does not match: it is damaged"));
        }
        let mut at = MAGIC.len();
        let mut take = |n: usize| -> Result<&[u8]> {
            let part = body.get(at..at + n).ok_or_else(|| bad("it is cut short"))?;
            at += n;
            Ok(part)
        };
        let guest = GuestId(take(32)?.try_into().expect("32 bytes"));
        let memory_len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        let mut globals = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            let tag = take(1)?[0];
            let bits = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            globals.push(match tag {
                0 => GlobalValue::I32(bits as u32 as i32),
                1 => GlobalValue::I64(bits as i64),
                2 => GlobalValue::F32(bits as u32),
                3 => GlobalValue::F64(bits),
                _ => return Err(bad("it holds a global of an unknown type")),
            });
        }
        let memory_len = usize::try_from(memory_len)
            .ok()
            .filter(|&len| len <= 4 << 30)
            .ok_or_else(|| bad("its memory is larger than wasm32 allows"))?;
        let memory = zstd::bulk::decompress(&body[at..], memory_len)
            .map_err(|e| bad(&format!("its memory does not decompress: {e}")))?;
        if memory.len() != memory_len {
            return Err(bad("its memory is not the size it says"));
        }
        Ok(SandboxState {
            guest,
            memory,
            globals,
        })
    }
}

impl App {
    /// The sandbox's state now, between calls: everything needed to carry on
    /// from here in a fresh instance ([`Runtime::restore`]).
    pub fn state(&mut self) -> Result<SandboxState> {
        let guest = self.guest_id();
        let (store, instance) = self.sandbox()?;
        let memory = instance
            .get_memory(&mut *store, MEMORY_EXPORT)
            .ok_or_else(|| Error::Config("the instance exports no memory to snapshot".into()))?
            .data(&*store)
            .to_vec();
        let mut globals = Vec::new();
        while let Some(global) = instance.get_global(&mut *store, &global_name(globals.len())) {
            globals.push(match global.get(&mut *store) {
                Val::I32(v) => GlobalValue::I32(v),
                Val::I64(v) => GlobalValue::I64(v),
                Val::F32(v) => GlobalValue::F32(v),
                Val::F64(v) => GlobalValue::F64(v),
                other => {
                    return Err(Error::Config(format!(
                        "the guest has a global elmbox cannot snapshot: {:?}",
                        other.ty(&*store)
                    )))
                }
            });
        }
        Ok(SandboxState {
            guest,
            memory,
            globals,
        })
    }
}

fn global_name(index: usize) -> String {
    format!("__wizer_global_{index}")
}

impl Runtime {
    /// A new instance of the app whose state `state` holds, carrying on from
    /// there. `config` gives the host's side: the app's name and console
    /// (its settings are in the state). Refused for a state taken from
    /// another guest build.
    pub fn restore(&self, state: &SandboxState, config: AppConfig) -> Result<App> {
        if state.guest != self.guest_id() {
            return Err(Error::BadSnapshot {
                reason: format!(
                    "it was taken from another guest build ({}, this one is {})",
                    state.guest,
                    self.guest_id()
                ),
            });
        }
        let mut app = self.fresh_instance(config)?;
        let (store, instance) = app.sandbox()?;
        write_state(store, instance, state)?;
        app.read_clock();
        Ok(app)
    }

    /// A fresh instance of the guest, attached as an app that has loaded
    /// nothing yet: for a state to be written into.
    pub(crate) fn fresh_instance(&self, config: AppConfig) -> Result<App> {
        let mut store = self.new_store();
        let instance = run_to_completion(self.guest_pre().instantiate_async(&mut store))?;
        App::attach(
            store,
            instance,
            self.guest_id(),
            config.name,
            self.limits().clone(),
            config.console,
            None,
        )
    }
}

/// The host's page size, the unit a copy makes resident.
const PAGE_BYTES: usize = 4096;

/// Puts `state`'s memory and globals into `instance`.
fn write_state(
    store: &mut Store<StoreState>,
    instance: Instance,
    state: &SandboxState,
) -> Result<()> {
    let memory = sized_memory(store, instance, state.memory.len())?;
    // Only the pages that differ: most of the memory is zero in both, and a
    // page never written stays out of the process's resident memory.
    let data = memory.data_mut(&mut *store);
    for (to, from) in data
        .chunks_mut(PAGE_BYTES)
        .zip(state.memory.chunks(PAGE_BYTES))
    {
        if to != from {
            to.copy_from_slice(from);
        }
    }
    write_globals(store, instance, &state.globals)
}

/// The state of a memory given as data segments over zeroes (a built
/// module's): written into a fresh `instance` of the guest, whose memory
/// holds `guest_segments` over zeroes. Only the pages either touches are
/// touched: the ~2,000 zero pages of a counter's 9 MB are neither read nor
/// written (comparing them faulted each in, most of a module's start).
pub(crate) fn write_segments(
    store: &mut Store<StoreState>,
    instance: Instance,
    memory_bytes: usize,
    guest_segments: &[(u64, &[u8])],
    segments: &[(u64, &[u8])],
    globals: &[GlobalValue],
) -> Result<()> {
    let memory = sized_memory(store, instance, memory_bytes)?;
    let data = memory.data_mut(&mut *store);
    let outside = || Error::BadSnapshot {
        reason: "a data segment lies outside its memory".into(),
    };
    let place = |offset: u64, len: usize| {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        (end <= memory_bytes).then_some(start..end)
    };
    for (offset, bytes) in guest_segments {
        data[place(*offset, bytes.len()).ok_or_else(outside)?].fill(0);
    }
    for (offset, bytes) in segments {
        data[place(*offset, bytes.len()).ok_or_else(outside)?].copy_from_slice(bytes);
    }
    write_globals(store, instance, globals)
}

/// The instance's memory, grown to `bytes` (refused if it holds more).
fn sized_memory(
    store: &mut Store<StoreState>,
    instance: Instance,
    bytes: usize,
) -> Result<wasmtime::Memory> {
    let memory = instance
        .get_memory(&mut *store, MEMORY_EXPORT)
        .ok_or_else(|| Error::Config("the instance exports no memory to restore".into()))?;
    let have = memory.data_size(&*store);
    if !bytes.is_multiple_of(65536) || bytes < have {
        return Err(Error::BadSnapshot {
            reason: format!(
                "its memory ({bytes} bytes) does not fit the guest, which starts at {have} bytes"
            ),
        });
    }
    let pages = ((bytes - have) / 65536) as u64;
    if pages > 0 {
        memory
            .grow(&mut *store, pages)
            .map_err(|e| Error::BadSnapshot {
                reason: format!("its memory does not fit under the sandbox's limits: {e:#}"),
            })?;
    }
    Ok(memory)
}

/// Sets the instance's `__wizer_global_N` to `globals`, all of them.
fn write_globals(
    store: &mut Store<StoreState>,
    instance: Instance,
    globals: &[GlobalValue],
) -> Result<()> {
    for (index, value) in globals.iter().enumerate() {
        let global = instance
            .get_global(&mut *store, &global_name(index))
            .ok_or_else(|| Error::BadSnapshot {
                reason: format!("it has more globals than the guest ({index})"),
            })?;
        let value = match *value {
            GlobalValue::I32(v) => Val::I32(v),
            GlobalValue::I64(v) => Val::I64(v),
            GlobalValue::F32(v) => Val::F32(v),
            GlobalValue::F64(v) => Val::F64(v),
        };
        global
            .set(&mut *store, value)
            .map_err(|e| Error::BadSnapshot {
                reason: format!("its global {index} does not fit the guest: {e:#}"),
            })?;
    }
    if instance
        .get_global(&mut *store, &global_name(globals.len()))
        .is_some()
    {
        return Err(Error::BadSnapshot {
            reason: format!("it has fewer globals ({}) than the guest", globals.len()),
        });
    }
    Ok(())
}
