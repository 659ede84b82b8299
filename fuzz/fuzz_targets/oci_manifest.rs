//! OCI manifests, image indexes and referrers indexes as fetched from a registry
//! (`vouch_oci`): the referrers index and its inline `data` (bounded), merging a new entry
//! into an existing tag-schema index, an artifact manifest's bundle layer, and the media
//! type sniffing of fetched manifests. A merged index lists the new entry once and keeps
//! every attestation it had.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_oci::{Descriptor, fuzzing, merge_into_index, select_attestations};

const SUBJECT: &str = "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::manifest_media_type(data);
    let _ = fuzzing::bundle_layer(data, SUBJECT);
    let before = select_attestations(data);
    if let Ok(list) = &before {
        for d in list {
            if let Ok(Some(bytes)) = d.embedded(1 << 20) {
                assert_eq!(
                    vouch_oci::sha256_digest(&bytes),
                    d.digest,
                    "inline data accepted whose digest differs"
                );
                assert_eq!(bytes.len() as u64, d.size, "inline data of another size");
            }
        }
    }
    let entry = Descriptor::embedding(
        "application/vnd.oci.image.manifest.v1+json",
        br#"{"schemaVersion":2}"#,
    );
    if let Ok(merged) = merge_into_index(Some(data), &entry) {
        let after = select_attestations(&merged).expect("a merged index parses");
        if let Ok(list) = &before {
            for d in list {
                assert!(
                    after.iter().any(|a| a.digest == d.digest),
                    "merging dropped {}",
                    d.digest
                );
            }
        }
        let again = merge_into_index(Some(&merged), &entry).expect("merging twice");
        let twice = select_attestations(&again).expect("a merged index parses");
        assert_eq!(
            twice.len(),
            after.len(),
            "merging the same entry twice added it twice"
        );
    }
});
