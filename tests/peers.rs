//! The peer flow end to end with the real binary: request files, approval by exact domain,
//! answers, dataset sharing with other rules kept, `peers_only` rules, revocation, restarts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(10);
const BOB: &str = "bob@example.org";
const CAROL: &str = "carol@example.org";
const LOOKALIKES: [&str; 3] = [
    "eve@evil-example.org",
    "mallory@example.org.evil.com",
    "sub@sub.example.org",
];
const DATASET: &str = "public/census";

const CONFIG: &str = "jobs:
  enabled: true
  rules:
    - name: census
      peers_only: true
      required_filenames: [run.sh, main.py]
peers:
  enabled: true
  approved_domains: [Example.org]
  auto_share_datasets: [public/census]
";

/// The dataset's permission file before any sharing: another rule, with a field the app does not
/// know, that must survive.
const DATASET_PERM: &str = "rules:
- pattern: README.md
  access:
    read:
    - '*'
  note: kept
";

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn peers_dir(sb: &Sandbox) -> PathBuf {
    sb.app_data().join("peers")
}

fn encoded(mail: &str) -> String {
    syft_reviewer::core::email::encode(mail).unwrap()
}

fn approved_file(sb: &Sandbox, mail: &str) -> PathBuf {
    peers_dir(sb).join("approved").join(encoded(mail))
}

fn answer(sb: &Sandbox, mail: &str) -> Option<Value> {
    let p = peers_dir(sb)
        .join("answers")
        .join(format!("{}.json", encoded(mail)));
    serde_json::from_slice(&fs::read(p).ok()?).ok()
}

fn answer_status(sb: &Sandbox, mail: &str) -> Option<String> {
    answer(sb, mail).and_then(|v| v["status"].as_str().map(str::to_owned))
}

/// Writes a request as the requester's SyftBox client would (the folder may not exist yet).
fn request(sb: &Sandbox, file: &str, content: &str) {
    let dir = peers_dir(sb).join("requests");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(file), content).unwrap();
}

/// A permission file as JSON, read independently of the app's own types.
fn yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}\n{text}", path.display()))
}

fn dataset_perm(sb: &Sandbox) -> Value {
    yaml(&sb.datasite().join(DATASET).join("syft.pub.yaml"))
}

