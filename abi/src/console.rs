//! Console lines: the level of each `console.*` call, the frames the guest
//! writes them in, and the one way both sides print them on stderr.

use std::fmt;

/// A console line's level: one byte in front of each console frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Log = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
    Debug = 4,
}

impl Level {
    pub fn from_byte(b: u8) -> Level {
        match b {
            1 => Level::Info,
            2 => Level::Warn,
            3 => Level::Error,
            4 => Level::Debug,
            _ => Level::Log,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Log => "log",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Debug => "debug",
        })
    }
}

/// Appends one frame (`level: u8, len: u32 LE, utf8 bytes`) to `out`.
pub fn push_frame(out: &mut Vec<u8>, level: Level, text: &str) {
    out.push(level as u8);
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Decodes frames into levels and text; a truncated frame ends the sequence.
pub fn frames(mut frames: &[u8]) -> impl Iterator<Item = (Level, &str)> + '_ {
    std::iter::from_fn(move || {
        let (&level, rest) = frames.split_first()?;
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let text = rest.get(4..4 + len)?;
        frames = &rest[4 + len..];
        // The guest writes text from Rust strings: always UTF-8.
        Some((
            Level::from_byte(level),
            std::str::from_utf8(text).unwrap_or(""),
        ))
    })
}

/// A console line as `elmbox run` and built modules print it on stderr:
/// `[app] console.level: text`.
pub struct Printed<'a> {
    pub app: &'a str,
    pub level: Level,
    pub text: &'a str,
}

impl fmt::Display for Printed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] console.{}: {}", self.app, self.level, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_and_stop_at_a_truncated_one() {
        let mut out = Vec::new();
        push_frame(&mut out, Level::Warn, "hi");
        out.push(Level::Error as u8);
        out.extend_from_slice(&9u32.to_le_bytes());
        out.extend_from_slice(b"short");
        let decoded: Vec<_> = frames(&out).collect();
        assert_eq!(decoded, vec![(Level::Warn, "hi")]);
    }

    #[test]
    fn lines_print_with_app_and_level() {
        let line = Printed {
            app: "app.js",
            level: Level::Warn,
            text: "careful",
        };
        assert_eq!(line.to_string(), "[app.js] console.warn: careful");
    }
}
