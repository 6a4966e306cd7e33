//! An outgoing port's value as JSON text, written straight into a byte
//! buffer: what `JSON.stringify` gives, for the plain data Elm sends
//! (objects, arrays, strings, numbers, booleans, null), without the
//! engine's general machinery (its `toJSON` calls, a JavaScript array of
//! keys per object and a new quoted string per string), which took about a
//! tenth of a small app's event.
//!
//! Anything else (an object of another class or with a `toJSON`, a BigInt,
//! a proxy, nesting past [`MAX_DEPTH`]) makes [`write`] give up, and the
//! caller uses `JSON.stringify`, so the text is always the same as its. A
//! value is read as `JSON.stringify` reads it: `toJSON` looked up on each
//! object, then its own enumerable string keys in their order, each read
//! once; a value given up on partway is read again by `JSON.stringify`
//! (which only a getter could tell: Elm's values have none).

use std::io::Write as _;

use rquickjs::{qjs, Array, Atom, Ctx, Object, Value};

/// Deeper nesting is left to `JSON.stringify` (which also finds cycles).
const MAX_DEPTH: usize = 512;

/// `JS_CLASS_OBJECT` and `JS_CLASS_ARRAY` of quickjs-ng's `quickjs.c`.
const CLASS_OBJECT: u32 = 1;
const CLASS_ARRAY: u32 = 2;

/// Appends `value`'s JSON text to `out`; `None` (with `out` as it may have
/// been left) when `value` is not plain data, as the module says. `None`
/// for `undefined`, a function or a symbol at the top, which have no JSON
/// text (`JSON.stringify` gives `undefined`).
pub fn write<'js>(ctx: &Ctx<'js>, value: &Value<'js>, out: &mut Vec<u8>) -> Option<()> {
    let to_json = Atom::from_str(ctx.clone(), "toJSON").ok()?;
    Writer { to_json, out }.value(value, 0)?.then_some(())
}

struct Writer<'a, 'js> {
    to_json: Atom<'js>,
    out: &'a mut Vec<u8>,
}