fn readers(doc: &Value, pattern: &str) -> Vec<String> {
    doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pattern"] == pattern)
        .flat_map(|r| r["access"]["read"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn other_rule_kept(doc: &Value) {
    let rules = doc["rules"].as_array().unwrap();
    let readme: Vec<&Value> = rules
        .iter()
        .filter(|r| r["pattern"] == "README.md")
        .collect();
    assert_eq!(readme.len(), 1, "{doc}");
    assert_eq!(
        readme[0]["access"]["read"],
        serde_json::json!(["*"]),
        "{doc}"
    );
    assert_eq!(readme[0]["note"], "kept", "{doc}");
}

/// Audit entries (`audit show`) with this event about this email.
fn audited(sb: &Sandbox, event: &str, mail: &str) -> Vec<Value> {
    ok(&sb.cli(&["audit", "show"]))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == event && e["email"] == mail)
        .collect()
}

fn wait(d: &Daemon, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        wait_for(WAIT, cond),
        "timed out waiting for {what}; daemon log:\n{}",
        d.log_text()
    );
}

/// A job from `from` signed with the key of the SyftBox config `cfg`, renamed into pending/ whole.
fn signed_submit(sb: &Sandbox, cfg: &Path, from: &str) -> String {
    let (uid, build) = crate::proof::build_job_with(sb, from, &simple_code());
    let out = crate::proof::as_requester(cfg, &["attest", build.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "attest: {}",
        crate::venv::describe(&out)
    );
    crate::proof::enqueue(sb, &uid, &build);
    uid
}

/// Bob's own SyftBox config on the same tree, with an identity key published.
fn bob_with_key(sb: &Sandbox) -> PathBuf {
    let cfg = crate::proof::config_of(sb, BOB);
    let out = crate::proof::as_requester(&cfg, &["keys", "init"]);
    assert!(
        out.status.success(),
        "keys init: {}",
        crate::venv::describe(&out)
    );
    cfg
}

fn setup() -> Sandbox {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.app_data()).unwrap();
    fs::write(sb.app_data().join("config.yaml"), CONFIG).unwrap();
    let ds = sb.datasite().join(DATASET);
    fs::create_dir_all(&ds).unwrap();
    fs::write(ds.join("syft.pub.yaml"), DATASET_PERM).unwrap();
    fs::write(ds.join("data.csv"), "a,b\n1,2\n").unwrap();
    sb
}

#[test]
fn peer_requests_domains_sharing_rules_revocation_and_restart() {
    let sb = setup();
    // Bob publishes an identity key before asking: his approval pins it.
    let bob_cfg = bob_with_key(&sb);
    let mut d = sb.start(&[]);

    // The requests folder lets each user write only the file named with their own email.
    let perm = yaml(&peers_dir(&sb).join("requests/syft.pub.yaml"));
    let rules = perm["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{perm}");
    assert_eq!(rules[0]["pattern"], "{{.UserEmail}}.json");
    assert_eq!(rules[0]["access"]["write"], serde_json::json!(["USER"]));
    assert_eq!(rules[0]["access"]["read"], serde_json::json!(["USER"]));
    assert!(
        rules[0]["access"]["admin"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );

    // Requests: one from the approved domain, one in the encoded form, lookalikes, bad JSON.
    request(
        &sb,
        &format!("{BOB}.json"),
        r#"{"message": "census study"}"#,
    );
    request(&sb, &format!("{}.json", encoded(CAROL)), "");
    for (i, mail) in LOOKALIKES.iter().enumerate() {
        let content = if i == 0 { "{not json" } else { "{}" };
        request(&sb, &format!("{mail}.json"), content);
    }

    wait(&d, "bob and carol to be approved", || {
        approved_file(&sb, BOB).is_file() && approved_file(&sb, CAROL).is_file()
    });
    wait(&d, "the answers", || {
        answer_status(&sb, BOB).as_deref() == Some("approved")
            && LOOKALIKES
                .iter()
                .all(|m| answer_status(&sb, m).as_deref() == Some("pending"))
    });
    let a = answer(&sb, BOB).unwrap();
    assert_eq!(a["email"], BOB);
    assert!(a["at"].is_string());
    wait(&d, "the dataset to be shared", || {
        let r = readers(&dataset_perm(&sb), "**");
        r.contains(&BOB.to_string()) && r.contains(&CAROL.to_string())
    });
    let doc = dataset_perm(&sb);
    other_rule_kept(&doc);
    for m in LOOKALIKES {
        assert!(!approved_file(&sb, m).exists(), "{m} was approved");
        assert!(
            !readers(&doc, "**").contains(&m.to_string()),
            "{m} got access: {doc}"
        );
    }
    // Each answer is readable by its requester alone.
    let answers = yaml(&peers_dir(&sb).join("answers/syft.pub.yaml"));
    for rule in answers["rules"].as_array().unwrap() {
        let file = rule["pattern"].as_str().unwrap();
        let mail = syft_reviewer::core::email::decode(file.strip_suffix(".json").unwrap()).unwrap();
        assert_eq!(
            rule["access"]["read"],
            serde_json::json!([mail]),
            "{answers}"
        );
        assert!(
            rule["access"]["write"]
                .as_array()
                .is_none_or(|w| w.is_empty())
        );
    }
    wait(&d, "the bad request content to be logged", || {
        d.log_text().contains("not valid JSON")
    });

    // peers_only: a job the approved peer proved is approved; one from a non-peer is not, nor an
    // unsigned one claiming the peer (require_proof, on by default).
    let from_peer = signed_submit(&sb, &bob_cfg, BOB);
    let from_other = sb.submit(LOOKALIKES[0], &simple_code());
    let claiming_peer = sb.submit(BOB, &simple_code());
    wait(&d, "the peer's job to be approved", || {
        !sb.decisions_for(&from_peer, "approved").is_empty()
    });
    let approval = &sb.decisions_for(&from_peer, "approved")[0];
    assert!(
        approval
            .to_string()
            .contains("proved the job with their identity key sha256:"),
        "{approval}"
    );
    wait(&d, "the non-peer's job to be evaluated", || {
        !sb.decisions_for(&from_other, "waiting").is_empty()
    });
    assert_eq!(sb.status_of(&from_other).as_deref(), Some("pending"));
    wait(
        &d,
        "the unsigned job claiming the peer to be evaluated",
        || !sb.decisions_for(&claiming_peer, "waiting").is_empty(),
    );
    assert_eq!(sb.status_of(&claiming_peer).as_deref(), Some("pending"));
    let why = sb.decisions_for(&claiming_peer, "waiting")[0].to_string();
    assert!(
        why.contains("the job is unsigned and this peer must prove"),
        "{why}"
    );
    let listed = ok(&sb.cli(&["peers", "list"]));
    assert!(
        listed.contains("proof required: proven sha256:"),
        "the listing shows the peer's pinned key: {listed}"
    );
    let pinned = fs::read_to_string(approved_file(&sb, BOB)).unwrap();
    assert!(pinned.contains("\"key\":\"sha256:"), "{pinned}");

    // Listing.
    let list: Value = serde_json::from_str(&ok(&sb.cli(&["peers", "list", "--json"]))).unwrap();
    let emails = |key: &str| -> Vec<String> {
        list[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["email"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(emails("approved"), vec![BOB, CAROL]);
    let mut pending = emails("pending");
    pending.sort();
    let mut want: Vec<String> = LOOKALIKES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(pending, want);
    assert_eq!(list["approved"][0]["message"], "census study");
    assert_eq!(list["approved"][0]["shared"], serde_json::json!([DATASET]));
    assert_eq!(audited(&sb, "peer.approve", BOB).len(), 1);
    assert_eq!(audited(&sb, "peer.approve", BOB)[0]["actor"], "daemon");
    assert_eq!(audited(&sb, "peer.share", BOB).len(), 1);

    // A restart neither re-approves nor re-shares nor duplicates.
    let before = fs::read(sb.datasite().join(DATASET).join("syft.pub.yaml")).unwrap();
    terminate(&mut d);
    let mut d = sb.start(&[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        fs::read(sb.datasite().join(DATASET).join("syft.pub.yaml")).unwrap(),
        before,
        "the dataset's permission file changed on restart"
    );
    let r = readers(&dataset_perm(&sb), "**");
    assert_eq!(r.iter().filter(|m| *m == BOB).count(), 1, "{r:?}");
    assert_eq!(audited(&sb, "peer.approve", BOB).len(), 1);
    assert_eq!(audited(&sb, "peer.share", BOB).len(), 1);

    // The requests folder's permission file is put back if it is changed.
    fs::write(
        peers_dir(&sb).join("requests/syft.pub.yaml"),
        "rules:\n- pattern: '**'\n  access:\n    write: ['*']\n",
    )
    .unwrap();
    wait(&d, "the requests permission file to be restored", || {
        yaml(&peers_dir(&sb).join("requests/syft.pub.yaml"))["rules"][0]["pattern"]
            == "{{.UserEmail}}.json"
    });

    // Revocation from the CLI: approval, answer and the grant go; the other rule stays.
    let out = ok(&sb.cli(&["peers", "revoke", "Bob@Example.org"]));
    assert!(out.contains("revoked peer bob@example.org"), "{out}");
    assert!(out.contains(DATASET), "{out}");
    assert!(!approved_file(&sb, BOB).exists());
    assert_eq!(answer_status(&sb, BOB).as_deref(), Some("revoked"));
    let doc = dataset_perm(&sb);
    other_rule_kept(&doc);
    assert!(!readers(&doc, "**").contains(&BOB.to_string()), "{doc}");
    assert!(readers(&doc, "**").contains(&CAROL.to_string()), "{doc}");
    assert_eq!(audited(&sb, "peer.revoke", BOB)[0]["actor"], "cli");
    assert_eq!(audited(&sb, "peer.unshare", BOB).len(), 1);

    // The request is still there and its domain still approved: it is not approved again, and
    // the former peer's jobs are no longer approved by the peers_only rule.
    let after_revoke = signed_submit(&sb, &bob_cfg, BOB);
    wait(&d, "the former peer's job to be evaluated", || {
        !sb.decisions_for(&after_revoke, "waiting").is_empty()
    });
    assert_eq!(sb.status_of(&after_revoke).as_deref(), Some("pending"));
    assert!(!approved_file(&sb, BOB).exists());
    assert_eq!(audited(&sb, "peer.approve", BOB).len(), 1);
    assert!(!readers(&dataset_perm(&sb), "**").contains(&BOB.to_string()));
    let again = sb.cli(&["peers", "revoke", BOB]);
    assert!(!again.status.success(), "a second revoke must fail");

    // Approving by hand works for any domain, and shares the dataset.
    let out = ok(&sb.cli(&["peers", "approve", LOOKALIKES[0]]));
    assert!(out.contains("approved peer"), "{out}");
    assert!(readers(&dataset_perm(&sb), "**").contains(&LOOKALIKES[0].to_string()));
    wait(&d, "the hand-approved peer's answer", || {
        answer_status(&sb, LOOKALIKES[0]).as_deref() == Some("approved")
    });
    other_rule_kept(&dataset_perm(&sb));
    terminate(&mut d);
}

#[test]
fn a_grant_removed_by_hand_is_re_added_and_hand_deleted_approval_revokes() {
    let sb = setup();
    request(&sb, &format!("{BOB}.json"), "");
    let mut d = sb.start(&["--rescan-secs", "1"]);
    wait(&d, "bob to be shared the dataset", || {
        readers(&dataset_perm(&sb), "**").contains(&BOB.to_string())
    });
    // The owner edits the dataset's permission file by hand and drops bob: re-added and logged.
    fs::write(
        sb.datasite().join(DATASET).join("syft.pub.yaml"),
        DATASET_PERM,
    )
    .unwrap();
    wait(&d, "the grant to be re-added and logged", || {
        d.log_text().contains("re-added")
    });
    assert!(readers(&dataset_perm(&sb), "**").contains(&BOB.to_string()));
    other_rule_kept(&dataset_perm(&sb));
    // Deleting the approval file revokes: the grant goes, the answer says so.
    fs::remove_file(approved_file(&sb, BOB)).unwrap();
    wait(&d, "the hand-deleted approval to be revoked", || {
        answer_status(&sb, BOB).as_deref() == Some("revoked")
            && !readers(&dataset_perm(&sb), "**").contains(&BOB.to_string())
    });
    assert_eq!(audited(&sb, "peer.revoke", BOB)[0]["actor"], "filesystem");
    terminate(&mut d);
}

#[test]
fn peers_api_lists_approves_and_revokes_with_csrf() {
    let sb = setup();
    request(&sb, &format!("{BOB}.json"), "");
    request(&sb, "eve@evil-example.org.json", r#"{"message":"please"}"#);
    let web = crate::http::serve(&sb, &[]);
    wait(&web.daemon, "bob to be approved", || {
        approved_file(&sb, BOB).is_file()
    });
    let list = web.get("/api/v1/peers").expect(200);
    assert_eq!(list["approved"][0]["email"], BOB, "{list}");
    assert_eq!(
        list["pending"][0]["email"], "eve@evil-example.org",
        "{list}"
    );
    assert_eq!(list["pending"][0]["message"], "please", "{list}");

    // Without the CSRF token nothing changes.
    let path = "/api/v1/peers/approve/eve@evil-example.org";
    web.request("POST", path, &[], b"").expect(403);
    assert!(!approved_file(&sb, "eve@evil-example.org").exists());
    let a = web.send("POST", path, None).expect(201);
    assert_eq!(a["approved"], true, "{a}");
    assert_eq!(a["shared"], serde_json::json!([DATASET]), "{a}");
    assert!(readers(&dataset_perm(&sb), "**").contains(&"eve@evil-example.org".to_string()));
    web.send("POST", path, None).expect(200);
    web.send("POST", "/api/v1/peers/approve/not-an-email", None)
        .expect(400);
    web.send("POST", &format!("/api/v1/peers/approve/{OWNER}"), None)
        .expect(400);

    let r = web
        .send("DELETE", &format!("/api/v1/peers/revoke/{BOB}"), None)
        .expect(200);
    assert_eq!(r["revoked"], true, "{r}");
    assert_eq!(r["unshared"], serde_json::json!([DATASET]), "{r}");
    assert!(!readers(&dataset_perm(&sb), "**").contains(&BOB.to_string()));
    other_rule_kept(&dataset_perm(&sb));
    web.send("DELETE", &format!("/api/v1/peers/revoke/{BOB}"), None)
        .expect(404);
    assert_eq!(audited(&sb, "peer.revoke", BOB)[0]["actor"], "web");
    let list = web.get("/api/v1/peers").expect(200);
    assert_eq!(list["revoked"][0]["email"], BOB, "{list}");
}
