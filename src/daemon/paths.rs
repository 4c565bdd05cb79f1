//! Where an event's path lies, by its bytes. Every watcher event is compared with a few folders
//! (the pending folder, the decided ones, the queue root); `Path`'s own comparisons parse both
//! paths into components each time, which in a flood of arrivals was a large share of the loop.
//! The paths compared are all made by joining names onto the folders the daemon watches, so they
//! are already in the one form byte comparison needs (no `.`, no doubled or trailing `/`).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What follows `dir/` in `path` (empty for `dir` itself), or `None` when `path` is not `dir`
/// or below it.
pub(super) fn rest_under<'a>(path: &'a Path, dir: &Path) -> Option<&'a [u8]> {
    let (p, d) = (path.as_os_str().as_bytes(), dir.as_os_str().as_bytes());
    let d = match d {
        [rest @ .., b'/'] if !rest.is_empty() => rest,
        _ => d,
    };
    let rest = p.strip_prefix(d)?;
    match rest {
        [] => Some(rest),
        [b'/', after @ ..] => Some(after),
        _ if d == b"/" => Some(rest),
        _ => None,
    }
}

/// The first name below `dir` in `path`.
pub(super) fn first_below<'a>(path: &'a Path, dir: &Path) -> Option<&'a str> {
    let rest = rest_under(path, dir)?;
    let first = rest
        .split(|b| *b == b'/')
        .next()
        .filter(|f| !f.is_empty())?;
    std::str::from_utf8(first).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_under_a_folder_only_at_a_name_boundary() {
        let dir = Path::new("/q/pending");
        assert_eq!(rest_under(Path::new("/q/pending"), dir), Some(&b""[..]));
        assert_eq!(
            rest_under(Path::new("/q/pending/a/b"), dir),
            Some(&b"a/b"[..])
        );
        assert_eq!(rest_under(Path::new("/q/pendingx/a"), dir), None);
        assert_eq!(rest_under(Path::new("/q/pend"), dir), None);
        assert_eq!(
            rest_under(Path::new("/q/pending/a"), Path::new("/q/pending/")),
            Some(&b"a"[..])
        );
        assert_eq!(rest_under(Path::new("/q"), Path::new("/")), Some(&b"q"[..]));
        assert_eq!(first_below(Path::new("/q/pending/a/b"), dir), Some("a"));
        assert_eq!(first_below(Path::new("/q/pending"), dir), None);
        // The same answers as `Path`'s own comparisons, for the paths events carry.
        for p in [
            "/q/pending",
            "/q/pending/u",
            "/q/pending/u/code/x.py",
            "/q/pendingu",
            "/q",
        ] {
            let p = Path::new(p);
            let under = rest_under(p, dir).is_some();
            assert_eq!(under, p.starts_with(dir), "{}", p.display());
        }
    }
}
