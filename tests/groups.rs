//! Reviewer groups (`approval.reviewer_groups`, `approval.required_approvals`) and the master
//! switch `approval.enabled`, against the real binary: reviewer accounts in the same temporary
//! SyftBox tree write their verdicts into the owner's `verdicts/<email>/` folder (with
//! `review --owner` or by hand, as a synced file would arrive), and the owner's daemon applies,
//! counts or refuses each one, answers it, audits it and keeps reviewers' read access in step.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::gate::{WAIT, audit_where, ok, signature_of, wait_status, wait_waiting};
use crate::util::*;

const ALICE: &str = "alice@lab.org";
const BOB: &str = "bob@lab.org";
const CAROL: &str = "carol@lab.org";
const EVE: &str = "eve@evil.example";
const SENDER: &str = "ds@uni.edu";

/// Writes `config.yaml` whole (a rename, as an editor saving it would).
fn set_config(sb: &Sandbox, yaml: &str) {
    fs::create_dir_all(sb.app_data()).unwrap();
    let tmp = sb.app_data().join(".config.yaml.new");
    fs::write(&tmp, yaml).unwrap();
    fs::rename(&tmp, sb.app_data().join("config.yaml")).unwrap();
}

fn groups(members: &[&str], required: u32) -> String {
    format!(
        "approval:\n  reviewer_groups:\n    stats: [{}]\n  required_approvals: {required}\n",
        members.join(", ")
    )
}

fn verdicts(sb: &Sandbox) -> PathBuf {
    sb.app_data().join("verdicts")
}

/// Writes a verdict file as SyftBox would deliver it (whole, by a rename).
fn put_verdict(sb: &Sandbox, rel: &str, body: &Value) {
    let path = verdicts(sb).join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("part");
    fs::write(&tmp, body.to_string()).unwrap();
    fs::rename(&tmp, &path).unwrap();
}

