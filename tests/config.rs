//! The rule config against the real binary: rules approve live, a broken config.yaml is reported
//! with its line and leaves the previous rules in force, and fixing it takes effect at once.

use std::fs;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::util::*;

const WAIT: Duration = Duration::from_secs(10);
const STRANGER: &str = "stranger@elsewhere.org";

fn hash(content: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(content))
}

fn rules_config(code: &[(&str, &[u8])]) -> String {
    let mut yaml = String::from(
        "jobs:\n  enabled: true\n  rules:\n    - name: counting\n      peers_only: false\n      required_filenames: [",
    );
    yaml.push_str(&code.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", "));
    yaml.push_str("]\n      required_scripts:\n");
    for (p, c) in code {
        yaml.push_str(&format!("        {p}: \"{}\"\n", hash(c)));
    }
    yaml
}

#[test]
fn broken_config_keeps_the_previous_rules_and_says_which_line() {
    let sb = Sandbox::new();
    let code = simple_code();
    let d = sb.start(&[]);
    fs::write(sb.app_data().join("config.yaml"), rules_config(&code)).unwrap();
    assert!(
        wait_for(WAIT, || d.log_text().contains("1 rule set(s) enabled")),
        "{}",
        d.log_text()
    );
    let first = sb.submit(STRANGER, &code);
    // The decision is logged just after the move.
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&first, "approved")
        .is_empty()));
    let decision = &sb.decisions_for(&first, "approved")[0];
    assert_eq!(decision["method"], "rules");
    assert!(
        decision["reasons"]
            .to_string()
            .contains("\\\"counting\\\" matches in full")
    );

    // A broken file: reported with its line, the rules loaded before stay in force.
    let mut broken = rules_config(&code);
    broken.push_str("  surprise_key: 1\n");
    let bad_line = broken.lines().count();
    fs::write(sb.app_data().join("config.yaml"), &broken).unwrap();
    assert!(
        wait_for(WAIT, || d
            .log_text()
            .contains(&format!("line {bad_line}, column"))),
        "{}",
        d.log_text()
    );
    assert!(d.log_text().contains("surprise_key"));
    let second = sb.submit(STRANGER, &code);
    assert!(
        wait_for(WAIT, || sb.status_of(&second).as_deref()
            == Some("approved")),
        "{}",
        d.log_text()
    );
    let status = sb.cli(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        v["config_error"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("line {bad_line}")),
        "{v}"
    );

    // Fixed to a rule the code no longer meets: it takes effect without a restart.
    let other: Vec<(&str, &[u8])> = vec![("run.sh", b"echo other\n"), ("main.py", b"print(1)\n")];
    fs::write(sb.app_data().join("config.yaml"), rules_config(&other)).unwrap();
    assert!(wait_for(WAIT, || {
        let s = sb.cli(&["status", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&s.stdout)
            .map(|v| v["config_error"].is_null())
            .unwrap_or(false)
    }));
    std::thread::sleep(Duration::from_millis(300));
    let third = sb.submit(STRANGER, &code);
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&third, "waiting")
        .is_empty()));
    assert_eq!(sb.status_of(&third).as_deref(), Some("pending"));
    let waiting = &sb.decisions_for(&third, "waiting")[0];
    assert!(
        waiting["reasons"].to_string().contains("has sha256:"),
        "the explanation names the failing hash: {waiting}"
    );
}

#[test]
fn rules_check_shows_every_condition() {
    let sb = Sandbox::new();
    let code = simple_code();
    fs::create_dir_all(sb.app_data()).unwrap();
    sb.cli(&["status"]);
    fs::write(sb.app_data().join("config.yaml"), rules_config(&code)).unwrap();
    let mut extra = code.clone();
    extra.push(("evil.py", b"import os\n"));
    let uid = sb.submit(STRANGER, &extra);
    let out = sb.cli(&["rules", "check", &uid]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("rule set \"counting\": does not match"),
        "{text}"
    );
    assert!(
        text.contains("[no] file(s) not in required_filenames: evil.py"),
        "{text}"
    );
    assert!(
        text.contains("[ok] run.sh has the required sha256"),
        "{text}"
    );
}
