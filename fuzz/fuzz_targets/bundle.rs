//! Sigstore bundle JSON as vouch parses it (`vouch_bundle::Bundle::from_json`): what parses
//! serialises to JSON that parses to the same bundle, and serialising is then stable.
//! (`to_json` writes the key and certificate bundles vouch signs: transparency-log entries
//! and timestamps are not written, so only `has_transparency` may change.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_bundle::Bundle;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::from_json(data) else {
        return;
    };
    let json = bundle.to_json();
    let again = Bundle::from_json(&json).expect("a written bundle parses");
    assert!(!again.has_transparency, "transparency data written");
    let expected = Bundle {
        has_transparency: false,
        ..bundle
    };
    assert_eq!(
        again, expected,
        "parse -> write -> parse changed the bundle"
    );
    assert_eq!(again.to_json(), json, "writing is not stable");
    // Each base64 field, alone, decodes the same whichever way it was parsed.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vouch_bundle::decode_base64(text);
    }
});