impl<'js> Writer<'_, 'js> {
    /// Writes `value`; `Some(false)` when it has no JSON text (and nothing
    /// was written), `None` when this writer gives up.
    fn value(&mut self, value: &Value<'js>, depth: usize) -> Option<bool> {
        let raw = value.as_raw();
        match unsafe { qjs::JS_VALUE_GET_NORM_TAG(raw) } {
            qjs::JS_TAG_NULL => self.out.extend_from_slice(b"null"),
            qjs::JS_TAG_BOOL => {
                let text: &[u8] = if value.as_bool()? { b"true" } else { b"false" };
                self.out.extend_from_slice(text);
            }
            qjs::JS_TAG_INT => {
                // Writing to a Vec cannot fail.
                let _ = write!(self.out, "{}", value.as_int()?);
            }
            qjs::JS_TAG_FLOAT64 => self.number(value)?,
            qjs::JS_TAG_STRING | qjs::JS_TAG_STRING_ROPE => {
                let ctx = value.ctx().as_raw().as_ptr();
                let mut len: usize = 0;
                // SAFETY: `raw` is a live string of `ctx`; `quoted` frees
                // the text after its last read.
                let text = unsafe { qjs::JS_ToCStringLen(ctx, &mut len, raw) };
                self.quoted(ctx, text, len)?;
            }
            qjs::JS_TAG_UNDEFINED | qjs::JS_TAG_SYMBOL => return Some(false),
            qjs::JS_TAG_OBJECT => {
                if value.is_function() {
                    return Some(false);
                }
                if depth >= MAX_DEPTH {
                    return None;
                }
                let object = value.as_object()?;
                let class = unsafe { qjs::JS_GetClassID(raw) };
                if !matches!(class, CLASS_OBJECT | CLASS_ARRAY) {
                    return None;
                }
                let to_json: Value = object.get(self.to_json.clone()).ok()?;
                if !to_json.is_undefined() {
                    return None;
                }
                if class == CLASS_ARRAY {
                    self.array(object.as_array()?, depth)?;
                } else {
                    self.object(object, depth)?;
                }
            }
            _ => return None,
        }
        Some(true)
    }

    /// A number as JavaScript writes it: integers up to 2^53 by hand, the
    /// rest by the engine's own `Number.prototype.toString`; NaN and the
    /// infinities as `null`.
    fn number(&mut self, value: &Value<'js>) -> Option<()> {
        let n = value.as_float()?;
        if !n.is_finite() {
            self.out.extend_from_slice(b"null");
        } else if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            // -0 is written `0`.
            let _ = write!(self.out, "{}", n as i64);
        } else {
            let text = value.get::<rquickjs::Coerced<String>>().ok()?.0;
            self.out.extend_from_slice(text.as_bytes());
        }
        Some(())
    }

    /// Quotes a C string the engine gave (`JS_ToCStringLen`'s), then frees
    /// it; `None` for no string or one that is not UTF-8 (a lone surrogate).
    fn quoted(
        &mut self,
        ctx: *mut qjs::JSContext,
        text: *const std::ffi::c_char,
        len: usize,
    ) -> Option<()> {
        if text.is_null() {
            return None;
        }
        // SAFETY: the engine's string of `len` bytes, freed just after.
        let bytes = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) };
        let quoted = std::str::from_utf8(bytes).map(|t| quote(t, self.out));
        unsafe { qjs::JS_FreeCString(ctx, text) };
        quoted.ok()
    }

    fn array(&mut self, array: &Array<'js>, depth: usize) -> Option<()> {
        self.out.push(b'[');
        for i in 0..array.len() {
            if i > 0 {
                self.out.push(b',');
            }
            let item: Value = array.get(i).ok()?;
            if !self.value(&item, depth + 1)? {
                self.out.extend_from_slice(b"null");
            }
        }
        self.out.push(b']');
        Some(())
    }

    fn object(&mut self, object: &Object<'js>, depth: usize) -> Option<()> {
        let keys = Keys::of(object)?;
        self.out.push(b'{');
        let mut first = true;
        for &atom in keys.atoms() {
            // SAFETY: a live object and one of its keys; the value read is
            // owned by `item`, which frees it.
            let item = unsafe {
                let raw = qjs::JS_GetProperty(keys.ctx, object.as_raw(), atom);
                Value::from_raw(object.ctx().clone(), raw)
            };
            if item.is_exception() {
                return None;
            }
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            let mut len: qjs::size_t = 0;
            // SAFETY: a key `keys` holds, until it is dropped.
            let text = unsafe { qjs::JS_AtomToCStringLen(keys.ctx, &mut len, atom) };
            self.quoted(keys.ctx, text, len as usize)?;
            self.out.push(b':');
            if self.value(&item, depth + 1)? {
                first = false;
            } else {
                // No JSON text: the key goes too.
                self.out.truncate(mark);
            }
        }
        self.out.push(b'}');
        Some(())
    }
}

/// An object's own enumerable string keys, in their order, as the engine
/// lists them for `JSON.stringify`; freed when dropped.
struct Keys {
    ctx: *mut qjs::JSContext,
    tab: *mut qjs::JSPropertyEnum,
    len: u32,
}

impl Keys {
    fn of(object: &Object<'_>) -> Option<Keys> {
        let ctx = object.ctx().as_raw().as_ptr();
        let mut keys = Keys {
            ctx,
            tab: std::ptr::null_mut(),
            len: 0,
        };
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as std::ffi::c_int;
        // SAFETY: a live object of `ctx`; the table is freed on drop.
        let listed = unsafe {
            qjs::JS_GetOwnPropertyNames(ctx, &mut keys.tab, &mut keys.len, object.as_raw(), flags)
        };
        (listed >= 0).then_some(keys)
    }

    fn atoms(&self) -> impl Iterator<Item = &qjs::JSAtom> {
        let entries: &[qjs::JSPropertyEnum] = if self.tab.is_null() {
            &[]
        } else {
            // SAFETY: the engine's table of `len` entries, alive until drop.
            unsafe { std::slice::from_raw_parts(self.tab, self.len as usize) }
        };
        entries.iter().map(|e| &e.atom)
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        if !self.tab.is_null() {
            // SAFETY: the table `of` got, freed once.
            unsafe { qjs::JS_FreePropertyEnum(self.ctx, self.tab, self.len) };
        }
    }
}

/// `text` as a JSON string, escaped as `JSON.stringify` escapes it. (A
/// string with a lone surrogate is not UTF-8, so it never gets here: it is
/// given up on, and `JSON.stringify` writes it.)
fn quote(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in text.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}
