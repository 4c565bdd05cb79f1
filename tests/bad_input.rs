//! Malformed and hostile jobs: the daemon keeps running, leaves the bad job in pending/ exactly
//! as it was (flagged when it is a job for this owner), says why in its log, and still approves
//! a good job submitted afterwards.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(10);
const BOB: &str = "bob@x.org";

/// A sandbox with bob allowlisted and the daemon running (extra args appended).
fn setup(extra: &[&str]) -> (Sandbox, Daemon) {
    let sb = Sandbox::new();
    let out = sb.cli(&["allow", "add", BOB]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = sb.start(extra);
    (sb, d)
}

/// Builds a job with `build` outside the queue, then renames it into pending/ as `folder`.
fn place(sb: &Sandbox, folder: &OsStr, build: impl FnOnce(&Path)) -> PathBuf {
    let tmp = sb.dir.path().join(format!("build-bad-{}", new_uid()));
    build(&tmp);
    let dest = sb.queue().join("pending").join(folder);
    fs::rename(&tmp, &dest).unwrap();
    dest
}

/// A normal job from bob, then `tweak` applied to it; placed under its own uid.
fn bad_job(sb: &Sandbox, tweak: impl FnOnce(&Path, &str)) -> (String, PathBuf) {
    let uid = new_uid();
    let dir = place(sb, OsStr::new(&uid), |tmp| {
        write_job(
            tmp,
            &uid,
            BOB,
            OWNER,
            "Analysis",
            "Counts rows",
            &["stats"],
            &simple_code(),
        );
        tweak(tmp, &uid);
    });
    (uid, dir)
}

fn replace_metadata(dir: &Path, text: &str) {
    fs::write(dir.join("metadata.json"), text).unwrap();
}

fn metadata_with(
    uid: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    // Created now, so that no job here expires while a test runs.
    let now =
        syft_reviewer::queue::metadata::format_naive(&syft_reviewer::queue::metadata::now_naive());
    let mut m = serde_json::json!({
        "uid": uid, "name": "Analysis", "requester_email": BOB, "target_email": OWNER,
        "code_folder": "/elsewhere/code", "description": "Counts rows",
        "created_at": now, "timeout_seconds": 86400, "tags": ["stats"],
        "status": "pending", "updated_at": now, "started_at": null,
        "completed_at": null, "output_folder": null, "error_message": null, "exit_code": null,
        "logs": null
    });
    edit(m.as_object_mut().unwrap());
    serde_json::to_string_pretty(&m).unwrap()
}

fn wait_log(d: &Daemon, needles: &[&str]) {
    assert!(
        wait_for(WAIT, || {
            let log = d.log_text();
            needles.iter().all(|n| log.contains(n))
        }),
        "the daemon never logged a line with {needles:?}; log:\n{}",
        d.log_text()
    );
    let log = d.log_text();
    assert!(
        log.lines().any(|l| needles.iter().all(|n| l.contains(n))),
        "no single log line has all of {needles:?}; log:\n{log}"
    );
}

fn wait_flagged(sb: &Sandbox, d: &Daemon, uid: &str) -> serde_json::Value {
    assert!(
        wait_for(WAIT, || !sb.decisions_for(uid, "flagged").is_empty()),
        "job {uid} was not flagged; decisions {:?}; log:\n{}",
        sb.decisions(),
        d.log_text()
    );
    sb.decisions_for(uid, "flagged").remove(0)
}

/// The daemon is alive and still does its job; the bad job is pending and unchanged.
fn still_works(
    sb: &Sandbox,
    d: &mut Daemon,
    bad: &[(PathBuf, std::collections::BTreeMap<PathBuf, Vec<u8>>)],
) {
    let good = sb.submit(BOB, &simple_code());
    assert!(
        wait_for(WAIT, || sb.status_of(&good).as_deref() == Some("approved")),
        "a good job was not approved after the bad one; log:\n{}",
        d.log_text()
    );
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon exited; log:\n{}",
        d.log_text()
    );
    for (dir, snap) in bad {
        assert!(dir.is_dir(), "{} is gone", dir.display());
        assert_eq!(&snapshot(dir), snap, "{} was modified", dir.display());
    }
    // Nothing bad was approved: the only approved job is the good one.
    let approved: Vec<String> = fs::read_dir(sb.queue().join("approved"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(approved, vec![good], "log:\n{}", d.log_text());
    let (took, status) = terminate(d);
    assert!(status.success() && took < Duration::from_secs(3));
}

#[test]
fn invalid_json_metadata_is_flagged() {
    let (sb, mut d) = setup(&[]);
    let (uid, dir) = bad_job(&sb, |tmp, _| {
        replace_metadata(tmp, "{\"uid\": \"oops\", \"name\": ")
    });
    let snap = snapshot(&dir);
    let e = wait_flagged(&sb, &d, &uid);
    assert!(
        e["reasons"][0].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );
    wait_log(&d, &[&uid, "flagged", "not valid JSON"]);
    still_works(&sb, &mut d, &[(dir, snap)]);
}

#[test]
fn metadata_that_is_not_an_object_is_flagged() {
    let (sb, mut d) = setup(&[]);
    let (uid, dir) = bad_job(&sb, |tmp, _| replace_metadata(tmp, "[1, 2, 3]"));
    let snap = snapshot(&dir);
    wait_flagged(&sb, &d, &uid);
    wait_log(&d, &[&uid, "flagged", "not a JSON object"]);
    still_works(&sb, &mut d, &[(dir, snap)]);
}

#[test]
fn wrong_field_types_are_flagged() {
    let (sb, mut d) = setup(&[]);
    let (tags_uid, tags_dir) = bad_job(&sb, |tmp, uid| {
        replace_metadata(
            tmp,
            &metadata_with(uid, |m| {
                m.insert("tags".into(), "stats".into());
            }),
        )
    });
    let (num_uid, num_dir) = bad_job(&sb, |tmp, _| {
        replace_metadata(
            tmp,
            &metadata_with("x", |m| {
                m.insert("uid".into(), 12345.into());
            }),
        )
    });
    let (to_uid, to_dir) = bad_job(&sb, |tmp, uid| {
        replace_metadata(
            tmp,
            &metadata_with(uid, |m| {
                m.insert("requester_email".into(), serde_json::json!(["bob@x.org"]));
            }),
        )
    });
    let (neg_uid, neg_dir) = bad_job(&sb, |tmp, uid| {
        replace_metadata(
            tmp,
            &metadata_with(uid, |m| {
                m.insert("timeout_seconds".into(), (-5).into());
            }),
        )
    });
    let snaps: Vec<_> = [&tags_dir, &num_dir, &to_dir, &neg_dir]
        .iter()
        .map(|d| ((*d).clone(), snapshot(d)))
        .collect();
    wait_flagged(&sb, &d, &tags_uid);
    wait_flagged(&sb, &d, &num_uid);
    wait_flagged(&sb, &d, &to_uid);
    wait_flagged(&sb, &d, &neg_uid);
    wait_log(&d, &[&tags_uid, "\"tags\" is a string"]);
    wait_log(&d, &[&num_uid, "\"uid\" is a number"]);
    wait_log(&d, &[&to_uid, "\"requester_email\" is a list"]);
    wait_log(&d, &[&neg_uid, "timeout_seconds"]);
    still_works(&sb, &mut d, &snaps);
}

fn peak_rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[test]
fn huge_metadata_is_refused_without_being_read() {
    let (sb, mut d) = setup(&[]);
    const SIZE: usize = 50 << 20;
    // Valid JSON from an allowlisted sender, padded with whitespace to 50 MB: if it were read
    // whole it would parse, so only the size check keeps it from being approved.
    let (real_uid, real_dir) = bad_job(&sb, |tmp, uid| {
        let mut text = metadata_with(uid, |_| {}).into_bytes();
        text.resize(SIZE, b' ');
        fs::write(tmp.join("metadata.json"), text).unwrap();
    });
    // And a sparse one (a hole of zeros after the JSON).
    let (sparse_uid, sparse_dir) = bad_job(&sb, |tmp, _| {
        let f = fs::OpenOptions::new()
            .append(true)
            .open(tmp.join("metadata.json"))
            .unwrap();
        f.set_len(SIZE as u64).unwrap();
    });
    let snaps = vec![
        (real_dir.clone(), snapshot(&real_dir)),
        (sparse_dir.clone(), snapshot(&sparse_dir)),
    ];
    wait_flagged(&sb, &d, &real_uid);
    wait_flagged(&sb, &d, &sparse_uid);
    wait_log(&d, &[&real_uid, "too large"]);
    wait_log(&d, &[&sparse_uid, "too large"]);
    let peak = peak_rss_kib(d.pid());
    assert!(
        peak < 40 * 1024,
        "the daemon's peak memory is {peak} KiB: it read the 50 MB file"
    );
    still_works(&sb, &mut d, &snaps);
}

#[test]
fn uid_and_folder_mismatch_is_left_alone() {
    let (sb, mut d) = setup(&[]);
    let folder = new_uid();
    let dir = place(&sb, OsStr::new(&folder), |tmp| {
        write_job(
            tmp,
            &new_uid(),
            BOB,
            OWNER,
            "Analysis",
            "",
            &[],
            &simple_code(),
        );
    });
    let snap = snapshot(&dir);
    wait_log(
        &d,
        &[
            &format!("ignoring pending/{folder}"),
            "differs from the folder name",
        ],
    );
    still_works(&sb, &mut d, &[(dir, snap)]);
    assert!(sb.decisions().iter().all(|e| e["uid"] != folder.as_str()));
}

#[test]
fn path_traversal_names_are_left_alone() {
    let (sb, mut d) = setup(&[]);
    // A folder whose name starts with dots, holding an otherwise valid job from bob.
    let dotted = place(&sb, OsStr::new("..something"), |tmp| {
        write_job(
            tmp,
            "..something",
            BOB,
            OWNER,
            "Analysis",
            "",
            &[],
            &simple_code(),
        );
    });
    // A metadata uid that is a path.
    let (uid, traversal) = bad_job(&sb, |tmp, _| {
        replace_metadata(tmp, &metadata_with("../../etc", |_| {}));
    });
    let snaps = vec![
        (dotted.clone(), snapshot(&dotted)),
        (traversal.clone(), snapshot(&traversal)),
    ];
    wait_log(&d, &[&format!("ignoring pending/{uid}"), "../../etc"]);
    wait_log(&d, &["..something", "not a job uid"]);
    still_works(&sb, &mut d, &snaps);
    // Nothing was created outside the status folders.
    for p in [
        sb.queue().join("etc"),
        sb.queue().parent().unwrap().join("etc"),
        sb.queue().join("approved/..something"),
        sb.queue().join("something"),
    ] {
        assert!(!p.exists(), "{} was created", p.display());
    }
    let mut names: Vec<String> = fs::read_dir(sb.queue())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected: Vec<String> = {
        let mut v: Vec<String> = STATUSES.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(names, expected);
}

#[test]
fn symlinks_under_code_are_never_approved() {
    let (sb, mut d) = setup(&[]);
    let (file_link, file_dir) = bad_job(&sb, |tmp, _| {
        std::os::unix::fs::symlink("/etc/passwd", tmp.join("code/data.csv")).unwrap();
    });
    let (dir_link, dir_dir) = bad_job(&sb, |tmp, _| {
        std::os::unix::fs::symlink("/etc", tmp.join("code/lib")).unwrap();
    });
    let (run_link, run_dir) = bad_job(&sb, |tmp, _| {
        fs::remove_file(tmp.join("code/run.sh")).unwrap();
        std::os::unix::fs::symlink("/bin/sh", tmp.join("code/run.sh")).unwrap();
    });
    let (code_link, code_dir) = bad_job(&sb, |tmp, _| {
        let real = tmp.with_extension("realcode");
        fs::rename(tmp.join("code"), &real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.join("code")).unwrap();
    });
    let snaps: Vec<_> = [&file_dir, &dir_dir, &run_dir, &code_dir]
        .iter()
        .map(|d| ((*d).clone(), snapshot(d)))
        .collect();
    for uid in [&file_link, &dir_link, &run_link, &code_link] {
        wait_flagged(&sb, &d, uid);
    }
    wait_log(&d, &[&file_link, "symbolic link"]);
    wait_log(&d, &[&dir_link, "symbolic link"]);
    wait_log(&d, &[&run_link, "symbolic link"]);
    wait_log(&d, &[&code_link, "code"]);
    still_works(&sb, &mut d, &snaps);
}

#[test]
fn non_utf8_file_name_under_code_is_flagged() {
    let (sb, mut d) = setup(&[]);
    let (uid, dir) = bad_job(&sb, |tmp, _| {
        let name = OsStr::from_bytes(b"data-\xff\xfe.csv");
        fs::write(tmp.join("code").join(name), "a,b\n").unwrap();
    });
    let snap = snapshot(&dir);
    wait_flagged(&sb, &d, &uid);
    wait_log(&d, &[&uid, "not UTF-8"]);
    still_works(&sb, &mut d, &[(dir, snap)]);
}

#[test]
fn non_utf8_job_folder_name_is_reported_and_left_alone() {
    // The periodic rescan reports folders whose events cannot be named.
    let (sb, mut d) = setup(&["--rescan-secs", "1"]);
    let name = OsStr::from_bytes(b"job-\xff\xfe");
    let dir = place(&sb, name, |tmp| {
        write_job(
            tmp,
            &new_uid(),
            BOB,
            OWNER,
            "Analysis",
            "",
            &[],
            &simple_code(),
        );
    });
    let snap = snapshot(&dir);
    wait_log(&d, &["job-", "not UTF-8"]);
    still_works(&sb, &mut d, &[(dir, snap)]);
}

#[test]
fn a_job_for_another_target_is_left_alone() {
    let (sb, mut d) = setup(&[]);
    let (uid, dir) = bad_job(&sb, |tmp, uid| {
        replace_metadata(
            tmp,
            &metadata_with(uid, |m| {
                m.insert("target_email".into(), "other@example.org".into());
            }),
        )
    });
    let snap = snapshot(&dir);
    wait_log(
        &d,
        &[&format!("ignoring pending/{uid}"), "other@example.org"],
    );
    still_works(&sb, &mut d, &[(dir, snap)]);
}

#[test]
fn a_job_without_run_sh_is_flagged() {
    let (sb, mut d) = setup(&[]);
    let (uid, dir) = bad_job(&sb, |tmp, _| {
        fs::remove_file(tmp.join("code/run.sh")).unwrap()
    });
    let (nocode_uid, nocode_dir) =
        bad_job(&sb, |tmp, _| fs::remove_dir_all(tmp.join("code")).unwrap());
    let (nometa_uid, nometa_dir) = bad_job(&sb, |tmp, _| {
        fs::remove_file(tmp.join("metadata.json")).unwrap()
    });
    let snaps = vec![
        (dir.clone(), snapshot(&dir)),
        (nocode_dir.clone(), snapshot(&nocode_dir)),
        (nometa_dir.clone(), snapshot(&nometa_dir)),
    ];
    wait_flagged(&sb, &d, &uid);
    wait_flagged(&sb, &d, &nocode_uid);
    wait_flagged(&sb, &d, &nometa_uid);
    wait_log(&d, &[&uid, "run.sh is missing"]);
    wait_log(&d, &[&nocode_uid, "code/"]);
    wait_log(&d, &[&nometa_uid, "metadata.json"]);
    still_works(&sb, &mut d, &snaps);
}

#[test]
fn a_job_with_too_many_files_is_flagged() {
    let (sb, mut d) = setup(&[]);
    let (uid, dir) = bad_job(&sb, |tmp, _| {
        let many = tmp.join("code/many");
        fs::create_dir_all(&many).unwrap();
        for i in 0..10_001 {
            fs::write(many.join(format!("f{i}")), "").unwrap();
        }
    });
    let snap = snapshot(&dir);
    wait_flagged(&sb, &d, &uid);
    wait_log(&d, &[&uid, "more than 10000 files"]);
    still_works(&sb, &mut d, &[(dir, snap)]);
}
