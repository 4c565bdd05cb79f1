//! Email addresses: validation, and the injective `_at_`/`_dot_` file-name encoding of SPEC §4.

use crate::error::{Error, Result};

/// Longest file name most filesystems accept; an email whose encoding is longer cannot be stored.
const MAX_FILE_NAME: usize = 255;

/// Lower-cases and validates an email address.
///
/// The accepted local-part characters are a deliberate subset of RFC 5322: letters, digits and
/// `. _ % + -`. Anything else (`/`, `*`, `?`, `{`, quotes...) could turn a file name into a path or a
/// permission-file glob that matches other people, so it is refused.
pub fn normalize(input: &str) -> Result<String> {
    let email = input.trim().to_lowercase();
    match check(&email) {
        Ok(()) => Ok(email),
        Err(reason) => Err(Error::invalid(
            format!("invalid email {input:?}"),
            format!("{reason}; expected something like name@example.org"),
        )),
    }
}

/// True when `email` is already lower-case and valid.
pub fn is_valid(email: &str) -> bool {
    check(email).is_ok()
}

fn check(email: &str) -> std::result::Result<(), &'static str> {
    let (local, domain) = email.split_once('@').ok_or("it has no '@'")?;
    if domain.contains('@') {
        return Err("it has more than one '@'");
    }
    if local.is_empty() || local.len() > 64 {
        return Err("the part before '@' must be 1 to 64 characters");
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._%+-".contains(&b))
    {
        return Err("the part before '@' may only hold letters, digits and . _ % + -");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("dots in the part before '@' cannot lead, trail or repeat");
    }
    if domain.len() > 253 {
        return Err("the domain is longer than 253 characters");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain needs at least one dot");
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err("each part of the domain must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("the domain may only hold letters, digits, dots and hyphens");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a domain part cannot start or end with a hyphen");
        }
    }
    if encode_unchecked(email).len() > MAX_FILE_NAME {
        return Err("it is too long to store as a file name");
    }
    Ok(())
}

fn encode_unchecked(email: &str) -> String {
    let mut out = String::with_capacity(email.len() + 16);
    for c in email.chars() {
        match c {
            '_' => out.push_str("__"),
            '@' => out.push_str("_at_"),
            '.' => out.push_str("_dot_"),
            c => out.push(c),
        }
    }
    out
}

/// The file name for an email: lower-case, `_` -> `__`, `@` -> `_at_`, `.` -> `_dot_`.
pub fn encode(email: &str) -> Result<String> {
    Ok(encode_unchecked(&normalize(email)?))
}

/// Decodes a file name left to right (`__` -> `_`, `_at_` -> `@`, `_dot_` -> `.`); names written
/// by the original app, which did not double underscores, decode too. The result is validated.
pub fn decode(name: &str) -> Result<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if c == '_' {
            if let Some(r) = rest.strip_prefix("__") {
                out.push('_');
                rest = r;
                continue;
            }
            if let Some(r) = rest.strip_prefix("_at_") {
                out.push('@');
                rest = r;
                continue;
            }
            if let Some(r) = rest.strip_prefix("_dot_") {
                out.push('.');
                rest = r;
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if out != out.to_lowercase() {
        return Err(Error::invalid(
            format!("file name {name:?} is not a valid encoded email"),
            "encoded emails are lower-case; rename it, e.g. with `syft-reviewer allow add`",
        ));
    }
    check(&out).map_err(|reason| {
        Error::invalid(
            format!("file name {name:?} does not decode to a valid email ({out:?}: {reason})"),
            "name files like researcher_at_university_dot_edu, or use `syft-reviewer allow add`",
        )
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_examples() {
        assert_eq!(
            encode("researcher@university.edu").unwrap(),
            "researcher_at_university_dot_edu"
        );
        assert_eq!(
            decode("researcher_at_university_dot_edu").unwrap(),
            "researcher@university.edu"
        );
        assert_eq!(encode("john_doe@x.org").unwrap(), "john__doe_at_x_dot_org");
        assert_eq!(decode("john__doe_at_x_dot_org").unwrap(), "john_doe@x.org");
        // Written by the original app, which did not double underscores.
        assert_eq!(decode("john_doe_at_x_dot_org").unwrap(), "john_doe@x.org");
        assert_eq!(
            encode("Andrew@OpenMined.org").unwrap(),
            "andrew_at_openmined_dot_org"
        );
    }

    #[test]
    fn tricky_local_parts_round_trip() {
        for e in [
            "a_at_b@x.org",
            "a_dot_c@x.org",
            "_@x.org",
            "a__@x.org",
            "a_@x.org",
        ] {
            assert_eq!(decode(&encode(e).unwrap()).unwrap(), e, "{e}");
        }
    }

    #[test]
    fn rejects_dangerous_or_malformed() {
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@@b.org",
            "a/b@x.org",
            "*@x.org",
            "a@x.org/../y",
            "../a@x.org",
            ".a@x.org",
            "a.@x.org",
            "a..b@x.org",
            "a@-x.org",
            "a@x..org",
            "a b@x.org",
            "a@x.org\n",
            "{a}@x.org",
            "a?@x.org",
        ] {
            assert!(
                normalize(bad).is_err() || bad.trim() != bad,
                "{bad:?} accepted"
            );
        }
        assert!(decode("bob_at_x").is_err());
        assert!(decode("syft.pub.yaml").is_err());
        assert!(decode("Bob_at_x_dot_org").is_err());
    }

    fn email_strategy() -> impl Strategy<Value = String> {
        let local = "[a-z0-9_%+-]{1,5}(\\.[a-z0-9_%+-]{1,5}){0,3}";
        let label = "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?";
        (local, proptest::collection::vec(label, 2..5))
            .prop_map(|(l, labels)| format!("{l}@{}", labels.join(".")))
    }

    proptest! {
        #[test]
        fn every_valid_email_round_trips(email in email_strategy()) {
            prop_assume!(is_valid(&email));
            let name = encode(&email).unwrap();
            prop_assert!(!name.contains('/') && !name.contains('@') && !name.starts_with('.'));
            prop_assert_eq!(decode(&name).unwrap(), email);
        }

        #[test]
        fn encoding_is_injective(a in email_strategy(), b in email_strategy()) {
            prop_assume!(is_valid(&a) && is_valid(&b) && a != b);
            prop_assert_ne!(encode(&a).unwrap(), encode(&b).unwrap());
        }

        #[test]
        fn decode_never_panics(name in "\\PC{0,40}") {
            let _ = decode(&name);
        }
    }
}
