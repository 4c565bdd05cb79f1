//! The web UI in a real headless Chromium, driven through chromedriver's W3C WebDriver API: a
//! person adds a sender, sees the pending job, reads its code and marks completed code trusted;
//! approves, rejects and requests changes with a rationale; approves and revokes a peer; and each
//! action has its effect on disk. Screenshots of every tab are saved in
//! `target/browser-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); the test fails,
//! never skips, without them.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{Web, free_port, serve};
use crate::util::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub(crate) const WAIT: Duration = Duration::from_secs(15);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one Chromium session; both end when dropped.
pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).is_file(),
                "{bin} is missing: install Debian's chromium and chromium-driver \
                 (`apt-get install -y chromium chromium-driver`; .ci/run does this)"
            );
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("chromedriver-{port}.log"));
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {CHROMEDRIVER}: {e}"));
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
            _profile: profile,
        };
        let ready = wait_for(WAIT, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && b.call("GET", "/status", None)
                    .is_ok_and(|v| v["ready"] == true)
        });
        assert!(
            ready,
            "chromedriver never became ready; log:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1280,1000",
                    format!("--user-data-dir={}", b._profile.path().display()),
                ],
            },
        }}});
        let v = b.call("POST", "/session", Some(&caps)).unwrap_or_else(|e| {
            panic!(
                "could not start Chromium: {e}; chromedriver log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            )
        });
        b.session = v["sessionId"].as_str().expect("a session id").to_string();
        b
    }

    /// One WebDriver command; `Err` carries the WebDriver error.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header("Content-Type", "application/json")
            .body(body.into_bytes())
            .unwrap();
        let mut r = self
            .agent
            .run(req)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status().as_u16();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{method} {path}: {e}: {text}"))?;
        if status >= 400 {
            return Err(format!("{method} {path}: {status} {}", v["value"]));
        }
        Ok(v["value"].clone())
    }

    /// A command in this session that must succeed.
    pub(crate) fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{}", self.session, path);
        self.call(method, &path, body.as_ref())
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    pub(crate) fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    /// The element matching `css`, if any.
    pub(crate) fn find(&self, css: &str) -> Option<String> {
        let path = format!("/session/{}/elements", self.session);
        let v = self
            .call(
                "POST",
                &path,
                Some(&json!({"using": "css selector", "value": css})),
            )
            .unwrap_or_else(|e| panic!("WebDriver: {e}"));
        v.as_array()?
            .first()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
    }

    /// Waits for an element matching `css`.
    #[track_caller]
    pub(crate) fn wait_find(&self, css: &str) -> String {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(
                Instant::now() < end,
                "no element {css:?} appeared; page text:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[track_caller]
    pub(crate) fn wait_gone(&self, css: &str) {
        let end = Instant::now() + WAIT;
        while self.find(css).is_some() {
            assert!(
                Instant::now() < end,
                "{css:?} is still shown; page text:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn click(&self, element: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    pub(crate) fn type_into(&self, element: &str, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Whether an element is shown (in the layout, not hidden).
    pub(crate) fn displayed(&self, css: &str) -> bool {
        self.script(
            "const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null;",
            json!([css]),
        ) == true
    }

    pub(crate) fn text(&self, element: &str) -> String {
        self.cmd("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub(crate) fn script(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    pub(crate) fn page_text(&self) -> String {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call("POST", &path, Some(&json!({"script": "return document.body ? document.body.innerText : ''", "args": []})))
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_else(|e| format!("(could not read the page: {e})"))
    }

    /// Waits for a `window.confirm` dialog, checks its text and accepts it.
    #[track_caller]
    pub(crate) fn accept_confirm(&self, expect: &str) {
        let path = format!("/session/{}/alert/text", self.session);
        let end = Instant::now() + WAIT;
        let text = loop {
            if let Ok(v) = self.call("GET", &path, None) {
                break v.as_str().unwrap_or("").to_string();
            }
            assert!(Instant::now() < end, "no confirmation dialog appeared");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            text.contains(expect),
            "the dialog says {text:?}, expected {expect:?}"
        );
        self.cmd("POST", "/alert/accept", Some(json!({})));
    }

    /// Opens a tab and waits until its panel is the one shown.
    pub(crate) fn open_tab(&self, name: &str) {
        let tab = self.wait_find(&format!("#tab-{name}"));
        self.click(&tab);
        let shown = wait_for(WAIT, || {
            self.script(
                "const p = document.getElementById(arguments[0]); return !!p && !p.hidden && p.offsetHeight > 0;",
                json!([format!("panel-{name}")]),
            ) == true
        });
        assert!(
            shown,
            "the {name} panel is not shown after clicking its tab"
        );
        assert_eq!(
            self.script(
                "return document.getElementById(arguments[0]).getAttribute('aria-selected')",
                json!([format!("tab-{name}")])
            ),
            "true"
        );
        for other in ["pending", "allowlist", "trusted", "peers", "decisions"] {
            if other != name {
                let hidden = self.script("const p = document.getElementById(arguments[0]); return p.hidden || p.offsetHeight === 0;", json!([format!("panel-{other}")]));
                assert_eq!(hidden, true, "panel {other} is shown together with {name}");
            }
        }
    }

    /// Saves a PNG screenshot under `target/browser-artifacts/`.
    pub(crate) fn screenshot(&self, name: &str) -> PathBuf {
        self.script("window.scrollTo(0, 0)", json!([]));
        self.save_screenshot(name)
    }

    /// Like `screenshot`, scrolled so that the element matching `css` is in view at the bottom.
    pub(crate) fn screenshot_showing(&self, name: &str, css: &str) -> PathBuf {
        self.script(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'end'}); window.scrollBy(0, 16);",
            json!([css]),
        );
        self.save_screenshot(name)
    }

    pub(crate) fn save_screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().expect("a base64 screenshot"));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the screenshot is not a PNG"
        );
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        fs::write(&path, &png).unwrap();
        path
    }

    /// Asserts that the error banner is hidden.
    #[track_caller]
    pub(crate) fn no_error_banner(&self) {
        let shown = self.script("return !document.getElementById('error').hidden", json!([]));
        assert_eq!(
            shown,
            false,
            "the error banner is shown: {}",
            self.text(&self.wait_find("#error"))
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decoding() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(base64_decode("aGk="), b"hi");
}

fn signature_of(sb: &Sandbox, dir: &Path) -> String {
    let out = sb.cli(&["signature", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(crate) fn wait_disk(web: &Web, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        wait_for(WAIT, cond),
        "{what}; daemon log:\n{}",
        web.daemon.log_text()
    );
}

#[test]
fn a_person_reviews_jobs_in_the_browser() {
    let sb = Sandbox::new();
    // Code seen completing before, and the same job now pending from an unknown sender.
    let done = sb.submit_with(
        "carol@lab.example",
        OWNER,
        "Row count",
        "Counts rows",
        &["stats"],
        &simple_code(),
        "completed",
    );
    let same = sb.submit_with(
        "eve@evil.example",
        OWNER,
        "Row count",
        "Counts rows",
        &["stats"],
        &simple_code(),
        "pending",
    );
    let other_code: Vec<(&str, &[u8])> = vec![("run.sh", b"#!/bin/sh\necho other\n")];
    let other = sb.submit_with(
        "mallory@elsewhere.example",
        OWNER,
        "Something else",
        "Other code",
        &[],
        &other_code,
        "pending",
    );
    let sig = signature_of(&sb, &sb.job_dir("completed", &done));
    assert_eq!(signature_of(&sb, &sb.job_dir("pending", &same)), sig);
    // A trusted sender who publishes an identity key, pinned when added.
    let keyed = sb.cli(&["--email", "pinned@lab.example", "keys", "init"]);
    assert!(keyed.status.success(), "{}", crate::venv::describe(&keyed));
    assert!(
        sb.cli(&["allow", "add", "pinned@lab.example"])
            .status
            .success()
    );
    let web = serve(&sb, &[]);
    wait_disk(&web, "the completed job never reached the history", || {
        sb.app_data()
            .join("job_history")
            .join(format!("{sig}.json"))
            .is_file()
    });

    let b = Browser::start();
    b.goto(&format!("{}/", web.base()));

    // Pending: both waiting jobs are shown, with their sender; the code can be read.
    let job = b.wait_find(&format!("#panel-pending article.job[data-uid=\"{same}\"]"));
    b.wait_find(&format!("#panel-pending article.job[data-uid=\"{other}\"]"));
    let text = b.text(&job);
    assert!(
        text.contains("Row count") && text.contains("eve@evil.example"),
        "{text}"
    );
    let toggle = b.wait_find(&format!(
        "article.job[data-uid=\"{same}\"] button.toggle-code"
    ));
    b.click(&toggle);
    assert!(
        wait_for(WAIT, || b.text(&job).contains("python3 main.py")),
        "the job's code is not shown: {}",
        b.text(&job)
    );
    // The status strip is filled in.
    assert!(
        wait_for(WAIT, || b.text(&b.wait_find("#st-pending")) == "2"),
        "status strip: {}",
        b.text(&b.wait_find("#status"))
    );
    b.no_error_banner();
    b.screenshot("pending");

    // Allowlist: add a sender; the file appears on disk (0600) and the row on the page.
    b.open_tab("allowlist");
    let input = b.wait_find("#allow-email");
    b.type_into(&input, "New.Person@Lab.example");
    b.click(&b.wait_find("#allow-add"));
    let file = sb.allowlist_dir().join("new_dot_person_at_lab_dot_example");
    wait_disk(
        &web,
        "adding a sender in the page wrote no allowlist file",
        || file.is_file(),
    );
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let added = b.wait_find("li[data-email=\"new.person@lab.example\"][data-proof=\"unverified\"]");
    assert!(
        b.text(&added).contains("proof optional"),
        "{}",
        b.text(&added)
    );
    // The pinned sender's row: proof required, the key pinned, its fingerprint shown.
    let pinned = b.wait_find("li[data-email=\"pinned@lab.example\"][data-proof=\"proven\"]");
    let row = b.text(&pinned);
    assert!(
        row.contains("proof required") && row.contains("key pinned") && row.contains("key "),
        "{row}"
    );
    // A malformed address is refused in the page and writes nothing.
    let before = snapshot(&sb.allowlist_dir());
    b.type_into(&input, "not an email");
    b.click(&b.wait_find("#allow-add"));
    assert!(
        wait_for(WAIT, || !b.text(&b.wait_find("#allow-msg")).is_empty()),
        "no message for a malformed address"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(snapshot(&sb.allowlist_dir()), before);
    b.script(
        "document.getElementById('allow-email').value = ''",
        json!([]),
    );
    b.no_error_banner();
    b.screenshot("allowlist");
    // Remove it again (after confirming).
    b.click(&b.wait_find("li[data-email=\"new.person@lab.example\"] button.remove"));
    b.accept_confirm("new.person@lab.example");
    wait_disk(&web, "removing a sender in the page left its file", || {
        !file.exists()
    });
    b.wait_gone("li[data-email=\"new.person@lab.example\"]");

    // Trusted code: mark the completed job's code; the file appears and the same pending job
    // is approved.
    b.open_tab("trusted");
    let mark = b.wait_find(&format!(
        "#history-list [data-signature=\"{sig}\"] button.mark"
    ));
    b.click(&mark);
    b.accept_confirm("Row count");
    let trusted = sb
        .app_data()
        .join("trusted_code")
        .join(format!("{sig}.json"));
    wait_disk(
        &web,
        "marking in the page wrote no trusted_code file",
        || trusted.is_file(),
    );
    wait_disk(
        &web,
        "the pending job with the trusted code was not approved",
        || sb.status_of(&same).as_deref() == Some("approved"),
    );
    b.wait_find(&format!(
        "#trusted-list [data-signature=\"{sig}\"] button.unmark"
    ));
    b.wait_gone(&format!(
        "#history-list [data-signature=\"{sig}\"] button.mark"
    ));
    b.no_error_banner();
    b.screenshot("trusted");

    // Pending: the approved job leaves the list, the other one stays.
    b.open_tab("pending");
    b.wait_gone(&format!("article.job[data-uid=\"{same}\"]"));
    b.wait_find(&format!("article.job[data-uid=\"{other}\"]"));
    assert_eq!(sb.status_of(&other).as_deref(), Some("pending"));

    // Decisions: the approval is listed.
    b.open_tab("decisions");
    let body = b.wait_find("#decisions-body");
    let listed =
        "return document.getElementById('decisions-body').innerHTML.includes(arguments[0])";
    assert!(
        wait_for(WAIT, || b.script(listed, json!([same])) == true),
        "the approval of {same} is not in the decisions: {}",
        b.text(&body)
    );
    assert!(b.text(&body).contains("Row count"), "{}", b.text(&body));
    b.no_error_banner();
    b.screenshot("decisions");

    // Unmark it again from the Trusted code tab.
    b.open_tab("trusted");
    b.click(&b.wait_find(&format!(
        "#trusted-list [data-signature=\"{sig}\"] button.unmark"
    )));
    wait_disk(
        &web,
        "unmarking in the page left the trusted_code file",
        || !trusted.exists(),
    );
    b.wait_gone(&format!("#trusted-list [data-signature=\"{sig}\"]"));
    b.wait_find(&format!(
        "#history-list [data-signature=\"{sig}\"] button.mark"
    ));
    b.no_error_banner();
}

/// A job's metadata, or null while it cannot be read (it is being rewritten).
fn meta_of(sb: &Sandbox, status: &str, uid: &str) -> Value {
    fs::read(sb.job_dir(status, uid).join("metadata.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// The audit chain's entries (`audit show`).
fn audit_entries(sb: &Sandbox) -> Vec<Value> {
    let out = sb.cli(&["audit", "show"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit show prints JSON lines"))
        .collect()
}

const PEER: &str = "bob@uni.example";
const DATASET: &str = "public/census";
const DECIDE_CONFIG: &str = "jobs:
  enabled: true
  rules:
    - name: census-only
      peers_only: true
      required_filenames: [census.sql]
peers:
  enabled: false
  auto_share_datasets: [public/census]
";

#[test]
fn a_person_decides_jobs_and_peers_in_the_browser() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.app_data()).unwrap();
    fs::write(sb.app_data().join("config.yaml"), DECIDE_CONFIG).unwrap();
    let dataset = sb.datasite().join(DATASET);
    fs::create_dir_all(&dataset).unwrap();
    fs::write(dataset.join("data.csv"), "age\n42\n").unwrap();
    let requests = sb.app_data().join("peers/requests");
    fs::create_dir_all(&requests).unwrap();
    fs::write(
        requests.join(format!("{PEER}.json")),
        r#"{"message": "census study <img src=x onerror=alert(1)>"}"#,
    )
    .unwrap();
    let code: Vec<(&str, &[u8])> = vec![("run.sh", b"#!/bin/sh\necho mean\n")];
    let keep = sb.submit_with(
        "dave@uni.example",
        OWNER,
        "Mean age",
        "Averages one column",
        &[],
        &code,
        "pending",
    );
    let nope = sb.submit_with(
        "eve@evil.example",
        OWNER,
        "Dump <b>table</b>",
        "Copies every row",
        &[],
        &simple_code(),
        "pending",
    );
    let late = sb.submit_with(
        "fay@uni.example",
        OWNER,
        "Histogram",
        "Bins ages",
        &[],
        &code,
        "pending",
    );
    let web = serve(&sb, &[]);
    let b = Browser::start();
    b.goto(&format!("{}/", web.base()));
    let card = |uid: &str| format!("#panel-pending article.job[data-uid=\"{uid}\"]");
    for uid in [&keep, &nope, &late] {
        b.wait_find(&card(uid));
    }
    // Server text is shown as text, never parsed as HTML.
    let nope_card = b.wait_find(&card(&nope));
    assert!(
        b.text(&nope_card).contains("Dump <b>table</b>"),
        "{}",
        b.text(&nope_card)
    );
    assert!(b.find(&format!("{} .job-name b", card(&nope))).is_none());

    // The status strip: the audit chain verifies, and the rule sets in force are named.
    let audit_text = || b.text(&b.wait_find("#st-audit-text"));
    assert!(
        wait_for(WAIT, || audit_text().contains("verified")),
        "status strip: {}",
        b.text(&b.wait_find("#status"))
    );
    assert!(
        audit_text().starts_with("Audit chain: ") && !audit_text().contains("not verified"),
        "{}",
        audit_text()
    );
    assert_eq!(b.text(&b.wait_find("#st-rule-sets-list")), "census-only");
    assert!(!b.displayed("#st-config-error"));
    assert!(!b.displayed("#st-audit-warning"));

    // Reject opens a form; an empty rationale is refused in the page, with nothing sent.
    b.click(&b.wait_find(&format!("{} button.reject", card(&nope))));
    let form = format!("{} form.verdict-form", card(&nope));
    assert!(
        wait_for(WAIT, || b.displayed(&format!("{form} textarea.rationale"))),
        "the rationale form did not open"
    );
    let focused = b.script(
        "return document.activeElement && document.activeElement.classList.contains('rationale')",
        json!([]),
    );
    assert_eq!(focused, true, "the rationale box does not have the focus");
    b.click(&b.wait_find(&format!("{form} button.confirm-verdict")));
    assert!(
        wait_for(WAIT, || !b
            .text(&b.wait_find(&format!("{form} .form-msg")))
            .is_empty()),
        "no message for an empty rationale"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sb.status_of(&nope).as_deref(), Some("pending"));
    let rationale = "It copies every row of the table; send aggregates only.";
    b.type_into(
        &b.wait_find(&format!("{form} textarea.rationale")),
        rationale,
    );
    b.no_error_banner();
    b.screenshot_showing("pending-rationale", &form);

    // Approve is one click; the job leaves the list (the open form elsewhere stays as it is).
    b.click(&b.wait_find(&format!("{} button.approve", card(&keep))));
    // (The folder moves first, then its metadata is rewritten.)
    wait_disk(
        &web,
        "approving in the page did not approve the job",
        || {
            sb.status_of(&keep).as_deref() == Some("approved")
                && meta_of(&sb, "approved", &keep)["status"] == "approved"
        },
    );
    b.wait_gone(&card(&keep));
    let typed = "return document.querySelector(arguments[0]).value";
    assert_eq!(
        b.script(typed, json!([format!("{form} textarea.rationale")])),
        rationale
    );

    // Confirming the form rejects with the rationale as the error message.
    b.click(&b.wait_find(&format!("{form} button.confirm-verdict")));
    wait_disk(&web, "rejecting in the page did not reject the job", || {
        sb.status_of(&nope).as_deref() == Some("rejected")
            && meta_of(&sb, "rejected", &nope)["status"] == "rejected"
    });
    let meta = sb.metadata("rejected", &nope);
    assert_eq!(meta["status"], "rejected");
    assert_eq!(meta["error_message"], rationale);
    b.wait_gone(&card(&nope));
    b.no_error_banner();

    // Request changes, from the keyboard; the job is decided elsewhere meanwhile. The periodic
    // refresh keeps the open form and its text, and says the job left the list; confirming
    // shows the server's refusal in the banner.
    b.click(&b.wait_find(&format!("{} button.request-changes", card(&late))));
    let form = format!("{} form.verdict-form", card(&late));
    assert!(wait_for(WAIT, || b.displayed(&format!("{form} textarea.rationale"))));
    b.type_into(
        &b.wait_find(&format!("{form} textarea.rationale")),
        "bin by decade",
    );
    let out = sb.cli(&["decide", &late, "approve"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_for(Duration::from_secs(20), || b
            .displayed(&format!("{form} .verdict-gone"))),
        "the form does not say the job left the list: {}",
        b.page_text()
    );
    assert_eq!(
        b.script(typed, json!([format!("{form} textarea.rationale")])),
        "bin by decade"
    );
    // Ctrl+Enter confirms.
    b.type_into(
        &b.wait_find(&format!("{form} textarea.rationale")),
        "\u{E009}\u{E007}\u{E009}",
    );
    assert!(
        wait_for(WAIT, || b.displayed("#error")),
        "no error banner for a job that is no longer pending"
    );
    let banner = b.text(&b.wait_find("#error"));
    assert!(
        banner.contains("no longer pending") && banner.contains("reload"),
        "{banner}"
    );
    assert_eq!(sb.status_of(&late).as_deref(), Some("approved"));
    // Escape closes the form, and the job it was about goes.
    b.type_into(
        &b.wait_find(&format!("{form} textarea.rationale")),
        "\u{E00C}",
    );
    b.wait_gone(&card(&late));
    b.click(&b.wait_find("#error-dismiss"));
    b.no_error_banner();

    // The audit chain has the page's verdicts, by actor "web", and still verifies.
    let entries = audit_entries(&sb);
    for (uid, outcome) in [(&keep, "approved"), (&nope, "rejected")] {
        assert!(
            entries.iter().any(|e| e["event"] == "decision"
                && e["actor"] == "web"
                && e["uid"] == uid.as_str()
                && e["outcome"] == outcome),
            "no web decision {outcome} for {uid} in the audit chain: {entries:#?}"
        );
    }
    // The strip counts them (it may already count entries appended since).
    let n = entries.len();
    let counted = || -> Option<usize> {
        audit_text()
            .strip_prefix("Audit chain: ")?
            .strip_suffix(" entries, verified")?
            .parse()
            .ok()
    };
    assert!(
        wait_for(WAIT, || counted().is_some_and(|k| k >= n)),
        "{} (the chain has {n} entries)",
        audit_text()
    );

    // Peers: approve the request (its identity is the file name) and revoke the peer again.
    b.open_tab("peers");
    let row = format!("#peer-pending-list li[data-peer=\"{PEER}\"]");
    b.wait_find(&format!("{row} button.approve-peer"));
    let text = b.text(&b.wait_find(&row));
    assert!(text.contains("<img src=x onerror=alert(1)>"), "{text}");
    assert!(b.find(&format!("{row} img")).is_none());
    let note = b.text(&b.wait_find("#panel-peers"));
    assert!(
        note.contains("file name") && note.contains("auto_share_datasets"),
        "{note}"
    );
    assert_eq!(b.text(&b.wait_find("#tab-count-peers")), "1");
    b.click(&b.wait_find(&format!("{row} button.approve-peer")));
    let approved = sb
        .app_data()
        .join("peers/approved")
        .join(syft_reviewer::core::email::encode(PEER).unwrap());
    wait_disk(&web, "approving a peer in the page wrote no file", || {
        approved.is_file()
    });
    let perm = dataset.join("syft.pub.yaml");
    wait_disk(&web, "approving a peer did not share the dataset", || {
        fs::read_to_string(&perm).is_ok_and(|t| t.contains(PEER))
    });
    let revoke = format!("#peer-approved-list li[data-peer=\"{PEER}\"] button.revoke");
    b.wait_find(&revoke);
    b.wait_gone(&row);
    b.no_error_banner();
    b.screenshot("peers");
    b.click(&b.wait_find(&revoke));
    b.accept_confirm(PEER);
    wait_disk(&web, "revoking a peer in the page left its file", || {
        !approved.exists()
    });
    wait_disk(&web, "revoking a peer did not unshare the dataset", || {
        !fs::read_to_string(&perm).unwrap().contains(PEER)
    });
    b.wait_gone(&revoke);
    b.wait_find(&format!("#peer-revoked-list li[data-peer=\"{PEER}\"]"));
    let entries = audit_entries(&sb);
    for event in ["peer.approve", "peer.revoke"] {
        assert!(
            entries
                .iter()
                .any(|e| e["event"] == event && e["actor"] == "web" && e["email"] == PEER),
            "no {event} by web in the audit chain: {entries:#?}"
        );
    }
    b.no_error_banner();

    // An invalid config.yaml and a tampered audit chain are warnings in the status strip.
    fs::write(sb.app_data().join("config.yaml"), "jobs: [not, a, map\n").unwrap();
    assert!(
        wait_for(WAIT, || b.displayed("#st-config-error")),
        "no warning for an invalid config.yaml: {}",
        b.text(&b.wait_find("#status"))
    );
    let warning = b.text(&b.wait_find("#st-config-error"));
    assert!(
        warning.contains("config.yaml is invalid")
            && warning.contains("in force until it is fixed"),
        "{warning}"
    );
    let chain = sb.app_data().join("audit/chain.jsonl");
    let text = fs::read_to_string(&chain).unwrap();
    fs::write(&chain, text.replacen("\"rejected\"", "\"approved\"", 1)).unwrap();
    assert!(
        wait_for(WAIT, || b.displayed("#st-audit-warning")),
        "no warning for a tampered audit chain: {}",
        b.text(&b.wait_find("#status"))
    );
    let warning = b.text(&b.wait_find("#st-audit-warning"));
    assert!(
        warning.contains("does not verify") && warning.contains("edited"),
        "{warning}"
    );
    assert_eq!(audit_text(), "Audit chain: not verified");
    b.screenshot("status-warnings");
}
