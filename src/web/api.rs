//! The JSON API behind the web UI (the table in README.md). Every handler calls the same
//! library functions as the CLI; this module only translates requests and answers.

use std::path::Path;
use std::sync::Arc;

use chrono::Duration as ChronoDuration;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::email;
use crate::core::signature::{self, CodeFile};
use crate::daemon::live::Live;
use crate::error::Error;
use crate::queue::metadata::{self, Metadata};
use crate::queue::review::{self, Trust};
use crate::queue::{Queue, Status};
use crate::store::allowlist::Allowlist;
use crate::store::audit::Subject;
use crate::store::decision_log::DecisionLog;
use crate::store::history::{self, History};
use crate::store::trusted::TrustedCode;
use crate::syftbox::Layout;

/// File contents shown in the UI are cut at this size.
pub const FILE_VIEW_LIMIT: u64 = 256 * 1024;
/// And the texts of all the files of one job together at this size.
pub const FILE_VIEW_TOTAL: u64 = 16 << 20;
const MAX_PAGE: usize = 500;
/// `max_age_hours` beyond this (100 years) is refused rather than overflowing date arithmetic.
const MAX_AGE_HOURS: usize = 876_000;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub error: String,
    pub hint: String,
}

impl ApiError {
    pub fn new(status: u16, error: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            hint: hint.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": self.error, "hint": self.hint})
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Invalid { what, hint } => ApiError::new(400, what, hint),
            Error::Conflict { what, hint } => ApiError::new(409, what, hint),
            Error::NotFound { what, hint } => ApiError::new(404, format!("{what} not found"), hint),
            Error::AlreadyRunning { .. } => ApiError::new(409, e.to_string(), ""),
            other => ApiError::new(
                500,
                other.to_string(),
                "see the syft-reviewer log; the request changed nothing it could not finish",
            ),
        }
    }
}

type Answer = Result<Reply, ApiError>;

fn ok(body: Value) -> Answer {
    Ok(Reply { status: 200, body })
}

pub struct Api {
    layout: Layout,
    live: Arc<Live>,
    /// Who acts through this API, as recorded in the audit chain.
    actor: String,
    /// The last verification of the audit chain, the file stamps it was made at, and where to
    /// resume from when the chain has grown since.
    audit_cache: std::sync::Mutex<AuditCache>,
}

type AuditCache = (
    AuditStamp,
    Option<crate::store::audit::Verification>,
    Option<crate::store::audit::Resume>,
);

/// Length and modification time of the chain and of the checkpoint.
type AuditStamp = (
    Option<(u64, Option<std::time::SystemTime>)>,
    Option<(u64, Option<std::time::SystemTime>)>,
);

impl Api {
    pub fn new(layout: Layout, live: Arc<Live>, actor: &str) -> Api {
        Api {
            layout,
            live,
            actor: actor.to_string(),
            audit_cache: std::sync::Mutex::default(),
        }
    }

