//! `config.yaml` parsing: never panics, and what parses yields its rule sets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syft_reviewer::core::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = Config::parse(s) {
        let _ = cfg.rule_sets();
    }
});
