//! Strings a target controls (comm, cmdline, fd paths, socket names).
//!
//! They are hostile: a process can name itself `\x1b]0;pwned\x07` or put
//! invalid UTF-8 in its argv. [`TargetString`] keeps the exact bytes, so JSON
//! and snapshots stay lossless, and [`TargetString::escaped`] is the only way
//! they reach a terminal: control characters, DEL, bidi overrides and invalid
//! UTF-8 become `\xNN` (or `\u{NNNN}`), and a backslash becomes `\\`, so the
//! escaped form is unambiguous.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt::Write as _;

/// Bytes from a target, serialised as a JSON string when they are valid
/// UTF-8, and otherwise as `{"text": <lossy>, "hex": <exact bytes>}`. Held
/// exactly sized (a scan holds several per process: comm, argv, paths).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetString(Box<[u8]>);

impl TargetString {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        TargetString(bytes.into().into_boxed_slice())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lossy text, for matching and for JSON consumers that want a string.
    pub fn lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// Safe to print on a terminal: see the module documentation.
    pub fn escaped(&self) -> String {
        escape_bytes(&self.0)
    }
}

impl From<&str> for TargetString {
    fn from(s: &str) -> Self {
        TargetString::new(s.as_bytes())
    }
}

/// Escape arbitrary bytes for a terminal (see the module documentation).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if is_dangerous(c) => {
                    if (c as u32) < 0x100 {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    } else {
                        let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// C0, DEL, C1, and the Unicode controls that reorder or hide text.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

/// Quote one argument for display the way a shell user reads it: plain words
/// stay bare, anything else is single-quoted. Always escaped first.
pub fn shell_word(arg: &TargetString) -> String {
    let escaped = arg.escaped();
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        escaped
    } else {
        format!("'{}'", escaped.replace('\'', "'\\''"))
    }
}

/// A whole command line, escaped and quoted for a terminal.
pub fn command_line(args: &[TargetString]) -> String {
    args.iter().map(shell_word).collect::<Vec<_>>().join(" ")
}

#[derive(Serialize, Deserialize)]
struct NonUtf8 {
    text: String,
    hex: String,
}

impl Serialize for TargetString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => NonUtf8 {
                text: self.lossy().into_owned(),
                hex: self.0.iter().map(|b| format!("{b:02x}")).collect(),
            }
            .serialize(serializer),
        }
    }
}

/// A string the target controls: text, or, when its bytes are not UTF-8,
/// `{"text": <lossy>, "hex": <exact bytes>}`.
impl schemars::JsonSchema for TargetString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TargetString".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A string the target controls: text, or {text, hex} when its bytes are not UTF-8",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "description": "lossy text"},
                        "hex": {"type": "string", "pattern": "^([0-9a-f]{2})*$", "description": "the exact bytes"}
                    },
                    "required": ["text", "hex"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl<'de> Deserialize<'de> for TargetString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Bytes(NonUtf8),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Text(text) => Ok(TargetString::new(text.into_bytes())),
            Repr::Bytes(NonUtf8 { hex, .. }) => decode_hex(&hex)
                .map(TargetString::new)
                .ok_or_else(|| serde::de::Error::custom("invalid hex in a non-UTF-8 string")),
        }
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_and_invalid_utf8_are_escaped() {
        let hostile = TargetString::new(b"\x1b]0;pwned\x07a\\b\n\xff\xfe\x7f".to_vec());
        assert_eq!(hostile.escaped(), "\\x1b]0;pwned\\x07a\\\\b\\x0a\\xff\\xfe\\x7f");
    }

    #[test]
    fn c1_and_bidi_controls_are_escaped_but_other_unicode_is_kept() {
        let s = TargetString::from("caf\u{e9} \u{85}x \u{202e}evil");
        assert_eq!(s.escaped(), "caf\u{e9} \\x85x \\u{202e}evil");
    }

    #[test]
    fn escaped_output_has_no_control_characters() {
        let all: Vec<u8> = (0..=255u8).collect();
        let escaped = escape_bytes(&all);
        assert!(!escaped.chars().any(is_dangerous), "{escaped}");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        let args = [
            TargetString::from("python3"),
            TargetString::from("a) (b"),
            TargetString::from(""),
            TargetString::from("it's"),
            TargetString::from("--token=x"),
        ];
        assert_eq!(command_line(&args), "python3 'a) (b' '' 'it'\\''s' --token=x");
    }

    #[test]
    fn json_round_trip_is_lossless_for_valid_and_invalid_utf8() {
        for bytes in [b"plain \x1b[31m".to_vec(), b"bad \xff\xfe end".to_vec()] {
            let original = TargetString::new(bytes);
            let json = serde_json::to_string(&original).unwrap();
            let back: TargetString = serde_json::from_str(&json).unwrap();
            assert_eq!(back, original, "{json}");
        }
        let json = serde_json::to_string(&TargetString::new(b"a\xff".to_vec())).unwrap();
        assert_eq!(json, r#"{"text":"a�","hex":"61ff"}"#);
    }

    #[test]
    fn bad_hex_is_an_error_not_a_panic() {
        for json in [r#"{"text":"","hex":"6"}"#, r#"{"text":"","hex":"zz"}"#] {
            assert!(serde_json::from_str::<TargetString>(json).is_err());
        }
    }
}
