//! The Python that tests drive real third-party tools with: PyPI's `syft-code-queue` (the
//! requester's client), `syft-perm`, `syft-crypto` (SyftBox identity keys) and `schemathesis`
//! (an API fuzzer), at pinned versions, in one virtualenv that the tests provision themselves
//! (`<target>/test-venv`, created with `python3 -m venv` and pip from PyPI, guarded by a lock
//! file). Set `SYFT_REVIEWER_PYTHON` to an interpreter that already has exactly these versions to
//! skip provisioning. When neither works the test fails, saying why: it is never skipped.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const REQUIREMENTS: [&str; 4] = [
    "syft-code-queue==0.1.27",
    "syft-perm==0.2.0",
    "syft-crypto==0.1.2",
    "schemathesis==4.32.5",
];

pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The installed versions of the packages, read without importing them (importing
/// syft_code_queue scans, and may delete from, the SyftBox folder of whatever config it finds).
fn installed_versions(python: &Path) -> Result<String, String> {
    let names: Vec<&str> = REQUIREMENTS
        .iter()
        .map(|r| r.split("==").next().unwrap())
        .collect();
    let script = format!(
        "import importlib.metadata as m\nfor n in {names:?}: print(n + '==' + m.version(n))"
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(describe(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The interpreter: `$SYFT_REVIEWER_PYTHON`, or a virtualenv provisioned (once, under a lock) in
/// the target folder.
pub fn python() -> PathBuf {
    let wanted = REQUIREMENTS.join("\n");
    if let Some(p) = std::env::var_os("SYFT_REVIEWER_PYTHON") {
        let python = PathBuf::from(p);
        match installed_versions(&python) {
            Ok(v) if v == wanted => return python,
            other => panic!(
                "SYFT_REVIEWER_PYTHON={} must have exactly {} installed (`{0} -m pip install {}`); \
                 found: {other:?}. Unset it to let the tests provision their own virtualenv.",
                python.display(),
                REQUIREMENTS.join(", "),
                REQUIREMENTS.join(" ")
            ),
        }
    }

    // CARGO_TARGET_TMPDIR is <target>/tmp, so this honours CARGO_TARGET_DIR.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let venv = target.join("test-venv");
    let python = venv.join("bin/python");
    fs::create_dir_all(target).unwrap();
    let lock = File::create(target.join("test-venv.lock")).unwrap();
    lock.lock().expect("lock target/test-venv.lock");

    if installed_versions(&python).is_ok_and(|v| v == wanted) {
        return python;
    }
    if venv.exists() {
        fs::remove_dir_all(&venv).unwrap();
    }
    let base = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .stdin(Stdio::null())
        .output();
    match base {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "could not create the test virtualenv with `python3 -m venv {}` (on Debian/Ubuntu: \
             apt-get install python3-venv; or set SYFT_REVIEWER_PYTHON to a Python with {}):\n{}",
            venv.display(),
            REQUIREMENTS.join(" "),
            describe(&out)
        ),
        Err(e) => panic!(
            "python3 is needed for the tests that drive the real Python tools, and could not be \
             run: {e} (or set SYFT_REVIEWER_PYTHON to a Python with {})",
            REQUIREMENTS.join(" ")
        ),
    }
    let install = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(REQUIREMENTS)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "could not install {} from PyPI into {} (network access to PyPI is needed, or set \
         SYFT_REVIEWER_PYTHON):\n{}",
        REQUIREMENTS.join(" "),
        venv.display(),
        describe(&install)
    );
    match installed_versions(&python) {
        Ok(v) if v == wanted => python,
        other => panic!(
            "after pip install, {} reports {other:?}, not {wanted:?}",
            python.display()
        ),
    }
}
