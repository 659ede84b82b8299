//! Sigstore bundles (v0.1 to v0.3) that carry a DSSE envelope, as data.
//!
//! This crate only parses and serialises; it checks no signature. It exists apart from the
//! verifier so that the one place that decides trust (`vouch-trust`) works on typed values,
//! and so that the signer and the verifier agree on one encoding.
//!
//! Two rules shape it:
//! - **The payload is kept as the signed bytes.** [`Envelope::payload`] is the base64-decoded
//!   payload exactly as it was signed; nothing here re-serialises it, so a verifier checks
//!   the signature over the bytes it then parses.
//! - **Liberal where old writers differ, strict where it matters.** Older model-signing
//!   bundles carry `"keyid": null` and `publicKey.rawBytes`; both are read. An envelope
//!   must carry exactly one signature; unknown media types are refused.

#![forbid(unsafe_code)]

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The media type vouch writes.
pub const BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

const KNOWN_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    BUNDLE_V03_MEDIA_TYPE,
];

/// Why bytes are not a usable bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not JSON, or JSON of the wrong shape.
    #[error("the bundle is not valid JSON of the Sigstore bundle shape: {0}")]
    Json(#[from] serde_json::Error),
    /// A media type this crate does not know.
    #[error("unsupported bundle media type `{0}` (expected {BUNDLE_V03_MEDIA_TYPE})")]
    MediaType(String),
    /// The bundle signs a message, not a DSSE envelope.
    #[error("the bundle holds a message signature, not a DSSE envelope with a statement")]
    NotDsse,
    /// A base64 field that does not decode.
    #[error("field `{field}` is not valid base64")]
    Base64 {
        /// The JSON field.
        field: &'static str,
    },
    /// Zero or several signatures in the envelope.
    #[error("the DSSE envelope must carry exactly one signature, found {0}")]
    SignatureCount(usize),
    /// Verification material that is neither a key hint nor certificates.
    #[error("the bundle's verification material names neither a public key nor a certificate")]
    NoMaterial,
}

/// How the signer is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Material {
    /// A public key given to the verifier out of band; `hint` (if any) is model-signing's
    /// hex SHA-256 of the key's PEM text.
    PublicKey {
        /// The key hint.
        hint: Option<String>,
    },
    /// X.509 certificates, signing certificate first (DER).
    Certificates(Vec<Vec<u8>>),
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The raw signature (DER for ECDSA).
    pub sig: Vec<u8>,
    /// The key id, if any.
    pub keyid: Option<String>,
}

/// A DSSE envelope with its payload decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The payload type, e.g. [`IN_TOTO_PAYLOAD_TYPE`].
    pub payload_type: String,
    /// The payload bytes exactly as signed.
    pub payload: Vec<u8>,
    /// The single signature.
    pub signature: Signature,
}

impl Envelope {
    /// The DSSE pre-authentication encoding, the bytes that are actually signed.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }
}

/// DSSE v1 pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A Sigstore bundle holding a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The bundle media type as written.
    pub media_type: String,
    /// Who signed.
    pub material: Material,
    /// What was signed.
    pub envelope: Envelope,
    /// True when the bundle carries transparency-log entries or timestamps (Sigstore
    /// keyless bundles); such bundles are verified by the Sigstore verifier.
    pub has_transparency: bool,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: String,
    verification_material: RawMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<RawEnvelope>,
    #[serde(default, skip_serializing)]
    message_signature: Option<serde_json::Value>,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<RawPublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<RawChain>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<RawCert>,
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp_verification_data: Option<serde_json::Value>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct RawPublicKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    #[serde(default, skip_serializing)]
    #[allow(dead_code)]
    raw_bytes: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    payload: String,
    payload_type: String,
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize, Serialize)]
struct RawSignature {
    sig: String,
    #[serde(default)]
    keyid: Option<String>,
}

/// The standard alphabet, padding optional (protobuf JSON mapping).
const B64_STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// The URL-safe alphabet, padding optional (protobuf JSON mapping).
const B64_URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// [`decode_base64`], naming the field when it fails.
fn decode(field: &'static str, s: &str) -> Result<Vec<u8>, Error> {
    decode_base64(s).ok_or(Error::Base64 { field })
}

/// Decode a base64 field of a bundle as the reference clients do (`None` when it does not). Bundles are the protobuf
/// JSON mapping of the Sigstore protobuf specs, whose `bytes` fields accept "either standard
/// or URL-safe base64 encoding with/without paddings"; sigstore-go decodes them with Go's
/// `encoding/base64`, which also skips `\r` and `\n` (some encoders wrap base64 at 64 or 76
/// columns). So: line breaks are dropped, the alphabet is URL-safe when `-` or `_` occurs and
/// standard otherwise (mixing both is an error), and padding may be left out but must be
/// right when present. Any other character (spaces included) is an error, as are non-zero
/// trailing bits.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let text: std::borrow::Cow<'_, str> = if s.contains(['\r', '\n']) {
        s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
    } else {
        s.into()
    };
    let engine = if text.contains(['-', '_']) {
        &B64_URL_SAFE_ANY_PADDING
    } else {
        &B64_STANDARD_ANY_PADDING
    };
    engine.decode(text.as_bytes()).ok()
}