    /// Routes `/api/...` requests. `segments` are the percent-decoded path segments.
    pub fn handle(&self, method: &str, segments: &[String], query: &str, body: &[u8]) -> Answer {
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let q = Query::parse(query);
        match (method, seg.as_slice()) {
            ("GET", ["api", "status"]) => self.status(),
            ("GET", ["api", "v1", "allowlist"]) => self.allowlist(),
            ("POST", ["api", "v1", "allowlist"]) => self.replace_allowlist(body),
            ("POST", ["api", "v1", "allowlist", "add", mail]) => self.allow_add(mail),
            ("DELETE", ["api", "v1", "allowlist", "remove", mail]) => self.allow_remove(mail),
            ("GET", ["api", "v1", "allowlist", "me"]) => self.allow_check(&self.layout.email),
            ("GET", ["api", "v1", "allowlist", "check", mail]) => self.allow_check(mail),
            ("GET", ["api", "v1", "trusted-code"]) => {
                ok(json!({"trusted": TrustedCode::new(&self.layout).list()?}))
            }
            ("GET", ["api", "v1", "trusted-code", "history"]) => self.history(),
            ("POST", ["api", "v1", "trusted-code", "mark", sig]) => self.mark(sig),
            ("DELETE", ["api", "v1", "trusted-code", "unmark", sig]) => self.unmark(sig),
            ("POST", ["api", "v1", "trusted-code", "check-signature"]) => {
                self.check_signature(body)
            }
            ("POST", ["api", "v1", "trusted-code", "add-to-history"]) => self.add_to_history(body),
            ("GET", ["api", "v1", "peers"]) => ok(serde_json::to_value(crate::store::peers::list(
                &self.layout,
            )?)
            .unwrap_or_default()),
            ("POST", ["api", "v1", "peers", "approve", mail]) => self.peer_approve(mail),
            ("DELETE", ["api", "v1", "peers", "revoke", mail]) => self.peer_revoke(mail),
            ("GET", ["api", "v1", "jobs"]) => self.jobs(&q),
            ("GET", ["api", "v1", "jobs", uid]) => self.job(uid, status_param(q.get("status"))?),
            ("GET", ["api", "v1", "jobs", uid, "explain"]) => {
                self.explain(uid, status_param(q.get("status"))?)
            }
            ("POST", ["api", "v1", "jobs", uid, "decide"]) => self.decide(uid, body),
            ("GET", ["api", "v1", "audit", "verify"]) => ok(serde_json::to_value(
                crate::store::audit::AuditLog::new(&self.layout).verify(None),
            )
            .unwrap_or_default()),
            ("GET", ["api", "v1", "decisions"]) => {
                let limit = q.number("limit")?.unwrap_or(100).min(10_000);
                // Only lines that verify: decisions.jsonl sits in the datasite.
                let mut t = DecisionLog::new(&self.layout).tail_verified(limit);
                t.entries.reverse();
                ok(json!({"decisions": t.entries, "unverified_lines": t.unverified_lines}))
            }
            _ => Err(route_error(method, &seg)),
        }
    }

    fn audit(&self, event: &str, subject: Subject<'_>) {
        crate::store::audit::record_change(&self.layout, event, &self.actor, subject, vec![]);
    }