fn answer_at(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn answer_path(sb: &Sandbox, reviewer: &str, uid: &str) -> PathBuf {
    verdicts(sb)
        .join(reviewer)
        .join("answers")
        .join(format!("{uid}.json"))
}

/// Waits for the answer at `path` to have `status`, and returns it.
#[track_caller]
fn wait_answer(d: &Daemon, path: &Path, status: &str) -> Value {
    let mut last = None;
    let seen = wait_for(WAIT, || {
        last = answer_at(path);
        last.as_ref().is_some_and(|a| a["status"] == status)
    });
    assert!(
        seen,
        "{} never said {status} (it says {last:?}); log:\n{}",
        path.display(),
        d.log_text()
    );
    last.unwrap()
}

/// Waits for a refusal at `path` whose reason contains `why`, and returns it.
#[track_caller]
fn wait_refused(d: &Daemon, path: &Path, why: &str) -> Value {
    let mut last = None;
    let seen = wait_for(WAIT, || {
        last = answer_at(path);
        last.as_ref().is_some_and(|a| {
            a["status"] == "refused" && a["reason"].as_str().unwrap_or("").contains(why)
        })
    });
    assert!(
        seen,
        "{} never refused with {why:?} (it says {last:?}); log:\n{}",
        path.display(),
        d.log_text()
    );
    last.unwrap()
}

/// Runs the binary as reviewer `who` (their own client config, the same SyftBox folder).
fn as_reviewer(sb: &Sandbox, who: &str, args: &[&str]) -> Output {
    let config = sb.dir.path().join(format!("config-{who}.json"));
    fs::write(
        &config,
        json!({"data_dir": sb.data_dir, "email": who, "server_url": "https://syftbox.example"})
            .to_string(),
    )
    .unwrap();
    let mut c = std::process::Command::new(BIN);
    c.arg("--config").arg(&config);
    c.env_remove("SYFTBOX_CLIENT_CONFIG_PATH");
    c.env("HOME", sb.dir.path());
    c.args(args).output().unwrap()
}

/// Every reader of every rule in the job's own permission files.
fn readers(job: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for rel in ["syft.pub.yaml", "code/syft.pub.yaml"] {
        let text = fs::read_to_string(job.join(rel)).unwrap();
        let v: Value = serde_saphyr::from_str(&text).unwrap();
        for r in v["rules"].as_array().cloned().unwrap_or_default() {
            for u in r["access"]["read"].as_array().cloned().unwrap_or_default() {
                out.push(u.as_str().unwrap_or("").to_string());
            }
        }
    }
    out
}

#[track_caller]
fn wait_readers(d: &Daemon, job: &Path, who: &str, present: bool) {
    assert!(
        wait_for(WAIT, || readers(job).iter().any(|r| r == who) == present),
        "{who} {} a reader of {}: {:?}; log:\n{}",
        if present { "never became" } else { "is still" },
        job.display(),
        readers(job),
        d.log_text()
    );
}

/// A job from a sender nobody trusts, recorded as waiting; returns its uid and signature.
fn waiting_job(sb: &Sandbox, d: &Daemon) -> (String, String) {
    let uid = sb.submit(SENDER, &simple_code());
    wait_waiting(sb, d, &uid);
    let sig = signature_of(sb, &sb.job_dir("pending", &uid));
    (uid, sig)
}

fn vote(verdict: &str, sig: &str) -> Value {
    json!({"verdict": verdict, "signature": sig, "rationale": "looked at it"})
}

#[test]
fn one_members_approval_decides_with_the_reviewer_as_actor_and_read_access_follows() {
    let sb = Sandbox::new();
    set_config(&sb, &groups(&[ALICE, BOB], 1));
    let d = sb.start(&[]);
    let (uid, sig) = waiting_job(&sb, &d);
    let job = sb.job_dir("pending", &uid);
    wait_readers(&d, &job, ALICE, true);
    wait_readers(&d, &job, BOB, true);
    assert!(
        readers(&job).iter().any(|r| r == SENDER),
        "the sender's own read grants are kept"
    );

    // Alice, on her machine: the job is listed and explained, then approved.
    let listed = ok(&as_reviewer(
        &sb,
        ALICE,
        &["review", "--owner", OWNER, "list"],
    ));
    assert!(listed.contains(&uid), "{listed}");
    let explained = ok(&as_reviewer(
        &sb,
        ALICE,
        &["review", "--owner", OWNER, "explain", &uid],
    ));
    assert!(explained.contains(&sig), "{explained}");
    let wrote = ok(&as_reviewer(
        &sb,
        ALICE,
        &["review", "--owner", OWNER, "decide", &uid, "approve"],
    ));
    assert!(wrote.contains("not attested"), "{wrote}");

    wait_status(&sb, &d, &uid, "approved");
    let a = wait_answer(&d, &answer_path(&sb, ALICE, &uid), "applied");
    assert!(a["reason"].as_str().unwrap().contains("approved"), "{a}");
    let votes = audit_where(&sb, |e| {
        e["event"] == "review.vote" && e["uid"] == uid.as_str()
    });
    assert_eq!(votes.len(), 1, "{votes:?}");
    assert_eq!(votes[0]["actor"], format!("reviewer:{ALICE}"));
    let decided = audit_where(&sb, |e| {
        e["event"] == "decision" && e["uid"] == uid.as_str() && e["outcome"] == "approved"
    });
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["actor"], format!("reviewer:{ALICE}"));
    let logged = sb.decisions_for(&uid, "approved");
    assert!(
        logged[0]["reasons"].to_string().contains(ALICE),
        "the decision names the reviewer: {logged:?}"
    );
    // Decided: the reviewers' read access is withdrawn, the sender's stays.
    let approved = sb.job_dir("approved", &uid);
    wait_readers(&d, &approved, ALICE, false);
    wait_readers(&d, &approved, BOB, false);
    assert!(readers(&approved).iter().any(|r| r == SENDER));
    assert!(
        !d.log_text().contains("unexplained"),
        "a reviewers' approval is an audited decision: {}",
        d.log_text()
    );
    // The listing now says so on Alice's side too.
    let listed = ok(&as_reviewer(
        &sb,
        ALICE,
        &["review", "--owner", OWNER, "list"],
    ));
    assert!(!listed.contains(&uid), "{listed}");
}

#[test]
fn two_of_three_approvals_are_needed_and_an_attested_vote_says_so() {
    let sb = Sandbox::new();
    set_config(&sb, &groups(&[ALICE, BOB, CAROL], 2));
    let d = sb.start(&[]);
    let (uid, sig) = waiting_job(&sb, &d);
    ok(&as_reviewer(&sb, BOB, &["keys", "init"]));

    ok(&as_reviewer(
        &sb,
        ALICE,
        &[
            "review",
            "--owner",
            OWNER,
            "decide",
            &uid,
            "approve",
            "--signature",
            &sig,
        ],
    ));
    let a = wait_answer(&d, &answer_path(&sb, ALICE, &uid), "counted");
    assert!(
        a["reason"].as_str().unwrap().contains("1 more needed"),
        "{a}"
    );
    assert_eq!(sb.status_of(&uid).as_deref(), Some("pending"));
    // The same reviewer approving again does not count twice.
    put_verdict(&sb, &format!("{ALICE}/{uid}.json"), &vote("approve", &sig));
    wait_answer(&d, &answer_path(&sb, ALICE, &uid), "counted");
    assert_eq!(sb.status_of(&uid).as_deref(), Some("pending"));

    let wrote = ok(&as_reviewer(
        &sb,
        BOB,
        &["review", "--owner", OWNER, "decide", &uid, "approve"],
    ));
    assert!(wrote.contains("attested with sha256:"), "{wrote}");
    wait_status(&sb, &d, &uid, "approved");
    wait_answer(&d, &answer_path(&sb, BOB, &uid), "applied");
    wait_answer(&d, &answer_path(&sb, ALICE, &uid), "applied");
    let bob = audit_where(&sb, |e| {
        e["event"] == "review.vote" && e["actor"] == format!("reviewer:{BOB}")
    });
    assert!(
        bob[0]["reasons"]
            .to_string()
            .contains("attested with identity key"),
        "{bob:?}"
    );
    let logged = sb.decisions_for(&uid, "approved");
    let reasons = logged[0]["reasons"].to_string();
    assert!(
        reasons.contains(ALICE) && reasons.contains(BOB),
        "{reasons}"
    );
}

