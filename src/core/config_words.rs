//! An invalid `config.yaml` said in words an owner can act on: where (line, column and the key,
//! as a path such as `jobs.enabled`), what was found and what was expected, instead of the YAML
//! parser's own terms; and what is in force while the file is invalid.

/// While config.yaml is invalid: what is in force instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InForce {
    /// Nothing valid was read before (a start with the invalid file): the built-in defaults.
    Defaults,
    /// The config read before it became invalid.
    Previous,
}

impl InForce {
    pub(crate) fn words(self) -> &'static str {
        match self {
            InForce::Defaults => {
                "the defaults are in force until it is fixed (no rule set approves jobs; no peer approval, hooks or mail)"
            }
            InForce::Previous => {
                "the config read before it became invalid stays in force until it is fixed"
            }
        }
    }
}

/// The parser's first error line (`line 2 column 12: invalid boolean`) about `text`, in words.
pub(crate) fn describe(text: &str, parser: &str) -> String {
    let Some((line, column, what)) = located(parser) else {
        return plain(parser, None);
    };
    let (key, found) = key_at(text, line);
    let mut out = format!("line {line}, column {column}");
    if let Some(k) = &key {
        out.push_str(&format!(" (`{k}`)"));
    }
    out.push_str(": ");
    out.push_str(&plain(what, found.as_deref()));
    out
}

/// `line N column M: rest` split up.
fn located(s: &str) -> Option<(usize, usize, &str)> {
    let rest = s.strip_prefix("line ")?;
    let (line, rest) = rest.split_once(" column ")?;
    let (column, what) = rest.split_once(':')?;
    Some((
        line.trim().parse().ok()?,
        column.trim().parse().ok()?,
        what.trim(),
    ))
}

/// The parser's words for what went wrong, in an owner's words.
fn plain(what: &str, found: Option<&str>) -> String {
    let what = what.trim().trim_start_matches("unexpected event:").trim();
    let expected = if what.contains("invalid boolean") {
        Some("true or false")
    } else if what.contains("invalid u64") || what.contains("invalid u16") {
        Some("a whole number (0 or more)")
    } else if what.contains("string scalar") {
        Some("a single value (a word, or text in quotes)")
    } else if what.contains("sequence start") {
        Some("a list ([a, b], or one `- item` per line below it)")
    } else if what.contains("mapping start") {
        Some("keys with values below it (`key: value`, indented)")
    } else {
        None
    };
    let shown = found.filter(|f| !f.is_empty());
    match (expected, shown) {
        (Some(e), Some(f)) => format!("expected {e}, found `{f}`"),
        (Some(e), None) => format!("expected {e}"),
        (None, _) => {
            if let Some(key) = what.strip_prefix("duplicate mapping key:") {
                format!("the key `{}` is given twice", key.trim())
            } else if let Some(rest) = what.strip_prefix("unknown field ") {
                let (field, allowed) = rest.split_once(", expected one of ").unwrap_or((rest, ""));
                if allowed.is_empty() {
                    format!("unknown key {field}")
                } else {
                    format!("unknown key {field}; the keys allowed here are {allowed}")
                }
            } else {
                what.to_string()
            }
        }
    }
}

/// The key path of line `line` (1-based) from the indentation of the lines above it, and the
/// value written on that line, if any.
fn key_at(text: &str, line: usize) -> (Option<String>, Option<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(here) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return (None, None);
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let key_of = |l: &str| -> Option<String> {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        if t.starts_with('#') {
            return None;
        }
        let (k, _) = t.split_once(':')?;
        let k = k.trim().trim_matches(|c| c == '"' || c == '\'');
        (!k.is_empty() && !k.contains(|c: char| c.is_whitespace() || "[]{},".contains(c)))
            .then(|| k.to_string())
    };
    let mut path = Vec::new();
    let found;
    let mut level = indent(here);
    match key_of(here) {
        Some(k) => {
            let value = here.split_once(':').map(|(_, v)| v.trim().to_string());
            found = value.filter(|v| !v.is_empty() && !v.starts_with('#'));
            path.push(k);
        }
        // A list item or a value alone on its line: the key it belongs to is above.
        None => {
            let t = here.trim().trim_start_matches("- ").trim();
            found = (!t.is_empty()).then(|| t.to_string());
            level += 1;
        }
    }
    for l in lines[..line - 1].iter().rev() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        if indent(l) < level
            && let Some(k) = key_of(l)
        {
            path.push(k);
            level = indent(l);
            if level == 0 {
                break;
            }
        }
    }
    path.reverse();
    let found = found.map(|f| f.chars().take(40).collect());
    ((!path.is_empty()).then(|| path.join(".")), found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_errors_are_said_with_the_key_and_what_was_expected() {
        let text = "jobs:\n  enabled: maybe\n";
        assert_eq!(
            describe(text, "line 2 column 12: invalid boolean"),
            "line 2, column 12 (`jobs.enabled`): expected true or false, found `maybe`"
        );
        let text = "jobs:\n  allowed_users:\n    - {a: 1}\n";
        assert_eq!(
            describe(
                text,
                "line 3 column 7: unexpected event: expected string scalar"
            ),
            "line 3, column 7 (`jobs.allowed_users`): expected a single value (a word, or text in quotes), found `{a: 1}`"
        );
        let text = "peers:\n  approved_domains: x\n";
        assert!(
            describe(
                text,
                "line 2 column 21: unexpected event: expected sequence start"
            )
            .starts_with("line 2, column 21 (`peers.approved_domains`): expected a list")
        );
        let d = describe(
            "jobs:\n  bogus: 1\n",
            "line 2 column 3: unknown field `bogus`, expected one of enabled, rules",
        );
        assert_eq!(
            d,
            "line 2, column 3 (`jobs.bogus`): unknown key `bogus`; the keys allowed here are enabled, rules"
        );
        // Nothing the parser says reaches the owner in its own terms.
        assert!(
            !describe(
                "x: [\n",
                "line 1 column 4: unexpected event: expected mapping start"
            )
            .contains("event")
        );
        // A line number past the end (or garbage) is no panic.
        assert_eq!(
            describe("", "line 9 column 1: invalid boolean"),
            "line 9, column 1: expected true or false"
        );
        assert_eq!(describe("a: b", "something odd"), "something odd");
    }
}
