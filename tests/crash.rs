//! Crash safety: the daemon is SIGKILLed again and again while a burst of jobs arrives and is
//! being approved, and restarted each time. Afterwards the queue must be consistent: every job in
//! exactly one status folder with matching metadata, no temporary files, no unfinished move, and
//! exactly the jobs the rules approve approved (locked against writes).
//!
//! The kill schedule comes from a seed printed in every failure message; set `CRASH_SEED` to reuse
//! it (the exact moments still depend on timing).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::util::*;

const TRUSTED: &str = "alice@example.org";
const UNKNOWN: [&str; 2] = ["mallory@example.net", "bob@example.com"];
/// Jobs written before the first start; the rest arrive while the daemon is being killed.
const BEFORE_START: usize = 120;
const TOTAL: usize = 320;
const ROUNDS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// From the allowlisted sender, valid: must end approved.
    Trusted,
    /// From a sender nobody trusts: must stay pending.
    Unknown,
    /// From the allowlisted sender, spoiled: stays pending.
    Spoiled(Spoil),
    /// requester_email is not an email: stays pending.
    BadSender,
}

impl Kind {
    fn approved(self) -> bool {
        self == Kind::Trusted
    }
}

fn kind_for(i: usize) -> Kind {
    match i % 40 {
        7 => Kind::Spoiled(Spoil::NoRunScript),
        15 => Kind::Spoiled(Spoil::Symlink),
        23 => Kind::Spoiled(Spoil::BrokenMetadata),
        31 => Kind::BadSender,
        n if n % 3 == 0 => Kind::Unknown,
        _ => Kind::Trusted,
    }
}

/// Writes one job of the given kind into pending/ the way the queue client does (built
/// elsewhere, renamed in whole).
fn submit(sb: &Sandbox, i: usize, kind: Kind) -> String {
    let uid = new_uid();
    let build = sb.dir.path().join(format!("build-{uid}"));
    let from = match kind {
        Kind::Unknown => UNKNOWN[i % UNKNOWN.len()],
        Kind::BadSender => "not an email",
        _ => TRUSTED,
    };
    let main = format!("print('job {i}')\n");
    write_script_job(&build, &uid, from, &format!("Job {i}"), main.as_bytes());
    if let Kind::Spoiled(how) = kind {
        spoil(&build, how);
    }
    fs::rename(&build, sb.job_dir("pending", &uid)).unwrap();
    uid
}

/// Starts the daemon with no settle window, without waiting for it to be ready.
fn spawn(sb: &Sandbox, round: usize) -> Daemon {
    spawn_unready(sb, &format!("crash-round-{round}"), &["--settle-ms", "0"])
}

fn all_logs(sb: &Sandbox) -> String {
    log_tails(sb, usize::MAX, 60)
}

/// What each round did, from its log (shown on failure; no assertion depends on it).
fn summary(sb: &Sandbox) -> String {
    let mut out = String::new();
    for round in 0..=ROUNDS {
        let log = fs::read_to_string(sb.dir.path().join(format!("crash-round-{round}.err")))
            .unwrap_or_default();
        let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
        out.push_str(&format!(
            "round {round}: watching={} approved={} interrupted-moves-completed={} sent-back={} status-repaired={}\n",
            count("watching"),
            count("approved job"),
            count("completed an interrupted move"),
            count("was not approved") + count("sent back"),
            count("repaired job"),
        ));
    }
    out
}

fn rules_of(path: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}\n{text}", path.display()));
    v["rules"].as_array().cloned().unwrap_or_default()
}

fn grants(rule: &serde_json::Value, access: &str) -> usize {
    rule["access"][access].as_array().map_or(0, |a| a.len())
}

