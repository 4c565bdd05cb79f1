//! The one check for a relative path written by a person (rule files in config.yaml, dataset
//! folders, files asked for through the API): it must name something inside its folder.

/// Why `path` cannot name a file or folder inside the folder it is relative to.
pub fn check(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err("is not a relative path");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("must not contain empty, . or .. parts");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        for ok in ["run.sh", "lib/util.py", "a/b/c", ".hidden", "a..b"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/etc", "a\\b", "a\0b"] {
            assert_eq!(check(bad), Err("is not a relative path"), "{bad:?}");
        }
        for bad in ["a//b", "./a", "a/..", "../a", "a/"] {
            assert_eq!(
                check(bad),
                Err("must not contain empty, . or .. parts"),
                "{bad}"
            );
        }
    }
}
