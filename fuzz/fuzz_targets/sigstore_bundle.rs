//! Sigstore bundles through the full Sigstore verifier (`vouch_sigstore::verify` against the
//! production trusted root): certificates, log entries, checkpoints, timestamps, the base64
//! rewriting and the root-in-chain check. Nothing must panic; and a bundle that verifies for
//! one identity must not verify for another.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_sigstore::{Artifact, Signer};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// SHA-256 of the conformance vectors' `a.txt`.
const A_TXT: [u8; 32] = [
    0xa0, 0xcf, 0xc7, 0x12, 0x71, 0xd6, 0xe2, 0x78, 0xe5, 0x7c, 0xd3, 0x32, 0xff, 0x95, 0x7c, 0x3f,
    0x70, 0x43, 0xfd, 0xda, 0x35, 0x4c, 0x4c, 0xbb, 0x19, 0x0a, 0x30, 0xd5, 0x6e, 0xfa, 0x01, 0xbf,
];

fuzz_target!(|data: &[u8]| {
    let root = vouch_fuzz::trusted_root();
    let beacon = Signer::Identity {
        identity: IDENTITY.into(),
        issuer: ISSUER.into(),
    };
    let ok = vouch_sigstore::verify(data, root, &beacon, Artifact::Sha256(A_TXT)).is_ok();
    let _ = vouch_sigstore::verify_statement(data, root, &beacon);
    if ok {
        let other = Signer::Identity {
            identity: "https://example.com/someone-else".into(),
            issuer: ISSUER.into(),
        };
        assert!(
            vouch_sigstore::verify(data, root, &other, Artifact::Sha256(A_TXT)).is_err(),
            "a bundle verified for two identities"
        );
    }
});