    /// The audit chain's verification, redone only when the chain or its checkpoint changed
    /// (the UI asks every few seconds, and a full check of a long chain is not free).
    fn audit_state(&self) -> crate::store::audit::Verification {
        let log = crate::store::audit::AuditLog::new(&self.layout);
        let stamp = |p: std::path::PathBuf| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.len(), m.modified().ok()))
        };
        let key = (stamp(log.chain_path()), stamp(log.checkpoint_path()));
        let mut cache = self.audit_cache.lock().unwrap_or_else(|p| p.into_inner());
        let (stamp, last, resume) = &mut *cache;
        if let Some(v) = last
            && *stamp == key
        {
            return v.clone();
        }
        let v = log.verify_resuming(None, resume);
        *stamp = key;
        *last = Some(v.clone());
        v
    }

    /// Prometheus text for `/metrics`.
    pub fn metrics(&self) -> String {
        let pending = Queue::new(self.layout.queue.clone())
            .list(Status::Pending)
            .len();
        self.live.prometheus(pending)
    }

    fn status(&self) -> Answer {
        let q = Queue::new(self.layout.queue.clone());
        let trust = Trust::load(&self.layout)?;
        let s = self.live.snapshot();
        let integrity = self.live.integrity();
        let jobs: serde_json::Map<String, Value> = Status::ALL
            .iter()
            .map(|st| (st.as_str().to_string(), q.list(*st).len().into()))
            .collect();
        ok(json!({
            "owner": self.layout.email,
            "datasite": self.layout.datasite,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.live.started.elapsed().as_secs(),
            "jobs": jobs,
            "waiting": s.waiting,
            "flagged": s.flagged,
            "approved_since_start": s.approved_since_start,
            "allowlisted_senders": trust.allowlist.entries.len(),
            "trusted_code": trust.trusted.len(),
            "watcher": {
                "healthy": s.watcher_healthy,
                "last_event": s.last_event,
                "last_error": s.last_error,
                "rescans": s.rescans,
                "events": s.events,
            },
            "ignored_store_files": trust.invalid,
            "config_error": trust.config_error,
            // The daemon's rules in force, which outlive an invalid edit of config.yaml.
            "rule_sets": s.rule_sets,
            "audit": self.audit_state(),
            // Jobs in approved/ or running/ that no decision explains (reported, left as they are).
            "unexplained_jobs": integrity.unexplained_jobs,
            "status_permission_restores": integrity.permission_restores,
        }))
    }

    fn allowlist(&self) -> Answer {
        let listing = Allowlist::new(&self.layout).load()?;
        ok(json!({
            "emails": listing.entries.keys().collect::<Vec<_>>(),
            "invalid": listing.invalid.iter().map(|(f, r)| json!({"file": f, "reason": r})).collect::<Vec<_>>(),
        }))
    }

    fn replace_allowlist(&self, body: &[u8]) -> Answer {
        let _changing = crate::store::audit::change_lock(&self.layout)?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            emails: Vec<String>,
        }
        let b: Body = parse_body(body, r#"{"emails": ["a@example.org", ...]}"#)?;
        let list = Allowlist::new(&self.layout);
        let before = list.load()?.entries;
        let (added, removed) = list.replace(&b.emails)?;
        let after = list.load()?.entries;
        for mail in after.keys().filter(|m| !before.contains_key(*m)) {
            self.audit("allowlist.add", Subject::Email(mail));
        }
        for mail in before.keys().filter(|m| !after.contains_key(*m)) {
            self.audit("allowlist.remove", Subject::Email(mail));
        }
        ok(json!({
            "emails": list.load()?.entries.keys().collect::<Vec<_>>(),
            "added": added,
            "removed": removed,
        }))
    }

    fn allow_add(&self, mail: &str) -> Answer {
        let _changing = crate::store::audit::change_lock(&self.layout)?;
        let mail = email::normalize(mail)?;
        let added = Allowlist::new(&self.layout).add(&mail)?;
        if added {
            self.audit("allowlist.add", Subject::Email(&mail));
        }
        Ok(Reply {
            status: if added { 201 } else { 200 },
            body: json!({"email": mail, "added": added}),
        })
    }

    fn allow_remove(&self, mail: &str) -> Answer {
        let _changing = crate::store::audit::change_lock(&self.layout)?;
        let mail = email::normalize(mail)?;
        let removed = Allowlist::new(&self.layout).remove(&mail)?;
        if removed {
            self.audit("allowlist.remove", Subject::Email(&mail));
        }
        if !removed {
            return Err(ApiError::new(
                404,
                format!("{mail} is not in the allowlist"),
                "GET /api/v1/allowlist lists who is",
            ));
        }
        ok(json!({"email": mail, "removed": true}))
    }

    fn allow_check(&self, mail: &str) -> Answer {
        let mail = email::normalize(mail)?;
        let listed = Allowlist::new(&self.layout).load()?.contains(&mail);
        ok(json!({"email": mail, "allowlisted": listed}))
    }

    fn peer_approve(&self, mail: &str) -> Answer {
        let _changing = crate::store::audit::change_lock(&self.layout)?;
        // An invalid config shares nothing now; the daemon shares with the config in force.
        let trust = Trust::load(&self.layout)?;
        let config = trust.config_error.is_none().then_some(&trust.config);
        let a = crate::store::peers::approve(&self.layout, config, mail, &self.actor)?;
        Ok(Reply {
            status: if a.approved { 201 } else { 200 },
            body: serde_json::to_value(a).unwrap_or_default(),
        })
    }

    fn peer_revoke(&self, mail: &str) -> Answer {
        let _changing = crate::store::audit::change_lock(&self.layout)?;
        match crate::store::peers::revoke(&self.layout, mail, &self.actor)? {
            Some(r) => {
                let mut body = serde_json::to_value(r).unwrap_or_default();
                body["revoked"] = true.into();
                ok(body)
            }
            None => Err(ApiError::new(
                404,
                format!("{} is not an approved peer", mail.trim().to_lowercase()),
                "GET /api/v1/peers lists the approved peers",
            )),
        }
    }

    fn history(&self) -> Answer {
        let trusted = TrustedCode::new(&self.layout);
        let rows: Vec<Value> = History::new(&self.layout)
            .list()?
            .into_iter()
            .map(|r| {
                let t = trusted.is_trusted(&r.signature);
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["trusted"] = t.into();
                v
            })
            .collect();
        ok(json!({"history": rows}))
    }

    fn mark(&self, sig: &str) -> Answer {
        let _changing = crate::store::audit::change_lock(&self.layout)?;
        let added = TrustedCode::new(&self.layout).mark(sig)?;
        if added {
            self.audit(
                "trusted_code.mark",
                Subject::Signature(&sig.trim().to_lowercase()),
            );
        }
        ok(json!({"signature": sig.trim().to_lowercase(), "trusted": true, "added": added}))
    }

    fn unmark(&self, sig: &str) -> Answer {
        let _changing = crate::store::audit::change_lock(&self.layout)?;
        if !signature::is_signature(sig) {
            return Err(ApiError::new(
                400,
                format!("{sig:?} is not a job signature"),
                "a signature is 64 lower-case hex characters",
            ));
        }
        if !TrustedCode::new(&self.layout).unmark(sig)? {
            return Err(ApiError::new(
                404,
                format!("signature {sig} is not trusted"),
                "GET /api/v1/trusted-code lists trusted signatures",
            ));
        }
        self.audit("trusted_code.unmark", Subject::Signature(sig));
        ok(json!({"signature": sig, "trusted": false}))
    }

    fn check_signature(&self, body: &[u8]) -> Answer {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            uid: Option<String>,
            #[serde(default)]
            status: Option<Status>,
            name: Option<String>,
            #[serde(default)]
            description: Option<String>,
            #[serde(default)]
            tags: Vec<String>,
            #[serde(default)]
            files: std::collections::BTreeMap<String, String>,
        }
        let hint = r#"send {"uid": "<job uid>"} or {"name": ..., "description": ..., "tags": [...], "files": {"run.sh": "<content>"}}"#;
        let b: Body = parse_body(body, hint)?;
        let sig = match (&b.uid, &b.name) {
            (Some(uid), None) => {
                let dir = self.find_job(uid, b.status)?;
                review::review(&dir, &self.layout.email, &Trust::default())
                    .inspection
                    .signature
                    .ok_or_else(|| {
                        ApiError::new(
                            422,
                            format!("job {uid} has no computable signature"),
                            "see GET /api/v1/jobs/{uid}/explain",
                        )
                    })?
            }
            (None, Some(name)) => {
                let mut files = Vec::new();
                for (path, content) in &b.files {
                    check_rel_path(path)?;
                    let base = path.rsplit('/').next().unwrap_or(path);
                    if signature::is_excluded(base) {
                        continue;
                    }
                    use sha2::Digest;
                    files.push(CodeFile {
                        path: path.clone(),
                        sha256: format!("{:x}", sha2::Sha256::digest(content.as_bytes())),
                        size: content.len() as u64,
                    });
                }
                signature::signature_v1(
                    name,
                    b.description.as_deref().unwrap_or(""),
                    &b.tags,
                    &files,
                )
            }
            _ => {
                return Err(ApiError::new(
                    400,
                    "give either a uid or a job's name and files, not both",
                    hint,
                ));
            }
        };
        let trusted = TrustedCode::new(&self.layout).is_trusted(&sig);
        ok(json!({"signature": sig, "trusted": trusted}))
    }

    fn add_to_history(&self, body: &[u8]) -> Answer {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            uid: String,
            #[serde(default)]
            status: Option<Status>,
        }
        let b: Body = parse_body(body, r#"{"uid": "<job uid>", "status": "completed"}"#)?;
        let dir = self.find_job(&b.uid, b.status)?;
        let rec = history::record_for_job(&dir, &self.layout.email)?;
        let mut sync = crate::durable::Sync::batch();
        let rec = History::new(&self.layout).record(rec, &mut sync)?;
        sync.commit()?;
        ok(json!({"record": rec}))
    }

    /// The job a uid names: the copy in `status`, or the only copy (a uid in several status
    /// folders is refused with 409, naming each).
    fn find_job(&self, uid: &str, status: Option<Status>) -> Result<std::path::PathBuf, ApiError> {
        let queue = Queue::new(self.layout.queue.clone());
        match crate::queue::copies::locate(&queue, uid, status) {
            Ok((_, d)) => Ok(d),
            Err(Error::Invalid { what, hint }) => Err(ApiError::new(409, what, hint)),
            Err(_) => Err(ApiError::new(
                404,
                format!("job {uid:?} not found"),
                "GET /api/v1/jobs lists the jobs in the queue",
            )),
        }
    }

    fn jobs(&self, q: &Query) -> Answer {
        let status = match q.get("status") {
            None | Some("") => Status::Pending,
            Some(s) => Status::parse(s).ok_or_else(|| {
                ApiError::new(
                    400,
                    format!("unknown status {s:?}"),
                    "use pending, approved, running, completed, failed, rejected or timedout",
                )
            })?,
        };
        let offset = q.number("offset")?.unwrap_or(0);
        let limit = q.number("limit")?.unwrap_or(50).clamp(1, MAX_PAGE);
        let sender = q.get("sender").unwrap_or("").to_lowercase();
        let name = q.get("name").unwrap_or("").to_lowercase();
        let max_age = match q.number("max_age_hours")? {
            Some(h) if h > MAX_AGE_HOURS => {
                return Err(ApiError::new(
                    400,
                    format!("max_age_hours={h} is more than {MAX_AGE_HOURS} (100 years)"),
                    "use a smaller number of hours, or leave it out for jobs of any age",
                ));
            }
            h => h.map(|h| ChronoDuration::hours(h as i64)),
        };
        let now = metadata::now_naive();
        let queue = Queue::new(self.layout.queue.clone());
        // Only what sorting needs is kept per job: metadata documents of a whole queue (up to
        // 1 MiB each) are not held at once.
        let mut rows: Vec<(Option<chrono::NaiveDateTime>, String)> = Vec::new();
        for uid in queue.list(status) {
            let m = Metadata::read(&queue.job_dir(status, &uid)).ok();
            if let Some(m) = &m {
                if !sender.is_empty() && !m.meta.requester_email.to_lowercase().contains(&sender) {
                    continue;
                }
                if !name.is_empty() && !m.meta.name.to_lowercase().contains(&name) {
                    continue;
                }
            } else if !sender.is_empty() || !name.is_empty() {
                continue;
            }
            let created = m.as_ref().and_then(|m| m.meta.created_at);
            if let Some(h) = max_age {
                match created {
                    Some(c) if now.signed_duration_since(c) <= h => {}
                    _ => continue,
                }
            }
            rows.push((created, uid));
        }
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let total = rows.len();
        let trust = if status == Status::Pending {
            Some(Trust::load(&self.layout)?)
        } else {
            None
        };
        // One page reads at most this long in all; jobs left unread are flagged as too slow.
        let deadline = std::time::Instant::now() + signature::READ_BUDGET;
        let jobs: Vec<Value> = signature::with_read_deadline(deadline, || {
            rows.into_iter()
                .skip(offset)
                .take(limit)
                .map(|(_, uid)| {
                    self.summary(&queue.job_dir(status, &uid), status, trust.as_ref())
                        .0
                })
                .collect()
        });
        ok(json!({"jobs": jobs, "total": total, "offset": offset, "limit": limit}))
    }

    /// A job's summary; with `trust`, the dry-run verdict too. Also returns the inspection.
    fn summary(
        &self,
        dir: &Path,
        status: Status,
        trust: Option<&Trust>,
    ) -> (Value, crate::queue::Inspection) {
        let r = review::review(dir, &self.layout.email, trust.unwrap_or(&Trust::default()));
        let ins = &r.inspection;
        let m = ins.meta.as_ref().map(|m| &m.meta);
        let created = m.and_then(|m| m.created_at);
        // The daemon's own expiry (none when the timeout reaches past the last date there is).
        let cap = trust.and_then(|t| t.config.approval.max_timeout_seconds);
        let expires = m
            .and_then(|m| crate::queue::gate::expires_at(m, dir, cap))
            .map(|t| metadata::format_naive(&t));
        let (verdict, reasons) = if trust.is_some() {
            let ex = r.explanation();
            (Value::from(ex.would), ex.reasons)
        } else {
            (Value::Null, ins.problems.clone())
        };
        let v = json!({
            "uid": ins.uid,
            "status": status,
            "name": m.map(|m| m.name.clone()),
            "requester": m.map(|m| m.requester_email.clone()),
            "description": m.map(|m| m.description.clone()),
            "tags": m.map(|m| m.tags.clone()).unwrap_or_default(),
            "created_at": created.map(|c| metadata::format_naive(&c)),
            "timeout_seconds": m.and_then(|m| m.timeout_seconds),
            "expires_at": expires,
            "signature": ins.signature,
            "verdict": verdict,
            "reasons": reasons,
            "warnings": ins.findings.invisible,
        });
        (v, r.inspection)
    }

    fn job(&self, uid: &str, status: Option<Status>) -> Answer {
        let dir = self.find_job(uid, status)?;
        let status = dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| Status::parse(&n.to_string_lossy()))
            .unwrap_or(Status::Pending);
        let trust = if status == Status::Pending {
            Some(Trust::load(&self.layout)?)
        } else {
            None
        };
        let (mut v, ins) = self.summary(&dir, status, trust.as_ref());
        let code = dir.join("code");
        // Each file's text is cut at FILE_VIEW_LIMIT and the whole answer at FILE_VIEW_TOTAL, so
        // a job of many large files costs one bounded read.
        let mut left = FILE_VIEW_TOTAL;
        let files: Vec<Value> = ins
            .scan
            .map(|s| s.files)
            .unwrap_or_default()
            .into_iter()
            .map(|f| {
                let limit = FILE_VIEW_LIMIT.min(left);
                let (text, truncated) = if limit == 0 {
                    (None, f.size > 0)
                } else {
                    read_text_prefix(&code.join(&f.path), limit)
                };
                left -= text.as_ref().map_or(0, |t| t.len() as u64).min(left);
                json!({"path": f.path, "size": f.size, "sha256": f.sha256, "text": text, "truncated": truncated})
            })
            .collect();
        v["files"] = files.into();
        ok(v)
    }

    fn decide(&self, uid: &str, body: &[u8]) -> Answer {
        let req: crate::queue::gate::RulingRequest = parse_body(
            body,
            r#"{"verdict": "approve"|"reject"|"request_changes", "rationale": "...", "signature": "<what you reviewed>"}"#,
        )?;
        if req.status.is_none() {
            // A uid in several status folders: 409 naming each copy, as for every uid.
            self.find_job(uid, None)?;
        }
        // A verdict must name what was reviewed, or the job could have changed unseen.
        let req = crate::queue::gate::RulingRequest {
            signature_required: true,
            ..req
        };
        let notifier = self.live.notifier();
        let d =
            crate::queue::gate::decide(&self.layout, uid, &req, &self.actor, notifier.as_deref())?;
        self.live.count_decision(
            d.verdict.outcome().as_str(),
            crate::core::policy::Method::Human.as_str(),
            None,
        );
        ok(serde_json::to_value(d).unwrap_or_default())
    }

    fn explain(&self, uid: &str, status: Option<Status>) -> Answer {
        let dir = self.find_job(uid, status)?;
        let trust = Trust::load(&self.layout)?;
        let r = review::review(&dir, &self.layout.email, &trust);
        ok(serde_json::to_value(r.explanation()).unwrap_or_default())
    }
}