impl Bundle {
    /// Parse bundle JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let raw: RawBundle = serde_json::from_slice(bytes)?;
        if !KNOWN_MEDIA_TYPES.contains(&raw.media_type.as_str()) {
            return Err(Error::MediaType(raw.media_type));
        }
        let (Some(env), None) = (raw.dsse_envelope, raw.message_signature) else {
            return Err(Error::NotDsse);
        };
        let vm = raw.verification_material;
        let material = if let Some(chain) = vm.x509_certificate_chain {
            let certs = chain
                .certificates
                .iter()
                .map(|c| {
                    decode(
                        "verificationMaterial.x509CertificateChain.certificates.rawBytes",
                        &c.raw_bytes,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            if certs.is_empty() {
                return Err(Error::NoMaterial);
            }
            Material::Certificates(certs)
        } else if let Some(cert) = vm.certificate {
            Material::Certificates(vec![decode(
                "verificationMaterial.certificate.rawBytes",
                &cert.raw_bytes,
            )?])
        } else if let Some(pk) = vm.public_key {
            Material::PublicKey {
                hint: pk.hint.filter(|h| !h.is_empty()),
            }
        } else {
            return Err(Error::NoMaterial);
        };
        if env.signatures.len() != 1 {
            return Err(Error::SignatureCount(env.signatures.len()));
        }
        let sig = env
            .signatures
            .into_iter()
            .next()
            .ok_or(Error::SignatureCount(0))?;
        Ok(Self {
            media_type: raw.media_type,
            material,
            envelope: Envelope {
                payload_type: env.payload_type,
                payload: decode("dsseEnvelope.payload", &env.payload)?,
                signature: Signature {
                    sig: decode("dsseEnvelope.signatures.sig", &sig.sig)?,
                    keyid: sig.keyid.filter(|k| !k.is_empty()),
                },
            },
            has_transparency: !vm.tlog_entries.is_empty()
                || vm.timestamp_verification_data.is_some(),
        })
    }

    /// Serialise as v0.3 bundle JSON, in the shape model-signing writes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut vm = RawMaterial::default();
        match &self.material {
            Material::PublicKey { hint } => {
                vm.public_key = Some(RawPublicKey {
                    hint: hint.clone(),
                    raw_bytes: None,
                })
            }
            Material::Certificates(certs) => {
                vm.x509_certificate_chain = Some(RawChain {
                    certificates: certs
                        .iter()
                        .map(|c| RawCert {
                            raw_bytes: B64.encode(c),
                        })
                        .collect(),
                });
            }
        }
        let raw = RawBundle {
            media_type: self.media_type.clone(),
            verification_material: vm,
            dsse_envelope: Some(RawEnvelope {
                payload: B64.encode(&self.envelope.payload),
                payload_type: self.envelope.payload_type.clone(),
                signatures: vec![RawSignature {
                    sig: B64.encode(&self.envelope.signature.sig),
                    keyid: Some(self.envelope.signature.keyid.clone().unwrap_or_default()),
                }],
            }),
            message_signature: None,
        };
        // Serialising plain structs of strings cannot fail.
        serde_json::to_vec(&raw).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OMS_KEY_BUNDLE: &str = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"58396eaf"},"tlogEntries":[]},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEQ=","keyid":""}]}}"#;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn reads_a_model_signing_key_bundle_and_round_trips() {
        let b = Bundle::from_json(OMS_KEY_BUNDLE.as_bytes()).unwrap();
        assert_eq!(
            b.material,
            Material::PublicKey {
                hint: Some("58396eaf".into())
            }
        );
        assert_eq!(b.envelope.payload, b"{}");
        assert_eq!(b.envelope.signature.keyid, None);
        assert!(!b.has_transparency);
        assert_eq!(String::from_utf8(b.to_json()).unwrap(), OMS_KEY_BUNDLE);
    }

    #[test]
    fn reads_old_bundles_with_null_keyid_and_raw_bytes() {
        let old = OMS_KEY_BUNDLE
            .replace(r#""keyid":"""#, r#""keyid":null"#)
            .replace(r#""hint":"58396eaf""#, r#""rawBytes":"AAAA""#);
        let b = Bundle::from_json(old.as_bytes()).unwrap();
        assert_eq!(b.material, Material::PublicKey { hint: None });
    }

    #[test]
    fn rejects_malformed_bundles() {
        let cases = [
            ("", "not valid JSON"),
            (&OMS_KEY_BUNDLE[..100], "not valid JSON"),
            (
                &OMS_KEY_BUNDLE.replace("v0.3+json", "v9+json"),
                "unsupported bundle media type",
            ),
            (
                &OMS_KEY_BUNDLE.replace("e30=", "e30=!"),
                "dsseEnvelope.payload",
            ),
            (
                &OMS_KEY_BUNDLE.replace(r#"{"sig":"MEQ=","keyid":""}"#, ""),
                "exactly one signature, found 0",
            ),
            (
                &OMS_KEY_BUNDLE.replace(r#""publicKey":{"hint":"58396eaf"},"#, ""),
                "neither a public key",
            ),
        ];
        for (input, want) in cases {
            let err = Bundle::from_json(input.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    /// A bundle written by model-signing (`testdata/oms/certificate.sig`: certificates,
    /// payload, signature) with every base64 field passed through `rewrite`.
    fn rewritten(rewrite: impl Fn(&str) -> String) -> (Bundle, Result<Bundle, Error>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/oms/certificate.sig");
        let bytes = std::fs::read(path).unwrap();
        let original = Bundle::from_json(&bytes).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let mut fields = vec![
            v["dsseEnvelope"]["payload"].clone(),
            v["dsseEnvelope"]["signatures"][0]["sig"].clone(),
        ];
        let certs = v["verificationMaterial"]["x509CertificateChain"]["certificates"]
            .as_array()
            .unwrap()
            .len();
        assert!(certs >= 2);
        for i in 0..certs {
            fields.push(
                v["verificationMaterial"]["x509CertificateChain"]["certificates"][i]["rawBytes"]
                    .clone(),
            );
        }
        let new: Vec<serde_json::Value> = fields
            .iter()
            .map(|f| serde_json::Value::String(rewrite(f.as_str().unwrap())))
            .collect();
        v["dsseEnvelope"]["payload"] = new[0].clone();
        v["dsseEnvelope"]["signatures"][0]["sig"] = new[1].clone();
        for i in 0..certs {
            v["verificationMaterial"]["x509CertificateChain"]["certificates"][i]["rawBytes"] =
                new[2 + i].clone();
        }
        (
            original,
            Bundle::from_json(&serde_json::to_vec(&v).unwrap()),
        )
    }

    fn wrap(s: &str, width: usize, eol: &str) -> String {
        let chars: Vec<char> = s.chars().collect();
        let mut out = chars
            .chunks(width)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(eol);
        out.push_str(eol);
        out
    }

    #[test]
    fn base64_wrapped_with_line_feeds_decodes_as_the_reference_clients_decode_it() {
        for width in [64, 76] {
            let (original, parsed) = rewritten(|s| wrap(s, width, "\n"));
            assert_eq!(parsed.unwrap(), original);
        }
    }

    #[test]
    fn base64_wrapped_with_crlf_decodes() {
        let (original, parsed) = rewritten(|s| wrap(s, 64, "\r\n"));
        assert_eq!(parsed.unwrap(), original);
    }

    #[test]
    fn base64_url_safe_and_unpadded_decodes_as_the_protobuf_json_mapping_says() {
        let url_safe = |s: &str| s.replace('+', "-").replace('/', "_");
        let (original, parsed) = rewritten(|s| url_safe(s).trim_end_matches('=').to_owned());
        assert_eq!(parsed.unwrap(), original);
        let (original, parsed) = rewritten(url_safe);
        assert_eq!(parsed.unwrap(), original);
        let (original, parsed) = rewritten(|s| s.trim_end_matches('=').to_owned());
        assert_eq!(parsed.unwrap(), original);
    }

    #[test]
    fn base64_with_other_characters_or_bad_padding_is_refused() {
        let bad = [
            ("e30= ", "space"),
            (" e30=", "leading space"),
            ("e3\t0=", "tab"),
            ("e3==", "wrong padding"),
            ("e30==", "too much padding"),
            ("e3+0_A==", "mixed alphabets"),
            ("e31=", "non-zero trailing bits"),
            ("e", "truncated"),
        ];
        for (payload, what) in bad {
            let input = OMS_KEY_BUNDLE.replace("e30=", &payload.replace('\t', "\\t"));
            let err = Bundle::from_json(input.as_bytes()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Base64 {
                        field: "dsseEnvelope.payload"
                    }
                ),
                "{what}: {err}"
            );
        }
        // The same payload written in the accepted ways.
        for payload in ["e30=", "e30", "e3\\n0=", "e30=\\r\\n"] {
            let input = OMS_KEY_BUNDLE.replace("e30=", payload);
            let b = Bundle::from_json(input.as_bytes()).unwrap();
            assert_eq!(b.envelope.payload, b"{}", "{payload}");
        }
    }

    #[test]
    fn wrapped_bundle_is_written_back_canonically() {
        let (original, parsed) = rewritten(|s| wrap(s, 64, "\n"));
        let parsed = parsed.unwrap();
        assert_eq!(Bundle::from_json(&parsed.to_json()).unwrap(), original);
        assert!(!String::from_utf8(parsed.to_json()).unwrap().contains("\\n"));
    }
}
