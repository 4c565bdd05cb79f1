//! A self-contained demo datasite, used by `run` when no SyftBox config exists, and `submit`,
//! which writes a job into an owner's queue the way syft-code-queue does (for demos and tests).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::core::email;
use crate::durable;
use crate::error::{Error, Result};
use crate::queue::metadata;
use crate::queue::{Queue, Status};
use crate::store::permfile::{Access, PermFile, Rule};
use crate::syftbox::{Identity, Layout};

pub const DEMO_OWNER: &str = "owner@demo.example.org";
const SERVER_URL: &str = "https://syftbox.example";

/// syft-code-queue's permission file for `pending/`: anyone may write a job there.
const PENDING_PERMS: &str =
    "rules:\n- pattern: '**'\n  access:\n    read:\n    - '*'\n    write:\n    - '*'\n";
const STATUS_PERMS: &str = "rules:\n- pattern: '**'\n  access:\n    read:\n    - '*'\n";

/// Creates (once) a demo SyftBox tree under `root` and returns its identity.
pub fn prepare(root: &Path) -> Result<Identity> {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let data_dir = root.join("SyftBox");
    let config = root.join("config.json");
    let id = Identity {
        data_dir: data_dir.clone(),
        email: DEMO_OWNER.into(),
        source: Some(config.clone()),
    };
    let layout = Layout::new(&id);
    let fresh = !config.exists();
    create_queue(&layout.queue)?;
    if fresh {
        let body = json!({"data_dir": data_dir, "email": DEMO_OWNER, "server_url": SERVER_URL, "client_url": "http://localhost:7938"});
        durable::write_atomic(&config, body.to_string().as_bytes(), 0o644)?;
        let samples = root.join("samples");
        write_sample(&samples.join("count-rows"), "print('rows:', 42)\n")?;
        write_sample(&samples.join("data-analysis"), "print('mean:', 3.5)\n")?;
        let q = Queue::new(layout.queue.clone());
        // A job from the trusted sender, one waiting for the owner, and the same code seen
        // completing before (so it can be trusted from the UI's Trusted code tab).
        let jobs = [
            (
                "count-rows",
                "andrew@openmined.org",
                "Count rows",
                "Counts the rows of the demo table",
                "demo",
                Status::Pending,
            ),
            (
                "data-analysis",
                "researcher@university.edu",
                "Data Analysis Script",
                "Mean of the demo column",
                "stats",
                Status::Pending,
            ),
            (
                "data-analysis",
                "researcher@university.edu",
                "Data Analysis Script",
                "Mean of the demo column",
                "stats",
                Status::Completed,
            ),
        ];
        // The trusted sender proves their jobs (their allowlist entry requires it): the demo
        // makes them an identity key as syft-crypto would, and signs their sample job as
        // `submit --sign` does, before it enters the queue.
        const ANDREW: &str = "andrew@openmined.org";
        let made = crate::store::identity::init(&data_dir, SERVER_URL, ANDREW, true)?;
        let andrew = Identity {
            data_dir: data_dir.clone(),
            email: ANDREW.into(),
            source: None,
        };
        let signer = super::keys::Signer::load(&andrew, Some(&made.key_file))?;
        let sign = |dir: &Path| signer.sign(dir).map(|_| ());
        for (sample, from, name, description, tag, status) in jobs {
            submit(
                &q,
                &samples.join(sample),
                from,
                DEMO_OWNER,
                name,
                description,
                &[tag.into()],
                status,
                (from == ANDREW).then_some(&sign as BeforeMove),
            )?;
        }
    }
    Ok(id)
}

fn write_sample(dir: &Path, script: &str) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    fs::write(dir.join("run.sh"), "#!/bin/sh\npython3 main.py\n")
        .map_err(|e| Error::io("write", dir, e))?;
    fs::write(dir.join("main.py"), script).map_err(|e| Error::io("write", dir, e))
}

