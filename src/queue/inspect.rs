//! Reading a job folder into the facts the policy needs: metadata, code and its signature, and
//! every problem found on the way. Nothing here decides anything.

use std::path::Path;

use crate::core::signature;
use crate::queue::job::Inspection;
use crate::queue::layout::is_valid_uid;
use crate::queue::metadata::Metadata;

/// Reads a job folder: metadata, code, signature, and every problem found on the way.
pub fn inspect(dir: &Path, owner: &str) -> Inspection {
    let mut ins = inspect_files(dir, owner);
    crate::queue::content::add_findings(&mut ins);
    ins
}

fn inspect_files(dir: &Path, owner: &str) -> Inspection {
    let uid = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ins = Inspection {
        uid: uid.clone(),
        dir: dir.to_path_buf(),
        meta: None,
        scan: None,
        signature: None,
        problems: Vec::new(),
        ignored: None,
        findings: Default::default(),
    };
    if !is_valid_uid(&uid) {
        ins.ignored = Some(format!("folder name {uid:?} is not a job uid"));
        return ins;
    }
    match Metadata::read(dir) {
        Ok(m) => {
            if m.meta.uid != uid {
                ins.ignored = Some(format!(
                    "its metadata uid {:?} differs from the folder name {uid:?}",
                    m.meta.uid
                ));
                return ins;
            }
            if m.meta.target_email.to_lowercase() != owner {
                ins.ignored = Some(format!(
                    "it is addressed to {:?}, not to this datasite's owner {owner}",
                    m.meta.target_email
                ));
                return ins;
            }
            if !crate::core::email::is_valid(&m.meta.requester_email.to_lowercase()) {
                ins.problems.push(format!(
                    "requester_email {:?} is not a valid email",
                    m.meta.requester_email
                ));
            }
            ins.meta = Some(m);
        }
        Err(e) => ins.problems.push(e.to_string()),
    }
    let code = dir.join("code");
    match signature::scan_code(&code) {
        Ok(scan) => {
            ins.problems.extend(scan.problems.iter().cloned());
            // Code that was not read in full has no signature: one over part of it would lie.
            if scan.complete && !scan.files.iter().any(|f| f.path == "run.sh") {
                ins.problems
                    .push("code/run.sh is missing (the runner executes it)".into());
            }
            if let Some(m) = &ins.meta
                && scan.complete
            {
                ins.signature = Some(signature::signature_v1(
                    &m.meta.name,
                    &m.meta.description,
                    &m.meta.tags,
                    &scan.files,
                ));
            }
            ins.scan = Some(scan);
        }
        Err(e) => ins
            .problems
            .push(format!("the job has no usable code/ folder: {e}")),
    }
    ins
}
