//! Random tokens, and the API token file in the private state folder that scripts present as
//! `Authorization: Bearer <token>`.

use std::path::Path;

use crate::durable;
use crate::error::{Error, Result};

/// `n` random bytes from the kernel.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // Keys and tokens must never be predictable: without the kernel's generator there is
    // nothing safe to fall back to.
    getrandom::fill(&mut b)
        .expect("the kernel random generator is available on every supported system");
    b
}

pub fn random_hex<const N: usize>() -> String {
    random_bytes::<N>()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Reads the API token, creating it (0600) on first use.
pub fn api_token(state_dir: &Path) -> Result<String> {
    let path = state_dir.join("api-token");
    match durable::read_capped(&path, 4096) {
        Ok(bytes) => {
            let token = String::from_utf8_lossy(&bytes).trim().to_string();
            if token.len() >= 32 {
                return Ok(token);
            }
        }
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => {}
        Err(e) => return Err(e),
    }
    let token = random_hex::<32>();
    durable::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)
        .map_err(|e| Error::invalid("could not create the API token", e.to_string()))?;
    Ok(token)
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