/// Creates the queue's status folders with syft-code-queue's permission files.
pub fn create_queue(queue_root: &Path) -> Result<()> {
    for s in Status::ALL {
        let dir = queue_root.join(s.as_str());
        fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        let perm = dir.join("syft.pub.yaml");
        if !perm.exists() {
            let text = if s == Status::Pending {
                PENDING_PERMS
            } else {
                STATUS_PERMS
            };
            durable::write_atomic(&perm, text.as_bytes(), 0o644)?;
        }
    }
    Ok(())
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (nanos ^ (std::process::id() as u128) << 64).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// What is done to a job folder once written and before it is moved into the queue (signing
/// it: the reviewer must never see the job without its proof).
pub type BeforeMove<'a> = &'a dyn Fn(&Path) -> Result<()>;

/// Writes a job as syft-code-queue does: code copied, metadata, per-file permission files that
/// give the requester write access; built under a temporary name and renamed into place whole,
/// `before_move` run on the finished folder while it is still out of the queue.
#[allow(clippy::too_many_arguments)]
pub fn submit(
    queue: &Queue,
    code: &Path,
    from: &str,
    to: &str,
    name: &str,
    description: &str,
    tags: &[String],
    status: Status,
    before_move: Option<BeforeMove<'_>>,
) -> Result<String> {
    let from = email::normalize(from)?;
    let to = email::normalize(to)?;
    if !code.join("run.sh").is_file() {
        return Err(Error::invalid(
            format!("{} has no run.sh", code.display()),
            "a job's code folder must contain run.sh, which the runner executes",
        ));
    }
    let uid = new_uid();
    let status_dir = queue.status_dir(status);
    fs::create_dir_all(&status_dir).map_err(|e| Error::io("create folder", &status_dir, e))?;
    // Staged as `<hidden folder>/<uid>`: the folder has its real name while it is signed, and
    // the queue's watchers ignore hidden names.
    let staging = status_dir.join(format!(".{uid}{}", durable::TMP_MARKER));
    let tmp = staging.join(&uid);
    let code_dest = tmp.join("code");
    copy_tree(code, &code_dest)?;
    let both = vec![to.clone(), from.clone()];
    let requester_only = vec![from.clone()];
    let now = metadata::format_naive(&metadata::now_naive());
    let meta = json!({
        "uid": uid, "name": name, "requester_email": from, "target_email": to,
        "code_folder": status_dir.join(&uid).join("code"), "description": description, "created_at": now,
        "timeout_seconds": 86400, "tags": tags, "status": status.as_str(), "updated_at": now,
        "started_at": null, "completed_at": null, "output_folder": null, "error_message": null,
        "exit_code": null, "logs": null,
    });
    let write = |path: PathBuf, body: String| {
        fs::write(&path, body).map_err(|e| Error::io("write", &path, e))
    };
    write(
        tmp.join("metadata.json"),
        serde_json::to_string_pretty(&meta).unwrap_or_default(),
    )?;
    let rule = |pattern: &str, write: &Vec<String>| {
        Rule::new(
            pattern,
            Access {
                read: both.clone(),
                write: write.clone(),
                admin: requester_only.clone(),
                ..Access::default()
            },
        )
    };
    let job_perm = PermFile {
        rules: vec![rule("metadata.json", &both)],
        ..PermFile::default()
    };
    write(tmp.join("syft.pub.yaml"), job_perm.to_yaml())?;
    for entry in walkdir::WalkDir::new(&code_dest)
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            let mut rules = Vec::new();
            for f in fs::read_dir(entry.path()).into_iter().flatten().flatten() {
                if f.file_type().is_ok_and(|t| t.is_file()) {
                    rules.push(rule(&f.file_name().to_string_lossy(), &requester_only));
                }
            }
            write(
                entry.path().join("syft.pub.yaml"),
                PermFile {
                    rules,
                    ..PermFile::default()
                }
                .to_yaml(),
            )?;
        }
    }
    let mut top_rules = Vec::new();
    for f in fs::read_dir(&code_dest).into_iter().flatten().flatten() {
        if f.file_type().is_ok_and(|t| t.is_file()) && f.file_name() != "syft.pub.yaml" {
            top_rules.push(rule(&f.file_name().to_string_lossy(), &requester_only));
        }
    }
    write(
        code_dest.join("syft.pub.yaml"),
        PermFile {
            rules: top_rules,
            ..PermFile::default()
        }
        .to_yaml(),
    )?;
    if let Some(f) = before_move
        && let Err(e) = f(&tmp)
    {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    let dest = status_dir.join(&uid);
    fs::rename(&tmp, &dest).map_err(|e| Error::io("move", &tmp, e))?;
    let _ = fs::remove_dir(&staging);
    Ok(uid)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(|e| {
            Error::invalid(format!("cannot read {}", from.display()), e.to_string())
        })?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dest = to.join(rel);
        let t = entry.file_type();
        if t.is_dir() {
            fs::create_dir_all(&dest).map_err(|e| Error::io("create folder", &dest, e))?;
        } else if t.is_file() {
            fs::copy(entry.path(), &dest).map_err(|e| Error::io("copy", entry.path(), e))?;
        } else if t.is_symlink() {
            let target =
                fs::read_link(entry.path()).map_err(|e| Error::io("read link", entry.path(), e))?;
            std::os::unix::fs::symlink(target, &dest)
                .map_err(|e| Error::io("create link", &dest, e))?;
        }
    }
    Ok(())
}