fn route_error(method: &str, seg: &[&str]) -> ApiError {
    let path = format!("/{}", seg.join("/"));
    let known_get = Api::paths_for("GET", seg);
    let known_other = ["POST", "DELETE"].iter().any(|m| Api::paths_for(m, seg));
    if known_get || known_other {
        ApiError::new(
            405,
            format!("{method} is not allowed on {path}"),
            "see /api/openapi.json for the methods of each endpoint",
        )
    } else {
        ApiError::new(
            404,
            format!("no such endpoint: {path}"),
            "see /api/openapi.json for the endpoints",
        )
    }
}

impl Api {
    /// True when `seg` names an endpoint that answers `method` (used for 405 versus 404).
    fn paths_for(method: &str, seg: &[&str]) -> bool {
        matches!(
            (method, seg),
            ("GET", ["api", "status"])
                | ("GET", ["api", "v1", "allowlist"])
                | ("POST", ["api", "v1", "allowlist"])
                | ("POST", ["api", "v1", "allowlist", "add", _])
                | ("DELETE", ["api", "v1", "allowlist", "remove", _])
                | ("GET", ["api", "v1", "allowlist", "me"])
                | ("GET", ["api", "v1", "allowlist", "check", _])
                | ("GET", ["api", "v1", "trusted-code"])
                | ("GET", ["api", "v1", "trusted-code", "history"])
                | ("POST", ["api", "v1", "trusted-code", "mark", _])
                | ("DELETE", ["api", "v1", "trusted-code", "unmark", _])
                | ("POST", ["api", "v1", "trusted-code", "check-signature"])
                | ("POST", ["api", "v1", "trusted-code", "add-to-history"])
                | ("GET", ["api", "v1", "peers"])
                | ("POST", ["api", "v1", "peers", "approve", _])
                | ("DELETE", ["api", "v1", "peers", "revoke", _])
                | ("GET", ["api", "v1", "jobs"])
                | ("GET", ["api", "v1", "jobs", _])
                | ("GET", ["api", "v1", "jobs", _, "explain"])
                | ("GET", ["api", "v1", "decisions"])
                | ("POST", ["api", "v1", "jobs", _, "decide"])
                | ("GET", ["api", "v1", "audit", "verify"])
        )
    }
}

