//! The signed audit chain: verification from the CLI and the API against each kind of
//! tampering, concurrent appenders, a torn last line, and hand edits to the allowlist.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::gate::{
    BOB, EVE, NO_WEB, QUIET_WEB, WAIT, assert_valid, audit_show, audit_where, canonical_hash,
    chain_path, check_chain_by_hand, hex, ok, signature_of, verify_cli, wait_audit, wait_status,
    wait_waiting,
};
use crate::http::{Web, serve};
use crate::util::*;

// ------------------------------------------------------------------------------ the chain

/// Restores the chain files saved in `saved`, then applies `tamper` to the chain's lines.
fn with_lines(sb: &Sandbox, saved: &Saved, tamper: impl FnOnce(&mut Vec<String>)) {
    saved.restore();
    let text = fs::read_to_string(chain_path(sb)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    tamper(&mut lines);
    fs::write(chain_path(sb), lines.join("\n") + "\n").unwrap();
}

struct Saved {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Saved {
    fn take(sb: &Sandbox) -> Saved {
        let dir = sb.app_data().join("audit");
        Saved {
            files: ["chain.jsonl", "checkpoint.json", "public_key"]
                .iter()
                .map(|f| (dir.join(f), fs::read(dir.join(f)).unwrap()))
                .collect(),
        }
    }
    fn restore(&self) {
        for (p, b) in &self.files {
            fs::write(p, b).unwrap();
        }
    }
}

/// `audit verify` (CLI, exit 1) and `GET /api/v1/audit/verify` both report the break.
#[track_caller]
fn assert_broken(sb: &Sandbox, web: &Web, what: &str, line: u64, words: &[&str]) {
    let (code, v) = verify_cli(sb, &[]);
    assert_eq!(code, 1, "{what}: `audit verify` must exit 1: {v}");
    assert_eq!(v["valid"], false, "{what}: {v}");
    assert_eq!(v["first_break"], line, "{what}: {v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        words.iter().any(|w| reason.contains(w)),
        "{what}: the reason should name the problem ({words:?}): {reason}"
    );
    let api = web.get("/api/v1/audit/verify").expect(200);
    assert_eq!(api, v, "{what}: the API and the CLI disagree");
}

#[test]
fn audit_verify_catches_each_kind_of_tampering_from_the_cli_and_the_api() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let jobs: Vec<String> = (0..3).map(|_| sb.submit(EVE, &simple_code())).collect();
    let web = serve(&sb, &QUIET_WEB);
    let auto = sb.submit(BOB, &simple_code());
    wait_status(&sb, &web.daemon, &auto, "approved");
    wait_audit(&sb, &web.daemon, "the daemon's approval", |e| {
        e["uid"] == auto.as_str()
    });
    for uid in &jobs {
        wait_waiting(&sb, &web.daemon, uid);
    }
    ok(&sb.cli(&["decide", &jobs[0], "reject", "--rationale", "no"]));
    web.post(
        &format!("/api/v1/jobs/{}/decide", jobs[1]),
        Some(
            &json!({"verdict": "request_changes", "rationale": "fewer columns",
            "signature": signature_of(&sb, &sb.job_dir("pending", &jobs[1]))}),
        ),
    )
    .expect(200);
    web.post(
        &format!("/api/v1/jobs/{}/decide", jobs[2]),
        Some(&json!({"verdict": "approve",
            "signature": signature_of(&sb, &sb.job_dir("pending", &jobs[2]))})),
    )
    .expect(200);
    ok(&sb.cli(&["allow", "add", "carol@lab.example"]));
    settle(&sb);

    // Intact: valid, every entry linked and signed as the README says.
    let entries = check_chain_by_hand(&sb);
    let n = entries.len() as u64;
    assert_eq!(n, 6, "{entries:?}");
    assert_eq!(assert_valid(&sb), n);
    let api = web.get("/api/v1/audit/verify").expect(200);
    assert_eq!((&api["valid"], &api["entries"]), (&json!(true), &json!(n)));
    let actors: Vec<&str> = entries
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["cli", "daemon", "cli", "web", "web", "cli"]);
    // As a third party holding the real public key.
    let key_file = sb.dir.path().join("real_public_key");
    fs::copy(sb.app_data().join("audit/public_key"), &key_file).unwrap();
    let key_arg = key_file.to_str().unwrap();
    let (code, v) = verify_cli(&sb, &["--public-key", key_arg]);
    assert_eq!(
        (code, &v["valid"], &v["entries"]),
        (0, &json!(true), &json!(n)),
        "{v}"
    );

    let saved = Saved::take(&sb);

    // An edited field.
    with_lines(&sb, &saved, |l| {
        let mut e: Value = serde_json::from_str(&l[2]).unwrap();
        e["outcome"] = "approved".into();
        l[2] = e.to_string();
    });
    assert_broken(&sb, &web, "an edited outcome", 2, &["edited"]);
    with_lines(&sb, &saved, |l| {
        let mut e: Value = serde_json::from_str(&l[4]).unwrap();
        e["actor"] = "daemon".into();
        l[4] = e.to_string();
    });
    assert_broken(&sb, &web, "an edited actor", 4, &["edited"]);

    // A deleted entry.
    with_lines(&sb, &saved, |l| {
        l.remove(1);
    });
    assert_broken(&sb, &web, "a deleted entry", 1, &["deleted"]);

    // Two entries swapped.
    with_lines(&sb, &saved, |l| l.swap(2, 3));
    assert_broken(&sb, &web, "swapped entries", 2, &["reordered"]);

    // The tail cut off.
    with_lines(&sb, &saved, |l| l.truncate(3));
    assert_broken(&sb, &web, "a truncated tail", 3, &["truncated"]);

    // An entry appended by someone without the key (its hash and link are right).
    with_lines(&sb, &saved, |l| {
        let last: Value = serde_json::from_str(l.last().unwrap()).unwrap();
        let mut forged = json!({
            "seq": n, "time": last["time"], "event": "allowlist.add", "actor": "cli",
            "email": "mallory@evil.example", "outcome": "changed", "reasons": [],
            "prev": last["hash"], "hash": "", "sig": "00".repeat(64),
        });
        forged["hash"] = canonical_hash(&forged).into();
        l.push(forged.to_string());
    });
    assert_broken(&sb, &web, "a forged entry", n, &["not signed"]);

    // The whole chain re-signed with another key, which is published instead.
    let other = SigningKey::from_bytes(&[7u8; 32]);
    with_lines(&sb, &saved, |l| {
        for line in l.iter_mut() {
            let mut e: Value = serde_json::from_str(line).unwrap();
            let hash = canonical_hash(&e);
            e["sig"] = hex(&other.sign(hash.as_bytes()).to_bytes()).into();
            *line = e.to_string();
        }
    });
    let audit = sb.app_data().join("audit");
    fs::write(
        audit.join("public_key"),
        format!("ed25519:{}\n", hex(&other.verifying_key().to_bytes())),
    )
    .unwrap();
    let cp: Value =
        serde_json::from_slice(&fs::read(audit.join("checkpoint.json")).unwrap()).unwrap();
    let msg = format!(
        "syft-reviewer checkpoint {} {}",
        cp["size"],
        cp["hash"].as_str().unwrap()
    );
    fs::write(
        audit.join("checkpoint.json"),
        json!({"size": cp["size"], "hash": cp["hash"], "sig": hex(&other.sign(msg.as_bytes()).to_bytes())})
            .to_string(),
    )
    .unwrap();
    assert_broken(
        &sb,
        &web,
        "a re-signed chain",
        0,
        &["re-signed", "not this datasite's key"],
    );
    // Whoever holds the real public key sees it too.
    let (code, v) = verify_cli(&sb, &["--public-key", key_arg]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        (&v["valid"], &v["first_break"]),
        (&json!(false), &json!(0)),
        "{v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("not signed"), "{v}");

    // Put back as it was, the chain verifies again.
    saved.restore();
    assert_eq!(assert_valid(&sb), n);
    assert_eq!(web.get("/api/v1/audit/verify").expect(200)["valid"], true);

    // `audit export --since` keeps the entries from that time on.
    let times: Vec<String> = entries
        .iter()
        .map(|e| e["time"].as_str().unwrap().to_string())
        .collect();
    let export = |since: &str| -> Vec<Value> {
        ok(&sb.cli(&["audit", "export", "--since", since]))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let since = &times[3];
    let expected: Vec<&Value> = entries
        .iter()
        .filter(|e| e["time"].as_str().unwrap() >= since.as_str())
        .collect();
    assert!(
        expected.len() < entries.len() && !expected.is_empty(),
        "times: {times:?}"
    );
    assert_eq!(export(since).iter().collect::<Vec<_>>(), expected);
    assert_eq!(export(&times[0][..10]).len(), entries.len());
    assert!(export("2999-01-01").is_empty());
    assert_eq!(
        ok(&sb.cli(&["audit", "export"])).lines().count(),
        entries.len()
    );
}

#[test]
fn concurrent_appenders_never_interleave_and_the_chain_verifies() {
    const JOBS: usize = 30;
    const WRITERS: usize = 4;
    const EACH: usize = 6;
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    let d = sb.start(&NO_WEB);
    let uids: Vec<String> = std::thread::scope(|s| {
        let burst = s.spawn(|| {
            (0..JOBS)
                .map(|_| sb.submit(BOB, &simple_code()))
                .collect::<Vec<String>>()
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let sb = &sb;
                s.spawn(move || {
                    for i in 0..EACH {
                        let mail = format!("p{w}x{i}@lab.example");
                        ok(&sb.cli(&["allow", "add", &mail]));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        burst.join().unwrap()
    });
    for uid in &uids {
        wait_status(&sb, &d, uid, "approved");
    }
    // A hand edit made after everything else: once it is audited, the daemon has seen every
    // allowlist change the CLI made, and none of them may have been taken for a hand edit.
    sb.allow_by_hand("sentinel_at_lab_dot_example");
    wait_audit(&sb, &d, "the hand-made sentinel", |e| {
        e["email"] == "sentinel@lab.example" && e["actor"] == "filesystem"
    });
    assert!(
        wait_for(WAIT, || {
            let chain = audit_show(&sb);
            uids.iter()
                .all(|u| chain.iter().any(|e| e["uid"] == u.as_str()))
        }),
        "some approvals never reached the chain; log:\n{}",
        d.log_text()
    );
    settle(&sb);

    let entries = check_chain_by_hand(&sb);
    assert_eq!(assert_valid(&sb), entries.len() as u64);
    let adds: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "allowlist.add" && e["actor"] == "cli")
        .collect();
    assert_eq!(adds.len(), 1 + WRITERS * EACH, "{adds:?}");
    let emails: BTreeSet<&str> = adds.iter().map(|e| e["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), 1 + WRITERS * EACH, "{emails:?}");
    for uid in &uids {
        let d: Vec<&Value> = entries
            .iter()
            .filter(|e| e["event"] == "decision" && e["uid"] == uid.as_str())
            .collect();
        assert_eq!(d.len(), 1, "{uid}: {d:?}");
        assert_eq!(
            (&d[0]["actor"], &d[0]["outcome"]),
            (&json!("daemon"), &json!("approved"))
        );
    }
    let by_hand: Vec<&Value> = entries
        .iter()
        .filter(|e| e["actor"] == "filesystem")
        .collect();
    assert_eq!(
        by_hand.len(),
        1,
        "CLI edits taken for hand edits: {by_hand:?}"
    );
}

#[test]
fn a_torn_last_line_is_ignored_then_cut_off_at_the_next_append() {
    let sb = Sandbox::new();
    ok(&sb.cli(&["allow", "add", BOB]));
    ok(&sb.cli(&["allow", "add", "carol@lab.example"]));
    let job = sb.submit(EVE, &simple_code());
    let d = sb.start(&NO_WEB);
    wait_waiting(&sb, &d, &job);
    settle(&sb);
    let n = assert_valid(&sb);
    assert_eq!(n, 2);
    let intact = fs::read(chain_path(&sb)).unwrap();

    // A crash in the middle of an append leaves a partial line without its newline.
    let torn = format!(r#"{{"seq":{n},"time":"2026-11-22T10:1"#);
    fs::OpenOptions::new()
        .append(true)
        .open(chain_path(&sb))
        .unwrap()
        .write_all(torn.as_bytes())
        .unwrap();
    let (code, v) = verify_cli(&sb, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (&v["valid"], &v["entries"]),
        (&json!(true), &json!(n)),
        "{v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("torn"), "{v}");
    // Reading the chain is not writing it.
    assert_eq!(
        fs::read(chain_path(&sb)).unwrap(),
        [intact.as_slice(), torn.as_bytes()].concat()
    );

    // The next append (a decision) cuts the torn line off and links to the last real entry.
    ok(&sb.cli(&["decide", &job, "reject", "--rationale", "no"]));
    let entries = check_chain_by_hand(&sb);
    assert_eq!(assert_valid(&sb), n + 1);
    assert_eq!(entries.len() as u64, n + 1);
    let text = fs::read(chain_path(&sb)).unwrap();
    assert!(
        text.starts_with(&intact),
        "the intact entries must be kept as they were"
    );
    let rest = std::str::from_utf8(&text[intact.len()..]).unwrap();
    assert!(
        rest.ends_with('\n') && rest.lines().count() == 1 && !rest.contains(&torn),
        "the torn bytes must be gone, replaced by one entry: {rest:?}"
    );
    let last = entries.last().unwrap();
    assert_eq!(
        (&last["event"], &last["uid"], &last["seq"]),
        (&json!("decision"), &json!(job), &json!(n))
    );
}

// ------------------------------------------------------------------------------ hand edits

#[test]
fn hand_edits_to_the_allowlist_are_audited_and_cli_edits_only_once() {
    let sb = Sandbox::new();
    let d = sb.start(&NO_WEB);
    let carol = "carol@lab.example";
    let entries_for = |mail: &str| audit_where(&sb, |e| e["email"] == mail);

    sb.allow_by_hand("carol_at_lab_dot_example");
    let e = wait_audit(&sb, &d, "a hand-made allowlist file", |e| {
        e["email"] == carol && e["event"] == "allowlist.add"
    });
    assert_eq!(e["actor"], "filesystem", "{e}");
    fs::remove_file(sb.allowlist_dir().join("carol_at_lab_dot_example")).unwrap();
    let e = wait_audit(&sb, &d, "a hand-deleted allowlist file", |e| {
        e["email"] == carol && e["event"] == "allowlist.remove"
    });
    assert_eq!(e["actor"], "filesystem", "{e}");

    ok(&sb.cli(&["allow", "add", "dave@lab.example"]));
    ok(&sb.cli(&["allow", "add", "frank@lab.example"]));
    ok(&sb.cli(&["allow", "remove", "frank@lab.example"]));
    // Once this hand edit is audited, the daemon has seen the CLI's changes too.
    sb.allow_by_hand("erin_at_lab_dot_example");
    wait_audit(&sb, &d, "the second hand-made file", |e| {
        e["email"] == "erin@lab.example"
    });
    settle(&sb);

    let dave = entries_for("dave@lab.example");
    assert_eq!(dave.len(), 1, "{dave:?}");
    assert_eq!(
        (&dave[0]["event"], &dave[0]["actor"]),
        (&json!("allowlist.add"), &json!("cli"))
    );
    let frank: Vec<(String, String)> = entries_for("frank@lab.example")
        .iter()
        .map(|e| (e["event"].to_string(), e["actor"].to_string()))
        .collect();
    assert_eq!(
        frank,
        [
            ("\"allowlist.add\"".into(), "\"cli\"".into()),
            ("\"allowlist.remove\"".into(), "\"cli\"".into())
        ]
    );
    let carol_entries: Vec<(String, String)> = entries_for(carol)
        .iter()
        .map(|e| (e["event"].to_string(), e["actor"].to_string()))
        .collect();
    assert_eq!(
        carol_entries,
        [
            ("\"allowlist.add\"".into(), "\"filesystem\"".into()),
            ("\"allowlist.remove\"".into(), "\"filesystem\"".into())
        ]
    );
    let erin = entries_for("erin@lab.example");
    assert_eq!(erin.len(), 1, "{erin:?}");
    assert_eq!(erin[0]["actor"], "filesystem");
    assert_valid(&sb);
}
