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

/// Hits listed per place; the total counts them all.
pub(crate) const HITS_KEPT: usize = 5;

/// One invisible character found in text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// 1-based line and column (in characters).
    pub line: u64,
    pub column: u64,
    /// `U+202E`.
    pub code_point: String,
    pub name: &'static str,
}

/// How many invisible characters a text holds, and the first few.
pub(crate) type Found = (u64, Vec<Hit>);

/// Finds invisible characters in text fed piece by piece, counting lines and columns.
pub(crate) struct TextScan {
    line: u64,
    column: u64,
    pub(crate) total: u64,
    pub(crate) hits: Vec<Hit>,
    /// A byte order mark here (the very start of a file) is allowed.
    at_start: bool,
    /// Also find control characters other than tab and newline (in names and metadata, where
    /// they have no business; code may hold colour escapes or form feeds).
    pub(crate) controls: bool,
}

impl TextScan {
    pub(crate) fn new(allow_bom: bool) -> TextScan {
        TextScan {
            line: 1,
            column: 0,
            total: 0,
            hits: Vec::new(),
            at_start: allow_bom,
            controls: false,
        }
    }

    pub(crate) fn feed_str(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if s.is_ascii() && !(self.controls && s.bytes().any(|b| b.is_ascii_control())) {
            // The common case: no character to find, only lines to count.
            match s.rfind('\n') {
                Some(last) => {
                    self.line += s.bytes().filter(|b| *b == b'\n').count() as u64;
                    self.column = (s.len() - last - 1) as u64;
                }
                None => self.column += s.len() as u64,
            }
            self.at_start = false;
            return;
        }
        for c in s.chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 0;
                self.at_start = false;
                continue;
            }
            self.column += 1;
            let bom = self.at_start && c == '\u{FEFF}';
            self.at_start = false;
            if bom {
                continue;
            }
            let control = self.controls && c.is_control() && c != '\t';
            let name = if control {
                Some("CONTROL CHARACTER")
            } else {
                invisible_name(c)
            };
            if let Some(name) = name {
                self.total += 1;
                if self.hits.len() < HITS_KEPT {
                    self.hits.push(Hit {
                        line: self.line,
                        column: self.column,
                        code_point: code_point(c),
                        name,
                    });
                }
            }
        }
    }
}

/// Invisible characters in a file's bytes, fed the buffers its hashing read gets, so the file is
/// read once for both. The text ends at the first byte that is not UTF-8: what follows is not
/// text anyone is shown.
pub(crate) struct FileText {
    scan: TextScan,
    /// The start of a character cut by the end of the last buffer.
    carry: Vec<u8>,
    ended: bool,
}

impl FileText {
    pub(crate) fn new() -> FileText {
        FileText {
            scan: TextScan::new(true),
            carry: Vec::new(),
            ended: false,
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.ended || bytes.is_empty() {
            return;
        }
        let joined;
        let text: &[u8] = if self.carry.is_empty() {
            bytes
        } else {
            self.carry.extend_from_slice(bytes);
            joined = std::mem::take(&mut self.carry);
            &joined
        };
        match std::str::from_utf8(text) {
            Ok(s) => self.scan.feed_str(s),
            Err(e) => {
                let good = e.valid_up_to();
                // The prefix was just checked.
                self.scan
                    .feed_str(std::str::from_utf8(&text[..good]).unwrap_or(""));
                if e.error_len().is_some() {
                    self.ended = true;
                } else {
                    self.carry = text[good..].to_vec();
                }
            }
        }
    }

    pub(crate) fn finish(self) -> Found {
        (self.scan.total, self.scan.hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_across_pieces() {
        let mut s = TextScan::new(true);
        s.feed_str("\u{feff}ab\n");
        s.feed_str("if x != 'none\u{202e} \u{2066}// c\u{2069}':\n");
        assert_eq!(s.total, 3);
        assert_eq!((s.hits[0].line, s.hits[0].column), (2, 14));
        assert_eq!(s.hits[0].code_point, "U+202E");
        let mut mid = TextScan::new(false);
        mid.feed_str("\u{feff}");
        assert_eq!(mid.total, 1);
    }

    #[test]
    fn file_text_across_buffers_stops_at_the_first_byte_that_is_not_utf8() {
        let text = "a\n\u{202e}b\u{200b}\n".as_bytes();
        let whole = {
            let mut f = FileText::new();
            f.feed(text);
            f.finish()
        };
        assert_eq!(whole.0, 2);
        // Every cut, including inside a character, finds the same.
        for cut in 0..text.len() {
            let mut f = FileText::new();
            f.feed(&text[..cut]);
            f.feed(&text[cut..]);
            assert_eq!(f.finish(), whole, "cut at {cut}");
        }
        let mut f = FileText::new();
        f.feed(b"x\xff\xe2\x80\xae");
        f.feed("\u{202e}".as_bytes());
        assert_eq!(f.finish().0, 0);
    }

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
