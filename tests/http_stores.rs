//! The owner's stores over HTTP: the allowlist, trusted code, signature checks and the job
//! history, each change with its effect on disk.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::http::{
    BOB, EVE, WAIT, Web, cli_signature, completed_in_history, history_file, mode, ok, serve,
    wait_status,
};
use crate::util::*;

fn trusted_file(sb: &Sandbox, sig: &str) -> PathBuf {
    sb.app_data()
        .join("trusted_code")
        .join(format!("{sig}.json"))
}

// ------------------------------------------------------------------------------ allowlist

#[test]
fn allowlist_add_check_remove_and_replace() {
    let sb = Sandbox::new();
    let waiting = sb.submit("re_searcher@uni.example", &simple_code());
    sb.allow_by_hand("not-an-email");
    let web = serve(&sb, &[]);
    let dir = sb.allowlist_dir();

    let before = web.get("/api/v1/allowlist").expect(200);
    assert!(before["emails"].is_array(), "{before}");
    let invalid = before["invalid"].as_array().unwrap();
    assert!(
        invalid
            .iter()
            .any(|i| i["file"] == "not-an-email"
                && i["reason"].as_str().is_some_and(|r| !r.is_empty())),
        "{before}"
    );
    assert_eq!(
        web.get("/api/v1/allowlist/check/Re_Searcher@Uni.example")
            .expect(200),
        json!({"email": "re_searcher@uni.example", "allowlisted": false})
    );

    // Added: 201, one 0600 file named by the encoded email, and the waiting job is approved.
    let r = web.post("/api/v1/allowlist/add/Re_Searcher@Uni.example", None);
    assert_eq!(
        r.expect(201),
        // No identity key published: proofs optional, nothing pinned.
        json!({"email": "re_searcher@uni.example", "added": true,
               "proof": {"proof": "optional", "key": null, "pinned_at": null}})
    );
    let file = dir.join("re__searcher_at_uni_dot_example");
    assert!(
        file.is_file(),
        "{:?}",
        fs::read_dir(&dir).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);
    wait_status(&sb, &web, &waiting, "approved");
    let perm = fs::read_to_string(dir.join("syft.pub.yaml")).unwrap();
    assert!(perm.contains("re_searcher@uni.example"), "{perm}");

    // Again: 200, nothing new.
    let r = web.post("/api/v1/allowlist/add/re_searcher@uni.example", None);
    assert_eq!(
        r.expect(200),
        json!({"email": "re_searcher@uni.example", "added": false,
               "proof": {"proof": "optional", "key": null, "pinned_at": null}})
    );
    let listed = web.get("/api/v1/allowlist").expect(200);
    assert!(
        listed["emails"]
            .as_array()
            .unwrap()
            .contains(&json!("re_searcher@uni.example")),
        "{listed}"
    );
    assert_eq!(
        web.get("/api/v1/allowlist/check/re_searcher@uni.example")
            .expect(200)["allowlisted"],
        true
    );
    // The CLI sees the same list.
    let cli: Value = serde_json::from_str(&ok(&sb.cli(&["allow", "list", "--json"]))).unwrap();
    let cli_emails = cli.get("emails").unwrap_or(&cli);
    assert_eq!(cli_emails, &listed["emails"], "CLI: {cli}");

    // me: the owner.
    assert_eq!(
        web.get("/api/v1/allowlist/me").expect(200),
        json!({"email": OWNER, "allowlisted": false})
    );
    web.post(&format!("/api/v1/allowlist/add/{OWNER}"), None)
        .expect(201);
    assert_eq!(
        web.get("/api/v1/allowlist/me").expect(200)["allowlisted"],
        true
    );

    // Removed: the file goes; a second removal is a 404 that changes nothing.
    let r = web.delete("/api/v1/allowlist/remove/re_searcher@uni.example");
    assert_eq!(
        r.expect(200),
        json!({"email": "re_searcher@uni.example", "removed": true})
    );
    assert!(!file.exists());
    assert_eq!(
        web.get("/api/v1/allowlist/check/re_searcher@uni.example")
            .expect(200)["allowlisted"],
        false
    );
    unchanged(&sb, "removing an absent email", || {
        web.delete("/api/v1/allowlist/remove/re_searcher@uni.example")
            .expect(404)
    });

    // Replace the whole list: exactly these files remain (the bad hand-made file is left).
    let r = web
        .post(
            "/api/v1/allowlist",
            Some(&json!({"emails": ["a@x.org", "B@Y.org", BOB]})),
        )
        .expect(200);
    let emails: BTreeSet<String> = r["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        emails,
        ["a@x.org", "b@y.org", BOB]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_eq!(r["added"], 3, "{r}");
    assert!(r["removed"].as_u64().unwrap() >= 1, "{r}");
    let files: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "syft.pub.yaml" && n != "not-an-email")
        .collect();
    assert_eq!(
        files,
        ["a_at_x_dot_org", "b_at_y_dot_org", "bob_at_x_dot_org"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    for f in &files {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    // Replacing with the same list changes nothing.
    let r = web
        .post(
            "/api/v1/allowlist",
            Some(&json!({"emails": ["a@x.org", "b@y.org", BOB]})),
        )
        .expect(200);
    assert_eq!(
        (r["added"].clone(), r["removed"].clone()),
        (json!(0), json!(0))
    );
}

// ------------------------------------------------------------------------------ trusted code

/// Whether the history lists the code of `sig`, marked trusted or not as `trusted` says.
fn in_history(web: &Web, sig: &str, trusted: bool) -> bool {
    let h = web.get("/api/v1/trusted-code/history").expect(200);
    h["history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["signature"] == sig && r["trusted"] == trusted)
}

#[test]
fn mark_and_unmark_trusted_code() {
    let sb = Sandbox::new();
    let web = serve(&sb, &[]);
    let (done, sig) = completed_in_history(&sb, &web, "Row count");
    // A job with the same code, name, description and tags from an unknown sender, once waiting.
    let waiting_copy = || {
        let uid = sb.submit_with(
            EVE,
            OWNER,
            "Row count",
            "Counts rows",
            &["stats"],
            &simple_code(),
            "pending",
        );
        assert!(wait_for(WAIT, || !sb
            .decisions_for(&uid, "waiting")
            .is_empty()));
        uid
    };
    // The same code, name, description and tags from an unknown sender waits...
    let pending = waiting_copy();
    assert_eq!(cli_signature(&sb, &sb.job_dir("pending", &pending)), sig);

    let h = web.get("/api/v1/trusted-code/history").expect(200);
    let rec = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["signature"] == sig.as_str())
        .unwrap_or_else(|| panic!("{sig} not in {h}"))
        .clone();
    assert_eq!(rec["trusted"], false);
    assert_eq!(rec["name"], "Row count");
    assert_eq!(rec["description"], "Counts rows");
    assert_eq!(rec["tags"], json!(["stats"]));
    assert!(
        rec["uids"].as_array().unwrap().contains(&json!(done)),
        "{rec}"
    );
    assert!(
        rec["requesters"]
            .as_array()
            .unwrap()
            .contains(&json!("carol@lab.example")),
        "{rec}"
    );
    for k in ["first_seen", "last_seen"] {
        assert!(rec[k].as_str().is_some_and(|s| s.len() >= 19), "{k}: {rec}");
    }
    let files = rec["code_files"].as_array().unwrap();
    let run = files.iter().find(|f| f["path"] == "run.sh").unwrap();
    assert_eq!(run["text"], "#!/bin/sh\npython3 main.py\n");
    assert_eq!(run["size"], 26);
    assert_eq!(
        web.get("/api/v1/trusted-code").expect(200),
        json!({"trusted": []})
    );

    // ...until its signature is marked: trusted_code/<sig>.json, and the job is approved.
    let r = web.post(
        &format!("/api/v1/trusted-code/mark/{}", sig.to_uppercase()),
        None,
    );
    assert_eq!(
        r.expect(200),
        json!({"signature": sig, "trusted": true, "added": true})
    );
    let stored: Value =
        serde_json::from_str(&fs::read_to_string(trusted_file(&sb, &sig)).unwrap()).unwrap();
    assert_eq!(stored["signature"], sig.as_str());
    wait_status(&sb, &web, &pending, "approved");
    assert!(wait_for(WAIT, || !sb
        .decisions_for(&pending, "approved")
        .is_empty()));
    settle(&sb);
    let approved = sb.decisions_for(&pending, "approved");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["signature"], sig.as_str());

    let t = web.get("/api/v1/trusted-code").expect(200);
    let list = t["trusted"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{t}");
    assert_eq!(list[0]["signature"], sig.as_str());
    assert!(
        list[0]["marked_at"].as_str().is_some_and(|s| s.len() >= 19),
        "{t}"
    );
    assert_eq!(list[0]["name"], "Row count");
    assert!(in_history(&web, &sig, true));
    let r = web.post(&format!("/api/v1/trusted-code/mark/{sig}"), None);
    assert_eq!(
        r.expect(200),
        json!({"signature": sig, "trusted": true, "added": false})
    );
    assert_eq!(web.get("/api/status").json()["trusted_code"], 1);

    // Unmarked: the file goes, and the same code waits again.
    let r = web.delete(&format!("/api/v1/trusted-code/unmark/{sig}"));
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": false}));
    assert!(!trusted_file(&sb, &sig).exists());
    assert!(
        history_file(&sb, &sig).is_file(),
        "unmarking keeps the history"
    );
    let again = waiting_copy();
    assert_eq!(sb.status_of(&again).as_deref(), Some("pending"));
    unchanged(&sb, "unmarking twice", || {
        web.delete(&format!("/api/v1/trusted-code/unmark/{sig}"))
            .expect(404)
    });
}

#[test]
fn check_signature_by_uid_and_inline_matches_the_cli() {
    let sb = Sandbox::new();
    let files: Vec<(&str, &[u8])> = vec![
        ("run.sh", b"#!/bin/sh\npython3 main.py\n"),
        ("main.py", b"print('rows:', 42)\n"),
        ("lib/util.py", b"X = 1\n"),
    ];
    let uid = sb.submit_with(
        EVE,
        OWNER,
        "Tagged",
        "Two tags",
        &["b", "a"],
        &files,
        "pending",
    );
    let web = serve(&sb, &[]);
    let sig = cli_signature(&sb, &sb.job_dir("pending", &uid));

    let r = web.post(
        "/api/v1/trusted-code/check-signature",
        Some(&json!({"uid": uid})),
    );
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": false}));

    let inline = json!({
        "name": "Tagged", "description": "Two tags", "tags": ["b", "a"],
        "files": {
            "run.sh": "#!/bin/sh\npython3 main.py\n",
            "main.py": "print('rows:', 42)\n",
            "lib/util.py": "X = 1\n",
            // Permission files are never part of the signature.
            "syft.pub.yaml": "rules: []\n",
        }
    });
    let r = web.post("/api/v1/trusted-code/check-signature", Some(&inline));
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": false}));
    // One byte more in one file: another signature.
    let mut changed = inline.clone();
    changed["files"]["main.py"] = "print('rows:', 43)\n".into();
    let r = web
        .post("/api/v1/trusted-code/check-signature", Some(&changed))
        .expect(200);
    assert_ne!(r["signature"], sig.as_str());

    // Once trusted, both forms say so.
    ok(&sb.cli(&["trust", "add", "--job", &uid]));
    assert!(trusted_file(&sb, &sig).is_file());
    wait_status(&sb, &web, &uid, "approved");
    for body in [json!({"uid": uid}), inline] {
        let r = web.post("/api/v1/trusted-code/check-signature", Some(&body));
        assert_eq!(r.expect(200), json!({"signature": sig, "trusted": true}));
    }
    // A completed job (any status folder) by uid.
    let done = sb.submit_with(
        EVE,
        OWNER,
        "Tagged",
        "Two tags",
        &["b", "a"],
        &files,
        "completed",
    );
    let r = web.post(
        "/api/v1/trusted-code/check-signature",
        Some(&json!({"uid": done})),
    );
    assert_eq!(r.expect(200), json!({"signature": sig, "trusted": true}));
    settle(&sb);

    // Bad bodies change nothing.
    for (body, code) in [
        (json!({"uid": "00000000-0000-4000-8000-000000000000"}), 404),
        (json!({"uid": uid, "name": "x"}), 400),
        (json!({}), 400),
        (json!({"name": "x", "files": {"../run.sh": "x"}}), 400),
        (json!({"name": "x", "files": {"/etc/passwd": "x"}}), 400),
        (json!({"name": "x", "unknown_field": 1}), 400),
    ] {
        unchanged(&sb, &format!("check-signature {body}"), || {
            web.post("/api/v1/trusted-code/check-signature", Some(&body))
                .expect(code)
        });
    }
}

#[test]
fn add_to_history_records_a_job_that_can_then_be_marked() {
    let sb = Sandbox::new();
    let uid = sb.submit(EVE, &simple_code());
    let web = serve(&sb, &[]);
    // The daemon logs the job as waiting after its settle window: not part of what is checked.
    settle(&sb);
    let sig = cli_signature(&sb, &sb.job_dir("pending", &uid));
    assert!(!history_file(&sb, &sig).exists());
    // Not in the history yet: it cannot be marked.
    unchanged(&sb, "marking code not in the history", || {
        web.post(&format!("/api/v1/trusted-code/mark/{sig}"), None)
            .expect(404)
    });

    let r = web
        .post(
            "/api/v1/trusted-code/add-to-history",
            Some(&json!({"uid": uid})),
        )
        .expect(200);
    let rec = &r["record"];
    assert_eq!(rec["signature"], sig.as_str());
    assert_eq!(rec["name"], "Analysis");
    assert!(rec["uids"].as_array().unwrap().contains(&json!(uid)), "{r}");
    assert!(
        rec["requesters"].as_array().unwrap().contains(&json!(EVE)),
        "{r}"
    );
    let paths: BTreeSet<&str> = rec["code_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["main.py", "run.sh"].into_iter().collect());
    let on_disk: Value =
        serde_json::from_str(&fs::read_to_string(history_file(&sb, &sig)).unwrap()).unwrap();
    assert_eq!(on_disk["signature"], sig.as_str());
    assert!(in_history(&web, &sig, false));

    // Now it can be marked, and the job is approved.
    web.post(&format!("/api/v1/trusted-code/mark/{sig}"), None)
        .expect(200);
    wait_status(&sb, &web, &uid, "approved");
    settle(&sb);

    unchanged(&sb, "add-to-history of an unknown job", || {
        web.post(
            "/api/v1/trusted-code/add-to-history",
            Some(&json!({"uid": "no-such-job"})),
        )
        .expect(404)
    });
    unchanged(&sb, "add-to-history without a uid", || {
        web.post("/api/v1/trusted-code/add-to-history", Some(&json!({})))
            .expect(400)
    });
}
