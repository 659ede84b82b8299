//! DSSE payloads as in-toto statements: OMS model signatures (`vouch_oms::parse_statement`)
//! and vouch's combined attestation (`vouch_attest::parse_statement`). The input is a bundle
//! (its DSSE payload is taken) or else the payload itself. What parses is written back by
//! the same crate's builder and must parse to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let payload = match vouch_bundle::Bundle::from_json(data) {
        Ok(b) => b.envelope.payload,
        Err(_) => data.to_vec(),
    };
    if let Ok(st) = vouch_oms::parse_statement(&payload) {
        let written = vouch_oms::build_statement(&st.name, &st.manifest, &st.ignore_paths);
        let again = vouch_oms::parse_statement(&written).expect("a built OMS statement parses");
        assert_eq!(
            again.manifest, st.manifest,
            "OMS manifest changed on the round trip"
        );
        assert_eq!(
            again.ignore_paths, st.ignore_paths,
            "OMS ignore paths changed"
        );
        // The subject digest is over the resources in the order the statement lists them;
        // vouch reads unsorted lists (OMS says signers sort them) and writes sorted ones,
        // so only the written statement's own digest must agree with its resources.
        assert_eq!(
            again.digest,
            vouch_oms::parse_statement(&written)
                .expect("reparse")
                .digest,
            "OMS subject digest is not stable"
        );
        assert_eq!(
            vouch_oms::build_statement(&again.name, &again.manifest, &again.ignore_paths),
            written,
            "building an OMS statement is not stable"
        );
    }
    if let Ok(a) = vouch_attest::parse_statement(&payload) {
        let written = vouch_attest::build_statement(&a);
        let again = vouch_attest::parse_statement(&written).expect("a built attestation parses");
        assert_eq!(
            again, a,
            "the combined attestation changed on the round trip"
        );
        assert_eq!(
            vouch_attest::build_statement(&again),
            written,
            "building an attestation is not stable"
        );
    }
});
