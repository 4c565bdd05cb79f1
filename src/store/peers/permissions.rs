//! Editing the catch-all read list of a dataset's `syft.pub.yaml` while keeping every other rule
//! and field, and what the permission files above a folder say.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::durable;
use crate::error::{Error, Result};
use crate::store::permfile;
use crate::syftbox::Layout;

const PERM_MAX: u64 = 1 << 20;

/// A permission file as a generic YAML document (so unknown fields survive an edit); `None` when
/// there is none.
pub(super) fn read_perm_doc(path: &Path) -> Result<Option<Value>> {
    let hint = "fix it by hand; syft-reviewer leaves it unchanged until then";
    let bytes = match durable::read_capped(path, PERM_MAX) {
        Ok(b) => b,
        Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{} is not UTF-8 text", path.display()), hint))?;
    if text.trim().is_empty() {
        return Ok(Some(json!({"rules": []})));
    }
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| {
        Error::invalid(
            format!(
                "{} is not a valid permission file ({})",
                path.display(),
                e.to_string().lines().next().unwrap_or("")
            ),
            hint,
        )
    })?;
    if !doc.is_object() {
        return Err(Error::invalid(
            format!("{} is not a mapping with `rules`", path.display()),
            hint,
        ));
    }
    Ok(Some(doc))
}

pub(super) fn write_perm_doc(path: &Path, doc: &Value) -> Result<()> {
    let yaml = serde_saphyr::to_string(doc).map_err(|e| {
        Error::invalid(
            format!("could not write {}: {e}", path.display()),
            "report this",
        )
    })?;
    durable::write_atomic(path, yaml.as_bytes(), 0o644)
}

/// The catch-all rule (`pattern: '**'`) of a permission document, if it has one.
pub(super) fn catch_all(doc: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    doc.get_mut("rules")?
        .as_array_mut()?
        .iter_mut()
        .find(|r| r.get("pattern").and_then(Value::as_str) == Some("**"))?
        .as_object_mut()
}

pub(super) fn lists_reader(rule: &serde_json::Map<String, Value>, mail: &str) -> bool {
    rule.get("access")
        .and_then(|a| a.get("read"))
        .and_then(Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(mail)))
        })
}

/// Adds `mail` to the read list of the catch-all rule, appending that rule when there is none.
/// Returns false when it is already there.
pub(super) fn add_reader(doc: &mut Value, mail: &str) -> std::result::Result<bool, &'static str> {
    let obj = doc.as_object_mut().ok_or("it is not a mapping")?;
    let rules = obj
        .entry("rules")
        .or_insert_with(|| Value::Array(Vec::new()));
    if rules.is_null() {
        *rules = Value::Array(Vec::new());
    }
    if !rules.is_array() {
        return Err("its `rules` is not a list");
    }
    let Some(rule) = catch_all(doc) else {
        doc["rules"]
            .as_array_mut()
            .expect("checked above")
            .push(json!({"pattern": "**", "access": {"admin": [], "write": [], "read": [mail]}}));
        return Ok(true);
    };
    if lists_reader(rule, mail) {
        return Ok(false);
    }
    let access = rule.entry("access").or_insert_with(|| json!({}));
    if access.is_null() {
        *access = json!({});
    }
    let access = access
        .as_object_mut()
        .ok_or("the access of its '**' rule is not a mapping")?;
    let read = access.entry("read").or_insert_with(|| json!([]));
    if read.is_null() {
        *read = json!([]);
    }
    read.as_array_mut()
        .ok_or("the read list of its '**' rule is not a list")?
        .push(Value::String(mail.to_string()));
    Ok(true)
}

/// Removes `mail` from the read list of the catch-all rule; returns whether it was there.
pub(super) fn remove_reader(doc: &mut Value, mail: &str) -> bool {
    let Some(read) = catch_all(doc)
        .and_then(|r| r.get_mut("access"))
        .and_then(|a| a.get_mut("read"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = read.len();
    read.retain(|u| !u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(mail)));
    read.len() != before
}

/// A new permission file for a folder that had none. The nearest permission file above it
/// governed the folder until now; its catch-all access is carried over so that nobody who could
/// read the folder loses access. (Other rules above cannot be carried over: they are reported.)
pub(super) fn new_dataset_doc(layout: &Layout, dir: &Path) -> Value {
    let mut rules = Vec::new();
    let mut p = dir.parent();
    while let Some(d) = p {
        if !d.starts_with(&layout.datasite) {
            break;
        }
        let path = d.join(permfile::FILE_NAME);
        if let Ok(Some(mut doc)) = read_perm_doc(&path) {
            if let Some(rule) = catch_all(&mut doc) {
                let mut access = rule.get("access").cloned().unwrap_or_else(|| json!({}));
                if !access.is_object() {
                    access = json!({});
                }
                for key in ["admin", "write", "read"] {
                    if access.get(key).is_none_or(Value::is_null) {
                        access[key] = json!([]);
                    }
                }
                rules.push(json!({"pattern": "**", "access": access}));
            }
            let others = doc.get("rules").and_then(Value::as_array).map_or(0, |r| {
                r.iter()
                    .filter(|r| r.get("pattern").and_then(Value::as_str) != Some("**"))
                    .count()
            });
            if others > 0 {
                log::warn!(
                    "{} is created; it now governs {} instead of {}, whose rules other than '**' do not carry over: check it",
                    dir.join(permfile::FILE_NAME).display(),
                    dir.display(),
                    path.display()
                );
            }
            break;
        }
        if d == layout.datasite {
            break;
        }
        p = d.parent();
    }
    json!({ "rules": rules })
}

/// A permission file above `dir` (in the datasite) that stops the server looking further down.
pub(super) fn terminal_ancestor(layout: &Layout, dir: &Path) -> Option<PathBuf> {
    let mut p = dir.parent();
    while let Some(d) = p {
        if !d.starts_with(&layout.datasite) {
            return None;
        }
        let path = d.join(permfile::FILE_NAME);
        if let Ok(Some(doc)) = read_perm_doc(&path)
            && doc.get("terminal").and_then(Value::as_bool) == Some(true)
        {
            return Some(path);
        }
        p = d.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::permfile::PermFile;

    #[test]
    fn readers_are_added_once_and_other_rules_kept() {
        let mut doc: Value = serde_saphyr::from_str(
            "terminal: false\nrules:\n  - pattern: 'README.md'\n    access: {read: ['*']}\n    extra: kept\n",
        )
        .unwrap();
        assert_eq!(add_reader(&mut doc, "bob@x.org"), Ok(true));
        assert_eq!(add_reader(&mut doc, "BOB@x.org"), Ok(false));
        let yaml = serde_saphyr::to_string(&doc).unwrap();
        let back = PermFile::parse(&yaml).unwrap();
        assert_eq!(back.terminal, Some(false));
        assert_eq!(back.rules.len(), 2, "{yaml}");
        assert_eq!(back.rules[0].pattern, "README.md");
        assert_eq!(back.rules[1].pattern, "**");
        assert_eq!(back.rules[1].access.read, vec!["bob@x.org"]);
        assert!(yaml.contains("extra: kept"), "{yaml}");
        assert!(remove_reader(&mut doc, "bob@x.org"));
        assert!(!remove_reader(&mut doc, "bob@x.org"));
        assert_eq!(doc["rules"][0]["access"]["read"], json!(["*"]));
    }
}
