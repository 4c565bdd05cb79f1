//! Unit tests of the rule config: loading, checks and rule matching.
use super::*;

const H1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(p, h)| (p.to_string(), h.trim_start_matches("sha256:").to_string()))
        .collect()
}

fn rule() -> RuleSet {
    RuleSet {
        name: "census".into(),
        peers_only: false,
        require_proof: true,
        allowed_users: vec![],
        required_filenames: vec!["run.sh".into(), "main.py".into()],
        required_scripts: [
            ("run.sh".to_string(), H1.to_string()),
            ("main.py".to_string(), H2.to_string()),
        ]
        .into(),
    }
}

#[test]
fn exact_set_with_matching_hashes_matches() {
    let c = check_rule(
        &rule(),
        "a@x.org",
        &PeerCheck::NotPeer,
        &files(&[("run.sh", H1), ("main.py", H2)]),
    );
    assert!(c.matches(), "{c:?}");
}

#[test]
fn extra_or_missing_file_fails() {
    let c = check_rule(
        &rule(),
        "a@x.org",
        &PeerCheck::NotPeer,
        &files(&[("run.sh", H1), ("main.py", H2), ("evil.py", H2)]),
    );
    assert!(!c.matches());
    assert!(c.conditions.iter().any(|x| x.what.contains("evil.py")));
    let c = check_rule(
        &rule(),
        "a@x.org",
        &PeerCheck::NotPeer,
        &files(&[("run.sh", H1)]),
    );
    assert!(!c.matches());
    assert!(
        c.conditions
            .iter()
            .any(|x| x.what.contains("missing required file(s): main.py"))
    );
}

#[test]
fn run_sh_hash_is_checked_like_any_file() {
    let c = check_rule(
        &rule(),
        "a@x.org",
        &PeerCheck::NotPeer,
        &files(&[("run.sh", H2), ("main.py", H2)]),
    );
    assert!(!c.matches());
    assert!(
        c.conditions
            .iter()
            .any(|x| !x.ok && x.what.starts_with("run.sh has sha256:"))
    );
}

#[test]
fn allowed_users_and_peers_only() {
    let mut r = rule();
    r.allowed_users = vec!["Bob@X.org".into()];
    let f = files(&[("run.sh", H1), ("main.py", H2)]);
    let no = PeerCheck::NotPeer;
    assert!(check_rule(&r, "bob@x.org", &no, &f).matches());
    assert!(!check_rule(&r, "eve@x.org", &no, &f).matches());
    r.peers_only = true;
    assert!(!check_rule(&r, "bob@x.org", &no, &f).matches());
    let proven = PeerCheck::Proven("sha256:ab".into());
    assert!(check_rule(&r, "bob@x.org", &proven, &f).matches());
    // A peer's unsigned job passes only where the owner gave up proofs for the rule set.
    let c = check_rule(&r, "bob@x.org", &PeerCheck::Unverified, &f);
    assert!(!c.matches());
    assert!(c.conditions[0].what.contains("require_proof"), "{c:?}");
    r.require_proof = false;
    assert!(check_rule(&r, "bob@x.org", &PeerCheck::Unverified, &f).matches());
    let changed = PeerCheck::Unproven("their identity key changed".into());
    assert!(!check_rule(&r, "bob@x.org", &changed, &f).matches());
}

#[test]
fn prefix_hashes_are_refused_at_load() {
    let err = Config::parse("jobs:\n  enabled: true\n  required_filenames: [run.sh]\n  required_scripts:\n    run.sh: \"sha256:1111\"\n").unwrap_err();
    assert!(err.to_string().contains("not sha256:<64"), "{err}");
}

#[test]
fn errors_name_line_and_column() {
    let err = Config::parse("jobs:\n  enabled: true\n  bogus: 1\n").unwrap_err();
    assert!(
        err.to_string().contains("line 3, column 3 (`jobs.bogus`)"),
        "{err}"
    );
    assert!(err.to_string().contains("bogus"), "{err}");
    let err = Config::parse("peers:\n  enabled: maybe-not\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn rules_without_files_and_lookalike_domains_are_refused() {
    assert!(
        Config::parse("jobs:\n  enabled: true\n")
            .unwrap_err()
            .to_string()
            .contains("required_filenames")
    );
    assert!(Config::parse("peers:\n  approved_domains: ['*.org']\n").is_err());
    assert!(Config::parse("peers:\n  approved_domains: ['a@b.org']\n").is_err());
    let c = Config::parse("jobs:\n  enabled: true\n  rules:\n    - name: a\n      required_filenames: [run.sh]\n    - name: b\n      peers_only: false\n      required_filenames: [run.sh, x.py]\n").unwrap();
    assert_eq!(c.rule_sets().len(), 2);
    assert!(c.rule_sets()[0].peers_only);
}

#[test]
fn hooks_and_smtp_are_checked() {
    let smtp = |extra: &str| {
        Config::parse(&format!(
            "notify:\n  smtp:\n    host: smtp.example.org\n    from: r@example.org\n{extra}"
        ))
    };
    let c = smtp("").unwrap();
    let s = c.notify.smtp.as_ref().unwrap();
    assert_eq!(
        (s.security.as_str(), s.port(), s.on_pending),
        ("starttls", 587, true)
    );
    let port = |extra: &str| smtp(extra).unwrap().notify.smtp.unwrap().port();
    assert_eq!(port("    security: tls\n"), 465);
    assert_eq!(port("    security: none\n"), 25);
    assert_eq!(port("    port: 2525\n"), 2525);
    assert!(smtp("    security: ssl\n").is_err());
    assert!(smtp("    to: not-an-address\n").is_err());
    assert!(smtp("    username: me\n").is_err());
    assert!(smtp("    password_env: PW\n").is_err());
    assert!(smtp("    username: me\n    password_env: PW\n").is_ok());
    assert!(Config::parse("hooks:\n  on_decision: ''\n").is_err());
    assert!(Config::parse("hooks:\n  on_decision: cat\n  timeout_seconds: 0\n").is_err());
    let h = Config::parse("hooks:\n  on_decision: cat\n").unwrap().hooks;
    assert_eq!(
        (h.on_decision.as_deref(), h.timeout_seconds),
        (Some("cat"), 10)
    );
}

#[test]
fn the_template_is_valid_and_disabled() {
    let c = Config::parse(include_str!("../../app_data_template/config.yaml")).unwrap();
    assert!(!c.jobs.enabled && !c.peers.enabled);
    assert!(c.rule_sets().is_empty());
}
