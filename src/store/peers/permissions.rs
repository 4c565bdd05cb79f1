//! Editing the catch-all read list of a dataset's `syft.pub.yaml` while keeping every other rule
//! and field ([`PermFile`] keeps what it does not know), and what the permission files above a
//! folder say.

use std::io;
use std::path::{Path, PathBuf};

use crate::durable;
use crate::error::{Error, Result};
use crate::store::permfile::{self, Access, PermFile, Rule};
use crate::syftbox::Layout;

const PERM_MAX: u64 = 1 << 20;
const FIX_BY_HAND: &str = "fix it by hand; syft-reviewer leaves it unchanged until then";

/// A dataset's permission file; `None` when there is none.
pub(super) fn read_perm(path: &Path) -> Result<Option<PermFile>> {
    let bytes = match durable::read_capped(path, PERM_MAX) {
        Ok(b) => b,
        Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::invalid(format!("{} is not UTF-8 text", path.display()), FIX_BY_HAND)
    })?;
    PermFile::from_yaml(&text).map(Some).map_err(|why| {
        Error::invalid(
            format!("{} is not a valid permission file ({why})", path.display()),
            FIX_BY_HAND,
        )
    })
}

pub(super) fn write_perm(path: &Path, perm: &PermFile) -> Result<()> {
    let yaml = serde_saphyr::to_string(perm).map_err(|e| {
        Error::invalid(
            format!("could not write {}: {e}", path.display()),
            "report this",
        )
    })?;
    durable::write_atomic(path, yaml.as_bytes(), 0o644)
}

/// The catch-all rule (`pattern: '**'`) of a permission file, if it has one.
fn catch_all(perm: &mut PermFile) -> Option<&mut Rule> {
    perm.rules.iter_mut().find(|r| r.pattern == "**")
}

/// True when the catch-all rule lets `mail` read.
pub(super) fn lets_read(perm: &PermFile, mail: &str) -> bool {
    perm.rules
        .iter()
        .find(|r| r.pattern == "**")
        .is_some_and(|r| lists_reader(r, mail))
}

fn lists_reader(rule: &Rule, mail: &str) -> bool {
    rule.access
        .read
        .iter()
        .any(|u| u.eq_ignore_ascii_case(mail))
}

/// Adds `mail` to the read list of the catch-all rule, appending that rule when there is none.
/// Returns false when it is already there.
pub(super) fn add_reader(perm: &mut PermFile, mail: &str) -> bool {
    let Some(rule) = catch_all(perm) else {
        perm.rules.push(Rule::new(
            "**",
            Access {
                read: vec![mail.to_string()],
                ..Access::default()
            },
        ));
        return true;
    };
    if lists_reader(rule, mail) {
        return false;
    }
    rule.access.read.push(mail.to_string());
    true
}

/// Removes `mail` from the read list of the catch-all rule; returns whether it was there.
pub(super) fn remove_reader(perm: &mut PermFile, mail: &str) -> bool {
    let Some(rule) = catch_all(perm) else {
        return false;
    };
    let read = &mut rule.access.read;
    let before = read.len();
    read.retain(|u| !u.eq_ignore_ascii_case(mail));
    read.len() != before
}

/// A new permission file for a folder that had none. The nearest permission file above it
/// governed the folder until now; its catch-all access is carried over so that nobody who could
/// read the folder loses access. (Other rules above cannot be carried over: they are reported.)
pub(super) fn new_dataset_perm(layout: &Layout, dir: &Path) -> PermFile {
    let mut rules = Vec::new();
    let mut p = dir.parent();
    while let Some(d) = p {
        if !d.starts_with(&layout.datasite) {
            break;
        }
        let path = d.join(permfile::FILE_NAME);
        if let Ok(Some(mut above)) = read_perm(&path) {
            if let Some(rule) = catch_all(&mut above) {
                rules.push(Rule::new("**", rule.access.clone()));
            }
            let others = above.rules.iter().filter(|r| r.pattern != "**").count();
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
    PermFile {
        rules,
        ..PermFile::default()
    }
}

/// A permission file above `dir` (in the datasite) that stops the server looking further down.
pub(super) fn terminal_ancestor(layout: &Layout, dir: &Path) -> Option<PathBuf> {
    let mut p = dir.parent();
    while let Some(d) = p {
        if !d.starts_with(&layout.datasite) {
            return None;
        }
        let path = d.join(permfile::FILE_NAME);
        if let Ok(Some(perm)) = read_perm(&path)
            && perm.terminal == Some(true)
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

    #[test]
    fn readers_are_added_once_and_other_rules_kept() {
        let mut perm = PermFile::parse(
            "terminal: false\nrules:\n  - pattern: 'README.md'\n    access: {read: ['*']}\n    extra: kept\n",
        )
        .unwrap();
        assert!(add_reader(&mut perm, "bob@x.org"));
        assert!(!add_reader(&mut perm, "BOB@x.org"));
        assert!(lets_read(&perm, "bob@x.org"));
        let yaml = perm.to_yaml();
        let back = PermFile::parse(&yaml).unwrap();
        assert_eq!(back.terminal, Some(false));
        assert_eq!(back.rules.len(), 2, "{yaml}");
        assert_eq!(back.rules[0].pattern, "README.md");
        assert_eq!(back.rules[1].pattern, "**");
        assert_eq!(back.rules[1].access.read, vec!["bob@x.org"]);
        assert!(yaml.contains("extra: kept"), "{yaml}");
        assert!(remove_reader(&mut perm, "bob@x.org"));
        assert!(!remove_reader(&mut perm, "bob@x.org"));
        assert!(!lets_read(&perm, "bob@x.org"));
        assert_eq!(perm.rules[0].access.read, vec!["*"]);
    }

    #[test]
    fn an_edit_keeps_fields_this_app_does_not_know() {
        let text = "version: 2\nrules:\n- pattern: '**'\n  access:\n    read: ['*']\n    own: [o@x.org]\n  note: shared\n";
        let mut perm = PermFile::parse(text).unwrap();
        assert!(add_reader(&mut perm, "bob@x.org"));
        let yaml = perm.to_yaml();
        let back = PermFile::parse(&yaml).unwrap();
        assert_eq!(back, perm);
        assert_eq!(back.other["version"], 2, "{yaml}");
        assert_eq!(back.rules[0].other["note"], "shared", "{yaml}");
        assert_eq!(back.rules[0].access.other["own"][0], "o@x.org", "{yaml}");
        assert_eq!(back.rules[0].access.read, vec!["*", "bob@x.org"]);
    }
}