#[test]
fn repeated_sigkill_during_a_burst_leaves_a_consistent_queue() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut rng = Rng(seed);
    let sb = Sandbox::new();
    let out = sb.cli(&["allow", "add", TRUSTED]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut jobs: BTreeMap<String, Kind> = BTreeMap::new();
    for i in 0..BEFORE_START {
        jobs.insert(submit(&sb, i, kind_for(i)), kind_for(i));
    }

    // The rest of the burst arrives while the daemon is killed and restarted.
    let later: Vec<(String, Kind)> = std::thread::scope(|s| {
        let writer_seed = rng.next() | 1;
        let sb = &sb;
        let writer = s.spawn(move || {
            let mut rng = Rng(writer_seed);
            let mut written = Vec::new();
            let mut i = BEFORE_START;
            while i < TOTAL {
                for _ in 0..(1 + rng.below(12)) {
                    if i < TOTAL {
                        written.push((submit(sb, i, kind_for(i)), kind_for(i)));
                        i += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(1 + rng.below(8)));
            }
            written
        });
        // Kill moments: some a few ms after the start (during start-up and recovery), the others
        // a random time after the daemon says it is watching, when it is deciding and moving
        // a batch of jobs.
        let mut delays = vec![2u64, 8, 30, 0, 0, 0, 0, 0];
        for i in (1..delays.len()).rev() {
            delays.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for (round, delay) in delays.into_iter().enumerate().take(ROUNDS) {
            let mut d = spawn(sb, round);
            if delay == 0 {
                wait_for(Duration::from_secs(20), || {
                    d.log_text().contains("watching")
                });
                std::thread::sleep(Duration::from_millis(rng.below(250)));
            } else {
                std::thread::sleep(Duration::from_millis(delay + rng.below(10)));
            }
            d.kill();
        }
        writer.join().unwrap()
    });
    jobs.extend(later);
    assert_eq!(jobs.len(), TOTAL);

    // Restarted for good: it completes what the crashes interrupted and decides the rest.
    let mut d = spawn(&sb, ROUNDS);
    assert_watching(&d, || all_logs(&sb));
    let expected_approved: BTreeSet<&String> = jobs
        .iter()
        .filter(|(_, k)| k.approved())
        .map(|(u, _)| u)
        .collect();
    let moves = sb.state().join("moves");
    let settled = wait_for(Duration::from_secs(60), || {
        expected_approved.iter().all(|u| {
            sb.job_dir("approved", u).is_dir()
                && fs::read_to_string(sb.job_dir("approved", u).join("metadata.json"))
                    .is_ok_and(|m| m.contains("\"approved\""))
        }) && fs::read_dir(&moves).map_or(true, |mut r| r.next().is_none())
    });
    let (_, status) = d.terminate();
    let ctx = || {
        format!(
            "seed {seed} (CRASH_SEED={seed} reuses this kill schedule)\n{}{}",
            summary(&sb),
            all_logs(&sb)
        )
    };
    assert!(
        settled,
        "the queue did not settle after the last restart\n{}",
        ctx()
    );
    assert!(
        status.success(),
        "the daemon did not stop cleanly on SIGTERM: {status}\n{}",
        ctx()
    );

    // Each job is in exactly one status folder, with metadata that agrees.
    let mut approved = BTreeSet::new();
    for (uid, kind) in &jobs {
        let status = sb.status_of(uid);
        let Some(status) = status else {
            panic!("job {uid} ({kind:?}) is in no status folder\n{}", ctx());
        };
        if *kind != Kind::Spoiled(Spoil::BrokenMetadata) {
            let meta = sb.metadata(&status, uid);
            assert_eq!(
                meta["status"],
                status.as_str(),
                "job {uid} ({kind:?}) in {status}/: {meta:#}\n{}",
                ctx()
            );
            assert_eq!(meta["uid"], uid.as_str());
        } else {
            let text = fs::read_to_string(sb.job_dir(&status, uid).join("metadata.json")).unwrap();
            assert_eq!(
                text, "{\"uid\": \"",
                "the broken metadata of {uid} was rewritten"
            );
        }
        match status.as_str() {
            "approved" => {
                approved.insert(uid);
            }
            "pending" => {}
            other => panic!("job {uid} ({kind:?}) ended in {other}/\n{}", ctx()),
        }
    }
    // Nothing the rules do not approve was approved, and everything they approve was.
    let wrongly: Vec<_> = approved
        .iter()
        .filter(|u| !jobs[**u].approved())
        .map(|u| (u, jobs[*u]))
        .collect();
    assert!(
        wrongly.is_empty(),
        "approved against the rules: {wrongly:?}\n{}",
        ctx()
    );
    let missing: Vec<_> = expected_approved.difference(&approved).collect();
    assert!(
        missing.is_empty(),
        "allowlisted valid jobs not approved: {missing:?}\n{}",
        ctx()
    );
    // Unknown senders' and invalid jobs never left pending/, and every approved job comes from
    // the allowlisted sender.
    for (uid, kind) in &jobs {
        if !kind.approved() {
            assert_eq!(
                sb.status_of(uid).as_deref(),
                Some("pending"),
                "job {uid} ({kind:?})\n{}",
                ctx()
            );
        }
    }
    for uid in &approved {
        assert_eq!(sb.metadata("approved", uid)["requester_email"], TRUSTED);
    }

    // No stray folders: every folder in a status folder is one of the jobs.
    for s in STATUSES {
        for e in fs::read_dir(sb.queue().join(s)).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                let name = e.file_name().into_string().unwrap();
                assert!(
                    jobs.contains_key(&name),
                    "unexpected folder {s}/{name}\n{}",
                    ctx()
                );
            }
        }
    }

    // No temporary files left anywhere, and no unfinished move in the journal.
    for root in [sb.queue(), sb.app_data(), sb.state()] {
        let temps: Vec<_> = walk(&root)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .contains(".syft.tmp.")
            })
            .collect();
        assert!(
            temps.is_empty(),
            "temporary files left behind: {temps:?}\n{}",
            ctx()
        );
    }
    let journal: Vec<_> = fs::read_dir(&moves)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        journal.is_empty(),
        "the move journal is not empty: {journal:?}\n{}",
        ctx()
    );

    // Approved jobs are locked: no permission file in them grants write or admin, and the code is
    // the code that was sent.
    for uid in &approved {
        let dir = sb.job_dir("approved", uid);
        let perm_files: Vec<_> = walk(&dir)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "syft.pub.yaml"))
            .collect();
        assert!(
            !perm_files.is_empty(),
            "job {uid} lost its permission files"
        );
        for p in perm_files {
            for rule in rules_of(&p) {
                assert!(
                    grants(&rule, "write") == 0 && grants(&rule, "admin") == 0,
                    "{} still grants write/admin: {rule}\n{}",
                    p.display(),
                    ctx()
                );
            }
        }
        assert_eq!(
            fs::read(dir.join("code/run.sh")).unwrap(),
            b"#!/bin/sh\npython3 main.py\n"
        );
    }
}