/// The `status` query parameter that says which copy of a uid is meant.
fn status_param(v: Option<&str>) -> Result<Option<Status>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => Status::parse(s).map(Some).ok_or_else(|| {
            ApiError::new(
                400,
                format!("unknown status {s:?}"),
                "use pending, approved, running, completed, failed, rejected or timedout",
            )
        }),
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8], hint: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            400,
            format!("the request body is not valid: {e}"),
            format!("send JSON like {hint}"),
        )
    })
}

fn check_rel_path(path: &str) -> Result<(), ApiError> {
    if crate::core::rel_path::check(path).is_err() {
        return Err(ApiError::new(
            400,
            format!("file path {path:?} is not a relative path inside code/"),
            "use paths like run.sh or lib/util.py",
        ));
    }
    Ok(())
}

/// The text of a file for display: the first `limit` bytes if they are UTF-8, and whether it
/// was cut.
fn read_text_prefix(path: &Path, limit: u64) -> (Option<String>, bool) {
    use std::io::Read;
    let Ok((f, meta)) = crate::durable::open_regular(path) else {
        return (None, false);
    };
    let size = meta.len();
    let mut buf = Vec::new();
    if f.take(limit).read_to_end(&mut buf).is_err() {
        return (None, false);
    }
    let truncated = size > limit;
    match String::from_utf8(buf) {
        Ok(s) => (Some(s), truncated),
        Err(e) if truncated && e.utf8_error().valid_up_to() + 4 > e.as_bytes().len() => {
            let n = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(n);
            (String::from_utf8(bytes).ok(), true)
        }
        Err(_) => (None, truncated),
    }
}

/// A parsed query string.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: &str) -> Query {
        Query(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str) -> Result<Option<usize>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::new(
                    400,
                    format!("query parameter {key}={v:?} is not a whole number"),
                    format!("use e.g. {key}=10"),
                )
            }),
        }
    }
}
