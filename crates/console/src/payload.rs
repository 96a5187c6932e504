//! Record bytes as people read them: text when they are UTF-8, pretty JSON
//! when they parse as JSON, and always hex.

use crate::model::Payload;

/// Bytes shown at most (text, JSON and hex); longer values are cut and say so.
const MAX_SHOWN_BYTES: usize = 64 * 1024;

pub fn payload(bytes: &[u8]) -> Payload {
    let shown = &bytes[..bytes.len().min(MAX_SHOWN_BYTES)];
    let text = std::str::from_utf8(shown).ok().map(str::to_string);
    let json = text
        .as_deref()
        .filter(|text| {
            let trimmed = text.trim_start();
            trimmed.starts_with('{') || trimmed.starts_with('[')
        })
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|value| serde_json::to_string_pretty(&value).ok());
    let mut hex = String::with_capacity(shown.len() * 2);
    for byte in shown {
        hex.push_str(&format!("{byte:02x}"));
    }
    Payload {
        text,
        json,
        hex,
        size: bytes.len(),
    }
}

/// Whether the payload's text or hex contains `needle` (lower case).
pub fn contains(payload: &Payload, needle: &str) -> bool {
    payload
        .text
        .as_deref()
        .is_some_and(|text| text.to_lowercase().contains(needle))
        || payload.hex.contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_and_binary_are_each_shown_their_way() {
        let json = payload(br#"{"id":1,"tags":["a"]}"#);
        assert_eq!(json.text.as_deref(), Some(r#"{"id":1,"tags":["a"]}"#));
        assert!(
            json.json
                .as_deref()
                .is_some_and(|pretty| pretty.contains("\n  \"id\": 1"))
        );
        let text = payload(b"hello");
        assert_eq!(text.json, None);
        assert_eq!(text.hex, "68656c6c6f");
        let binary = payload(&[0xff, 0x00]);
        assert_eq!(binary.text, None);
        assert_eq!(binary.hex, "ff00");
        assert_eq!(binary.size, 2);
    }
}
