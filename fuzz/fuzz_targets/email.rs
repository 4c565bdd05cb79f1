//! Email file-name encoding: `decode` never panics; every decoded name is a valid email whose
//! encoding decodes back to it; `encode` is injective on valid emails (decode(encode(e)) == e).
#![no_main]

use libfuzzer_sys::fuzz_target;
use syft_reviewer::core::email;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = email::decode(s) {
        assert!(email::is_valid(&e), "decode({s:?}) = {e:?} is not valid");
        let name = email::encode(&e).expect("a decoded email encodes");
        assert_eq!(email::decode(&name).unwrap(), e, "round trip of {s:?}");
    }
    if let Ok(n) = email::normalize(s) {
        assert!(email::is_valid(&n));
        let name = email::encode(s).expect("a normalized email encodes");
        assert!(name.len() <= 255);
        assert!(!name.contains('/') && !name.contains('@') && !name.contains('.'));
        assert_eq!(email::decode(&name).unwrap(), n, "round trip of {s:?}");
    }
});
