//! Which configured domain a requester's email belongs to (exact match only).

/// The configured domain that `mail`'s domain (the part after `@`, lower-cased) equals exactly,
/// if any. `evil-example.org`, `sub.example.org` and `example.org.evil.com` do not match
/// `example.org`.
pub fn matching_domain(mail: &str, domains: &[String]) -> Option<String> {
    let (_, domain) = mail.trim().rsplit_once('@')?;
    let domain = domain.to_lowercase();
    if domain.is_empty() {
        return None;
    }
    domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_lowercase())
        .find(|d| *d == domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(d: &[&str]) -> Vec<String> {
        d.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn domains_match_exactly() {
        let d = domains(&["example.org", "Uni.EDU"]);
        assert_eq!(
            matching_domain("bob@example.org", &d).as_deref(),
            Some("example.org")
        );
        assert_eq!(
            matching_domain("Bob@EXAMPLE.org", &d).as_deref(),
            Some("example.org")
        );
        assert_eq!(
            matching_domain("carol@uni.edu", &d).as_deref(),
            Some("uni.edu")
        );
        for lookalike in [
            "eve@evil-example.org",
            "eve@sub.example.org",
            "eve@example.org.evil.com",
            "eve@example.org.",
            "eve@xexample.org",
            "eve@example.or",
            "example.org@evil.com",
            "eve@evil.com@example.org.evil.com",
            "example.org",
            "eve@",
        ] {
            assert_eq!(matching_domain(lookalike, &d), None, "{lookalike}");
        }
        assert_eq!(matching_domain("bob@example.org", &[]), None);
    }
}
