//! A module made by `elmbox build`, read as a [`SandboxState`]: the state
//! its instances start in. Wizer wrote the built app's memory as data
//! segments and its mutable globals as their initial values, and left the
//! guest's code as it was; so the module's state restores into the
//! runtime's own guest ([`Runtime::restore`]) and carries on there, which
//! is what lets a built module be snapshotted and kept in a store like an
//! app loaded from JavaScript.

use elmbox_abi::ModuleSettings;
use wasmparser::{DataKind, Operator, Parser, Payload};

use crate::app::App;
use crate::config::AppConfig;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::state::{GlobalValue, SandboxState};

const PAGE: u64 = 65536;

impl Runtime {
    /// The state an instance of the built module `wasm` starts in. Refused
    /// unless the module was built from this runtime's guest (same code).
    pub fn module_state(&self, wasm: &[u8]) -> Result<SandboxState> {
        let module = read(wasm)?;
        let guest = read(self.guest_wasm())?;
        if module.code != guest.code {
            return Err(Error::bad_module(
                "it was built by another elmbox (its guest's code is not this runtime's guest)",
            ));
        }
        let mut memory = vec![0u8; usize::try_from(module.pages * PAGE).unwrap_or(usize::MAX)];
        for (offset, bytes) in &module.segments {
            let end = offset.checked_add(bytes.len() as u64);
            let place = end
                .filter(|&end| end <= memory.len() as u64)
                .map(|end| *offset as usize..end as usize)
                .ok_or_else(|| Error::bad_module("a data segment lies outside its memory"))?;
            memory[place].copy_from_slice(bytes);
        }
        Ok(SandboxState {
            guest: self.guest_id(),
            memory,
            globals: module.globals,
        })
    }

    /// The app built into the module `wasm`, started by restoring the
    /// module's state into this runtime's compiled guest rather than by
    /// compiling the module: milliseconds instead of most of a second, for
    /// one instance (an [`AppImage`](crate::AppImage) compiles it once to
    /// start many). Answers as the module would, what `init` sent included.
    /// Refused, as by [`Runtime::module_state`], for a module built on
    /// another guest, and for the bare guest.
    pub fn load_module(&self, wasm: &[u8], config: AppConfig) -> Result<App> {
        let mut app = self.restore_module(wasm, config)?;
        if app.module_settings()?.is_none() {
            return Err(Error::bare_guest());
        }
        let startup = app.kept_startup_outputs()?;
        app.set_startup_outputs(startup);
        Ok(app)
    }

    /// What `elmbox build` recorded in the module `wasm` (the app's
    /// settings and how it serves stdio), read from its state without
    /// compiling it.
    pub fn module_settings(&self, wasm: &[u8]) -> Result<ModuleSettings> {
        self.restore_module(wasm, AppConfig::default())?
            .module_settings()?
            .ok_or_else(Error::bare_guest)
    }

    /// An instance of this runtime's guest in the state of the built module
    /// `wasm`, as [`Runtime::restore`] of its [`Runtime::module_state`]
    /// gives, written segment by segment rather than page by page over the
    /// whole memory (a counter's start: 15 ms before).
    pub(crate) fn restore_module(&self, wasm: &[u8], config: AppConfig) -> Result<App> {
        let module = read(wasm)?;
        let guest = read(self.guest_wasm())?;
        if module.code != guest.code {
            return Err(Error::bad_module(
                "it was built by another elmbox (its guest's code is not this runtime's guest)",
            ));
        }
        let memory_bytes = usize::try_from(module.pages * PAGE)
            .map_err(|_| Error::bad_module("its memory is larger than this host's"))?;
        let mut app = self.fresh_instance(config)?;
        let (store, instance) = app.sandbox()?;
        crate::state::write_segments(
            store,
            instance,
            memory_bytes,
            &guest.segments,
            &module.segments,
            &module.globals,
        )
        .map_err(|e| match e {
            Error::BadSnapshot { reason } => Error::bad_module(reason),
            e => e,
        })?;
        app.read_clock();
        Ok(app)
    }
}

/// What a module's state is made of, as its sections say.
struct Parts<'a> {
    /// The code section, byte for byte.
    code: &'a [u8],
    /// The one memory's initial size.
    pages: u64,
    /// Active data segments: offset and bytes.
    segments: Vec<(u64, &'a [u8])>,
    /// The mutable globals' initial values, in order (the order Wizer's
    /// instrumentation exports them in, as `__wizer_global_N`).
    globals: Vec<GlobalValue>,
}

fn read(wasm: &[u8]) -> Result<Parts<'_>> {
    let mut parts = Parts {
        code: &[],
        pages: 0,
        segments: Vec::new(),
        globals: Vec::new(),
    };
    let mut memories = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if !matches!(import.map_err(invalid)?.ty, wasmparser::TypeRef::Func(_)) {
                        return Err(Error::bad_module(
                            "it imports something other than functions",
                        ));
                    }
                }
            }
            Payload::MemorySection(section) => {
                for memory in section {
                    parts.pages = memory.map_err(invalid)?.initial;
                    memories += 1;
                }
            }
            Payload::GlobalSection(section) => {
                for global in section {
                    let global = global.map_err(invalid)?;
                    if global.ty.mutable {
                        parts.globals.push(constant(&global.init_expr)?);
                    }
                }
            }
            Payload::DataSection(section) => {
                for data in section {
                    let data = data.map_err(invalid)?;
                    if let DataKind::Active { offset_expr, .. } = data.kind {
                        let offset = match constant(&offset_expr)? {
                            GlobalValue::I32(at) => at as u32 as u64,
                            GlobalValue::I64(at) => at as u64,
                            _ => {
                                return Err(Error::bad_module(
                                    "a data segment's offset is not an integer",
                                ))
                            }
                        };
                        parts.segments.push((offset, data.data));
                    }
                }
            }
            Payload::CodeSectionStart { range, .. } => parts.code = &wasm[range],
            _ => {}
        }
    }
    if memories != 1 {
        return Err(Error::bad_module(format!(
            "it has {memories} memories; an elmbox guest has one"
        )));
    }
    Ok(parts)
}

/// The value of a constant expression (`i32.const 5`, ...).
fn constant(expr: &wasmparser::ConstExpr<'_>) -> Result<GlobalValue> {
    let mut operators = expr.get_operators_reader();
    let value = match operators.read().map_err(invalid)? {
        Operator::I32Const { value } => GlobalValue::I32(value),
        Operator::I64Const { value } => GlobalValue::I64(value),
        Operator::F32Const { value } => GlobalValue::F32(value.bits()),
        Operator::F64Const { value } => GlobalValue::F64(value.bits()),
        other => {
            return Err(Error::bad_module(format!(
                "it starts a global with {other:?}"
            )))
        }
    };
    match operators.read().map_err(invalid)? {
        Operator::End => Ok(value),
        _ => Err(Error::bad_module(
            "it starts a global with more than a constant",
        )),
    }
}

fn invalid(e: wasmparser::BinaryReaderError) -> Error {
    Error::bad_module(format!("it is not valid WebAssembly: {e}"))
}
