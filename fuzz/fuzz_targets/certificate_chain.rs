//! Certificate chains through vouch-trust (model-signing's certificate mode): DER
//! certificates laid end to end, signing certificate first, checked against the fixture
//! authorities (webpki, and vouch's own path check for CA:TRUE signing certificates), and
//! the same bytes as a PEM authorities file. The envelope's signature is made up, so
//! nothing may verify, whatever the chain.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use vouch_bundle::{Bundle, Envelope, Material, Signature};
use vouch_trust::Trust;

fuzz_target!(|data: &[u8]| {
    let _ = vouch_trust::CertificateAuthorities::from_pem(data);
    let chain = vouch_fuzz::split_der(data);
    if chain.is_empty() {
        return;
    }
    let bundle = Bundle {
        media_type: vouch_bundle::BUNDLE_V03_MEDIA_TYPE.into(),
        material: Material::Certificates(chain),
        envelope: Envelope {
            payload_type: vouch_bundle::IN_TOTO_PAYLOAD_TYPE.into(),
            payload: b"{}".to_vec(),
            signature: Signature {
                sig: vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
                keyid: None,
            },
        },
        has_transparency: false,
    };
    let trust = Trust::Certificates(vouch_fuzz::certificate_authorities().clone());
    // 2026-01-01, when every fixture certificate is valid.
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    match vouch_trust::verify_envelope(&bundle, &trust, when) {
        // The signature above is not a signature of anything.
        Ok(v) => panic!("a made-up signature verified: {:?}", v.get().signer),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
