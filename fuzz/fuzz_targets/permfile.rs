//! `syft.pub.yaml` parsing: never panics; what parses is written back to text that parses to the
//! same rules, and the read-only version of it is read-only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syft_reviewer::store::permfile::PermFile;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = PermFile::parse(s) else {
        return;
    };
    let yaml = p.to_yaml();
    let back = PermFile::parse(&yaml).unwrap_or_else(|e| panic!("{yaml:?} does not parse: {e}"));
    assert_eq!(back, p, "round trip through {yaml:?}");
    let ro = p.read_only();
    assert!(ro.is_read_only());
});