#[test]
fn one_members_reject_wins_over_approvals() {
    let sb = Sandbox::new();
    set_config(&sb, &groups(&[ALICE, BOB, CAROL], 2));
    let d = sb.start(&[]);
    let (uid, sig) = waiting_job(&sb, &d);
    put_verdict(&sb, &format!("{ALICE}/{uid}.json"), &vote("approve", &sig));
    wait_answer(&d, &answer_path(&sb, ALICE, &uid), "counted");
    // A reject needs a rationale, on the reviewer's side as on the owner's.
    let refused = as_reviewer(
        &sb,
        BOB,
        &["review", "--owner", OWNER, "decide", &uid, "reject"],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("rationale"));
    ok(&as_reviewer(
        &sb,
        BOB,
        &[
            "review",
            "--owner",
            OWNER,
            "decide",
            &uid,
            "reject",
            "--rationale",
            "reads raw rows",
        ],
    ));
    wait_status(&sb, &d, &uid, "rejected");
    assert!(wait_for(WAIT, || {
        !sb.metadata("rejected", &uid)["error_message"].is_null()
    }));
    let m = sb.metadata("rejected", &uid);
    assert!(
        m["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("reads raw rows"),
        "{m}"
    );
    wait_answer(&d, &answer_path(&sb, BOB, &uid), "applied");
    let decided = audit_where(&sb, |e| {
        e["event"] == "decision" && e["uid"] == uid.as_str() && e["outcome"] == "rejected"
    });
    assert_eq!(decided[0]["actor"], format!("reviewer:{BOB}"));
}

#[test]
fn verdicts_that_cannot_count_are_refused_with_an_answer_and_change_nothing() {
    let sb = Sandbox::new();
    set_config(&sb, &groups(&[ALICE, BOB, CAROL], 3));
    let d = sb.start(&[]);
    let (uid, sig) = waiting_job(&sb, &d);
    let job = sb.job_dir("pending", &uid);
    wait_readers(&d, &job, CAROL, true);

    // From someone in no group.
    put_verdict(&sb, &format!("{EVE}/{uid}.json"), &vote("reject", &sig));
    wait_refused(&d, &answer_path(&sb, EVE, &uid), "not a member");
    // Written as Alice, in Bob's folder.
    let mut as_alice = vote("reject", &sig);
    as_alice["reviewer"] = json!(ALICE);
    put_verdict(&sb, &format!("{BOB}/{uid}.json"), &as_alice);
    wait_refused(&d, &answer_path(&sb, BOB, &uid), "folder");
    // For code other than the job's now.
    put_verdict(
        &sb,
        &format!("{ALICE}/{uid}.json"),
        &vote("reject", &"0".repeat(64)),
    );
    wait_refused(&d, &answer_path(&sb, ALICE, &uid), "signature");
    // Outside any reviewer's folder.
    put_verdict(&sb, "loose.json", &vote("reject", &sig));
    let a = wait_answer(
        &d,
        &verdicts(&sb).join("answers/loose.answer.json"),
        "refused",
    );
    assert!(
        a["reason"].as_str().unwrap().contains("reviewer's folder"),
        "{a}"
    );

    // Carol leaves the group: her read access goes, and her verdict is refused when applied.
    set_config(&sb, &groups(&[ALICE, BOB], 2));
    wait_readers(&d, &job, CAROL, false);
    assert!(readers(&job).iter().any(|r| r == ALICE));
    put_verdict(&sb, &format!("{CAROL}/{uid}.json"), &vote("reject", &sig));
    wait_refused(&d, &answer_path(&sb, CAROL, &uid), "not a member");

    assert_eq!(sb.status_of(&uid).as_deref(), Some("pending"));
    assert!(sb.decisions_for(&uid, "rejected").is_empty());
    assert!(d.log_text().contains("refused"), "{}", d.log_text());

    // A job the owner decided meanwhile.
    ok(&sb.cli(&["decide", &uid, "reject", "--rationale", "not now"]));
    wait_status(&sb, &d, &uid, "rejected");
    wait_readers(&d, &sb.job_dir("rejected", &uid), ALICE, false);
    put_verdict(&sb, &format!("{ALICE}/{uid}.json"), &vote("approve", &sig));
    wait_refused(&d, &answer_path(&sb, ALICE, &uid), "no longer pending");
    assert_eq!(sb.status_of(&uid).as_deref(), Some("rejected"));
    // The one from outside the groups left no trace in the chain; the member's refusals did.
    assert!(audit_where(&sb, |e| e["actor"] == format!("reviewer:{EVE}")).is_empty());
    assert!(
        !audit_where(&sb, |e| e["event"] == "review.vote"
            && e["outcome"].as_str().unwrap_or("").starts_with("refused"))
        .is_empty()
    );
}

#[test]
fn with_approval_disabled_what_no_trust_rule_approves_is_rejected_at_once() {
    let sb = Sandbox::new();
    set_config(&sb, "approval:\n  enabled: false\n");
    let d = sb.start(&[]);
    ok(&sb.cli(&["allow", "add", "friend@uni.edu"]));
    let trusted = sb.submit("friend@uni.edu", &simple_code());
    let other = sb.submit(SENDER, &simple_code());
    wait_status(&sb, &d, &trusted, "approved");
    wait_status(&sb, &d, &other, "rejected");
    assert!(wait_for(WAIT, || {
        !sb.metadata("rejected", &other)["error_message"].is_null()
    }));
    let m = sb.metadata("rejected", &other);
    let msg = m["error_message"].as_str().unwrap_or("");
    assert!(msg.contains("accepts only trusted senders and code"), "{m}");
    assert!(msg.contains("ask the owner"), "{m}");
    assert!(wait_for(WAIT, || sb
        .decisions_for(&other, "rejected")
        .len()
        == 1));
    assert!(sb.decisions_for(&other, "waiting").is_empty());
}

#[test]
fn an_invalid_approval_section_is_refused_with_its_reason_and_the_previous_stays() {
    let sb = Sandbox::new();
    set_config(&sb, &groups(&[ALICE], 1));
    let d = sb.start(&[]);
    set_config(
        &sb,
        "approval:\n  reviewer_groups:\n    stats: ['*.lab.org']\n",
    );
    assert!(
        wait_for(WAIT, || d.log_text().contains("not valid")),
        "{}",
        d.log_text()
    );
    let (uid, _) = waiting_job(&sb, &d);
    wait_readers(&d, &sb.job_dir("pending", &uid), ALICE, true);
}

#[test]
fn the_owner_sees_the_votes_and_who_is_still_needed_in_the_browser() {
    let sb = Sandbox::new();
    set_config(&sb, &groups(&[ALICE, BOB], 2));
    let web = crate::http::serve(&sb, &[]);
    let d = &web.daemon;
    let (uid, sig) = waiting_job(&sb, d);
    let b = crate::browser::Browser::start();
    b.goto(&format!("{}/", web.base()));
    let card = format!("#panel-pending article.job[data-uid=\"{uid}\"]");
    b.wait_find(&card);
    put_verdict(&sb, &format!("{ALICE}/{uid}.json"), &vote("approve", &sig));
    wait_answer(d, &answer_path(&sb, ALICE, &uid), "counted");
    let alice = b.wait_find(&format!("{card} .votes li[data-reviewer=\"{ALICE}\"]"));
    assert!(b.text(&alice).contains("approves"), "{}", b.text(&alice));
    let votes = b.wait_find(&format!("{card} .votes"));
    let text = b.text(&votes);
    assert!(text.contains("1 more approval needed"), "{text}");
    assert!(text.contains(&format!("not voted yet: {BOB}")), "{text}");
    b.screenshot_showing("pending-votes", &format!("{card} .votes"));

    put_verdict(&sb, &format!("{BOB}/{uid}.json"), &vote("approve", &sig));
    wait_status(&sb, d, &uid, "approved");
    b.open_tab("decisions");
    let row = b.wait_find(&format!(
        "#decisions-body tr[data-uid=\"{uid}\"][data-outcome=\"approved\"]"
    ));
    let text = b.text(&row);
    assert!(
        text.contains(ALICE) && text.contains(BOB),
        "the Decisions tab names the reviewers: {text}"
    );
}
