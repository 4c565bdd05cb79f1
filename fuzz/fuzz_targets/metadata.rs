//! `metadata.json` parsing: never panics; what parses survives a rewrite (status change included)
//! unchanged apart from the status fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syft_reviewer::queue::metadata::Metadata;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Metadata::parse(data) else {
        return;
    };
    let again = Metadata::parse(&m.to_json()).expect("what we write parses back");
    assert_eq!(again.meta, m.meta);
    assert_eq!(again.doc, m.doc);
    let mut changed = m.clone();
    changed.set_status("approved", Some("fuzz"));
    let after = Metadata::parse(&changed.to_json()).expect("a status change parses back");
    assert_eq!(after.meta.status.as_deref(), Some("approved"));
    assert_eq!(after.meta.uid, m.meta.uid);
    assert_eq!(after.meta.requester_email, m.meta.requester_email);
});
