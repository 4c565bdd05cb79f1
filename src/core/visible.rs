//! Characters that make text look like something else, and showing them visibly.
//!
//! Two families: invisible format characters (bidirectional controls, zero-width characters,
//! every Unicode `Cf` character, line/paragraph separators, Hangul fillers), which make the code
//! shown differ from the code that runs ("Trojan Source", CVE-2021-42574) and are flagged on a
//! job; and terminal controls (C0 but tab and newline where they are harmless, DEL, C1, which
//! starts escape sequences), which let job data erase lines, retitle or write the clipboard of
//! the owner's terminal. Every CLI output of job data goes through [`for_terminal`] or
//! [`json_line`]; the web UI marks the same characters (`src/web/visible.js`, `visibleText`).

use std::borrow::Cow;

/// Invisible characters that change how text is shown, with their Unicode names.
///
/// The set is the `Cf` (format) category of Unicode 15.1, plus U+2028/U+2029 (some languages and
/// editors break lines there, others do not) and the Hangul fillers (letters that render as
/// nothing, used to make identifiers that cannot be seen). Variation selectors are left out:
/// emoji need them, and they do not reorder or hide text.
pub fn invisible_name(c: char) -> Option<&'static str> {
    let name = match c {
        '\u{061C}' => "ARABIC LETTER MARK (bidirectional control)",
        '\u{200E}' => "LEFT-TO-RIGHT MARK (bidirectional control)",
        '\u{200F}' => "RIGHT-TO-LEFT MARK (bidirectional control)",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING (bidirectional control)",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING (bidirectional control)",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING (bidirectional control)",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE (bidirectional control)",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE (bidirectional control)",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE (bidirectional control)",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE (bidirectional control)",
        '\u{2068}' => "FIRST STRONG ISOLATE (bidirectional control)",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE (bidirectional control)",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{2060}' => "WORD JOINER",
        '\u{2061}'..='\u{2064}' => "INVISIBLE MATHEMATICAL OPERATOR",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE (byte order mark)",
        '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR",
        '\u{00AD}' => "SOFT HYPHEN",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' => "HANGUL FILLER (renders as nothing)",
        '\u{E0001}' | '\u{E0020}'..='\u{E007F}' => "TAG CHARACTER (invisible text)",
        '\u{0600}'..='\u{0605}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{206A}'..='\u{206F}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' => "FORMAT CHARACTER (invisible)",
        _ => return None,
    };
    Some(name)
}

/// Terminal controls: every C0 control, DEL and every C1 control.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// `U+XXXX` of a character.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// `s` made safe to print on one terminal line: controls (newline and tab too, so a value
/// cannot forge lines of output) and invisible characters become `⟨U+XXXX⟩`.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| is_control(c) || invisible_name(c).is_some())
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_control(c) || invisible_name(c).is_some() {
            out.push('⟨');
            out.push_str(&code_point(c));
            out.push('⟩');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON for a terminal: serde_json escapes only C0 controls, so DEL, C1 controls and invisible
/// characters are escaped here too (`\uXXXX`, as JSON allows: the value is unchanged).
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> String {
    escape_json(serde_json::to_string(value).unwrap_or_default())
}

/// [`json_line`], indented.
pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> String {
    escape_json(serde_json::to_string_pretty(value).unwrap_or_default())
}

fn escape_json(json: String) -> String {
    if !json
        .chars()
        .any(|c| is_control(c) || invisible_name(c).is_some())
    {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        // Outside strings JSON only has ASCII punctuation, spaces and newlines (pretty output).
        if (is_control(c) && c != '\n') || invisible_name(c).is_some() {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_has_no_controls_left() {
        let name = "ok\x1b[2K\x1b]52;c;cm0gLXJmIH4=\x07\u{9b}31m\u{202e}x\ny\t\u{7f}";
        let safe = for_terminal(name);
        assert!(!safe.chars().any(|c| c.is_control()), "{safe}");
        assert!(safe.contains("⟨U+001B⟩[2K"), "{safe}");
        assert!(
            safe.contains("⟨U+009B⟩") && safe.contains("⟨U+202E⟩"),
            "{safe}"
        );
        assert!(matches!(for_terminal("plain é"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_equal_and_printable() {
        let v = serde_json::json!({"name": "a\u{9b}b\u{7f}\u{202e}\u{E0041}\x1b", "n": [1, 2]});
        for text in [json_line(&v), json_pretty(&v)] {
            assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
            assert!(!text.chars().any(|c| invisible_name(c).is_some()), "{text}");
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn the_set_covers_trojan_source_and_leaves_text_alone() {
        for c in "\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}\u{200b}\u{200c}\u{200d}\u{200e}\u{200f}\u{2028}\u{2029}\u{feff}\u{61c}\u{180e}\u{2060}\u{2064}\u{ad}".chars() {
            assert!(invisible_name(c).is_some(), "{}", code_point(c));
        }
        for c in "aé中ש١ 😀\u{fe0f}".chars() {
            assert!(invisible_name(c).is_none(), "{}", code_point(c));
        }
    }
}
