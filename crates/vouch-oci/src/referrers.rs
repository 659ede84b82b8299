//! The pure part of attestation storage: the artifact manifest, the referrers tag-schema
//! index, and picking attestations out of a referrers list. No I/O; tested with recorded JSON.
//!
//! Descriptors written by vouch carry their content inline (the OCI 1.1 `data` field): the
//! artifact manifest embeds the bundle, and the tag-schema index entry embeds the artifact
//! manifest. A reader that understands `data` finds everything in the one index it fetches;
//! one that does not fetches the manifest and the blob as usual, and both are always pushed.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{BUNDLE_MEDIA_TYPE, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The content itself, base64 (OCI 1.1 embedded content). Untrusted until
    /// [`Descriptor::embedded`] has checked it against `size` and `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// A descriptor of `bytes`, with the bytes embedded.
    #[must_use]
    pub fn embedding(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest: crate::sha256_digest(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
            data: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    /// The embedded content, if there is any: `Ok(None)` without `data`, an error when it
    /// is not base64 or is not the content the descriptor names (size and digest).
    pub fn embedded(&self, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let Some(data) = &self.data else {
            return Ok(None);
        };
        // base64 is 4 characters for every 3 bytes: refuse before decoding anything huge.
        if self.size > limit || (data.len() as u64) > limit.saturating_add(2) / 3 * 4 + 4 {
            return Err(format!(
                "its embedded content is larger than the {limit} bytes allowed"
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("its embedded content is not base64: {e}"))?;
        if bytes.len() as u64 != self.size {
            return Err(format!(
                "its embedded content is {} bytes, the descriptor says {}",
                bytes.len(),
                self.size
            ));
        }
        let actual = crate::sha256_digest(&bytes);
        if actual != self.digest {
            return Err(format!(
                "its embedded content has digest {actual}, the descriptor says {}",
                self.digest
            ));
        }
        Ok(Some(bytes))
    }
}

/// Largest tag-schema index vouch writes with content embedded: past it, the oldest entries
/// lose their `data` (they stay listed and are fetched by digest), so re-attesting an image
/// many times never makes its index unreasonably large.
pub const EMBED_BUDGET: usize = 256 << 10;

/// The empty JSON object `{}` used as the config of artifacts.
pub(crate) const EMPTY_CONFIG: &[u8] = b"{}";

/// The artifact manifest that stores one bundle (`layer`) attached to `subject`.
#[must_use]
pub fn artifact_manifest(
    layer: &Descriptor,
    subject: &Descriptor,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {
            "mediaType": OCI_EMPTY,
            "digest": crate::sha256_digest(EMPTY_CONFIG),
            "size": EMPTY_CONFIG.len(),
            "data": "e30=",
        },
        "layers": [layer],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
    });
    if !annotations.is_empty()
        && let Some(obj) = m.as_object_mut()
    {
        obj.insert("annotations".to_owned(), json!(annotations));
    }
    // serde_json::Value serialisation cannot fail.
    serde_json::to_vec(&m).unwrap_or_default()
}

/// The referrers tag-schema index with `entry` added: `existing` is the index currently at
/// the tag (`None` when the tag does not exist). Entries already there, and any fields this
/// crate does not know, are kept; an entry with the same digest is not added twice.
pub fn merge_into_index(existing: Option<&[u8]>, entry: &Descriptor) -> Result<Vec<u8>, String> {
    let mut index = match existing {
        None => json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] }),
        Some(bytes) => {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| format!("the referrers index is not JSON: {e}"))?;
            if v.get("manifests").and_then(Value::as_array).is_none() {
                return Err(
                    "the referrers tag holds something that is not an image index".to_owned(),
                );
            }
            v
        }
    };
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| "the referrers index has no `manifests` list".to_owned())?;
    let present = manifests
        .iter()
        .any(|m| m.get("digest").and_then(Value::as_str) == Some(entry.digest.as_str()));
    if !present {
        manifests.push(json!(entry));
    }
    let mut bytes = serde_json::to_vec(&index).map_err(|e| e.to_string())?;
    // Over budget: drop embedded content, oldest entries first, newest last.
    let mut i = 0;
    while bytes.len() > EMBED_BUDGET {
        let Some(m) = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .and_then(|l| l.get_mut(i))
        else {
            break;
        };
        if m.as_object_mut().and_then(|o| o.remove("data")).is_some() {
            bytes = serde_json::to_vec(&index).map_err(|e| e.to_string())?;
        }
        i += 1;
    }
    Ok(bytes)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    manifests: Vec<Value>,
}

/// The attestation manifests a referrers index (from the API or the tag schema) lists, in
/// index order. Entries of other artifact types are left out, and so are entries that are
/// not descriptors at all (another tool's, or a damaged one: [`merge_into_index`] keeps
/// them, and one of them must not hide the attestations next to it). Fails only on
/// malformed JSON.
pub fn select_attestations(index: &[u8]) -> Result<Vec<Descriptor>, String> {
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| format!("the referrers index is malformed: {e}"))?;
    Ok(index
        .manifests
        .into_iter()
        .filter_map(|m| serde_json::from_value::<Descriptor>(m).ok())
        .filter(|d| d.artifact_type.as_deref() == Some(BUNDLE_MEDIA_TYPE))
        .filter(|d| d.media_type == OCI_MANIFEST && crate::is_sha256_digest(&d.digest))
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Artifact {
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The bundle layer of a stored artifact manifest, after checking that it is a vouch
/// attestation attached to `subject_digest`.
pub(crate) fn bundle_layer(
    manifest: &[u8],
    subject_digest: &str,
) -> Result<(Descriptor, BTreeMap<String, String>), String> {
    let a: Artifact =
        serde_json::from_slice(manifest).map_err(|e| format!("not an OCI manifest: {e}"))?;
    if a.artifact_type.as_deref() != Some(BUNDLE_MEDIA_TYPE) {
        return Err(format!(
            "artifact type is {:?}, not `{BUNDLE_MEDIA_TYPE}`",
            a.artifact_type
        ));
    }
    match &a.subject {
        Some(s) if s.digest == subject_digest => {}
        Some(s) => {
            return Err(format!(
                "it is attached to {}, not to {subject_digest}",
                s.digest
            ));
        }
        None => return Err("it has no subject".to_owned()),
    }
    let mut layers = a
        .layers
        .into_iter()
        .filter(|l| l.media_type == BUNDLE_MEDIA_TYPE);
    let (Some(layer), None) = (layers.next(), layers.next()) else {
        return Err("it does not hold exactly one bundle layer".to_owned());
    };
    if !crate::is_sha256_digest(&layer.digest) {
        return Err(format!("layer digest `{}` is not sha256", layer.digest));
    }
    if layer.size > crate::MAX_BUNDLE_BYTES {
        return Err(format!(
            "its bundle is {} bytes, more than the {} allowed",
            layer.size,
            crate::MAX_BUNDLE_BYTES
        ));
    }
    Ok((layer, a.annotations))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn desc(digest_byte: char, media: &str) -> Descriptor {
        Descriptor {
            media_type: media.to_owned(),
            digest: format!("sha256:{}", digest_byte.to_string().repeat(64)),
            size: 10,
            artifact_type: None,
            annotations: BTreeMap::new(),
            data: None,
        }
    }

    #[test]
    fn artifact_manifest_round_trips_through_bundle_layer() {
        let layer = desc('a', BUNDLE_MEDIA_TYPE);
        let subject = desc('b', OCI_MANIFEST);
        let ann = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let m = artifact_manifest(&layer, &subject, &ann);
        let v: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["artifactType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(v["subject"]["digest"], subject.digest.as_str());
        assert_eq!(v["config"]["size"], 2);
        let (got, got_ann) = bundle_layer(&m, &subject.digest).unwrap();
        assert_eq!(got, layer);
        assert_eq!(got_ann, ann);
        // Attached to another image: refused.
        let err = bundle_layer(&m, &desc('c', OCI_MANIFEST).digest).unwrap_err();
        assert!(err.contains("attached to sha256:bbbb"), "{err}");
    }

    #[test]
    fn bundle_layer_refuses_other_artifacts_and_oversized_bundles() {
        let subject = desc('b', OCI_MANIFEST);
        let mut layer = desc('a', BUNDLE_MEDIA_TYPE);
        layer.size = crate::MAX_BUNDLE_BYTES + 1;
        let m = artifact_manifest(&layer, &subject, &BTreeMap::new());
        assert!(
            bundle_layer(&m, &subject.digest)
                .unwrap_err()
                .contains("allowed")
        );
        let other = br#"{"artifactType":"application/x-sbom","layers":[]}"#;
        assert!(bundle_layer(other, &subject.digest).is_err());
        assert!(bundle_layer(b"[", &subject.digest).is_err());
    }

    #[test]
    fn merge_creates_appends_and_deduplicates() {
        let mut e1 = desc('1', OCI_MANIFEST);
        e1.artifact_type = Some(BUNDLE_MEDIA_TYPE.to_owned());
        let first = merge_into_index(None, &e1).unwrap();
        let again = merge_into_index(Some(&first), &e1).unwrap();
        let v: Value = serde_json::from_slice(&again).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(v["mediaType"], OCI_INDEX);

        // Somebody else's entry (an SBOM) and unknown fields survive.
        let foreign = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "x-extra":1,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222",
            "size":3,"artifactType":"application/spdx+json"}]}"#;
        let merged = merge_into_index(Some(foreign), &e1).unwrap();
        let v: Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(v["x-extra"], 1);
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(select_attestations(&merged).unwrap(), vec![e1]);
    }

    #[test]
    fn merge_refuses_a_tag_that_is_not_an_index() {
        assert!(
            merge_into_index(
                Some(br#"{"schemaVersion":2,"layers":[]}"#),
                &desc('1', OCI_MANIFEST)
            )
            .is_err()
        );
        assert!(merge_into_index(Some(b"nope"), &desc('1', OCI_MANIFEST)).is_err());
    }

    #[test]
    fn select_skips_other_types_and_bad_digests() {
        let idx = br#"{"manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:zz","size":1,
           "artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json",
           "digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":1,
           "artifactType":"application/spdx+json"}]}"#;
        assert!(select_attestations(idx).unwrap().is_empty());
        assert!(select_attestations(b"{}").unwrap().is_empty());
        assert!(select_attestations(b"<html>").is_err());
    }

    #[test]
    fn embedded_content_is_checked_against_its_descriptor() {
        let d = Descriptor::embedding(BUNDLE_MEDIA_TYPE, b"{\"bundle\":1}");
        assert_eq!(d.embedded(1024).unwrap().unwrap(), b"{\"bundle\":1}");
        assert_eq!(desc('a', OCI_MANIFEST).embedded(1024).unwrap(), None);

        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        // Same length, other bytes: the digest gives it away.
        let mut swapped = d.clone();
        swapped.data = Some(b64(b"{\"bundle\":2}"));
        assert!(swapped.embedded(1024).unwrap_err().contains("digest"));
        let mut short = d.clone();
        short.data = Some(b64(b"{}"));
        assert!(short.embedded(1024).unwrap_err().contains("bytes"));
        let mut garbage = d.clone();
        garbage.data = Some("not base64!".into());
        assert!(garbage.embedded(1024).unwrap_err().contains("base64"));
        // Over the limit: refused before decoding, whatever the descriptor claims.
        assert!(d.embedded(4).unwrap_err().contains("allowed"));
        let mut lying = d;
        lying.size = 1;
        lying.data = Some("A".repeat(10_000));
        assert!(lying.embedded(1024).unwrap_err().contains("allowed"));
    }

    #[test]
    fn an_embedded_bundle_survives_the_artifact_manifest() {
        let bundle = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#;
        let layer = Descriptor::embedding(BUNDLE_MEDIA_TYPE, bundle);
        let subject = desc('b', OCI_MANIFEST);
        let m = artifact_manifest(&layer, &subject, &BTreeMap::new());
        let (got, _) = bundle_layer(&m, &subject.digest).unwrap();
        assert_eq!(got.embedded(1 << 20).unwrap().unwrap(), bundle);
    }

    #[test]
    fn an_index_over_budget_sheds_the_oldest_embedded_content() {
        let big = vec![b'x'; EMBED_BUDGET / 3];
        let mut index = None;
        let mut entries = Vec::new();
        for i in 0..5u8 {
            let mut content = big.clone();
            content.push(i);
            let e = Descriptor {
                artifact_type: Some(BUNDLE_MEDIA_TYPE.to_owned()),
                ..Descriptor::embedding(OCI_MANIFEST, &content)
            };
            index = Some(merge_into_index(index.as_deref(), &e).unwrap());
            entries.push(e);
        }
        let index = index.unwrap();
        assert!(index.len() <= EMBED_BUDGET, "{} bytes", index.len());
        let listed = select_attestations(&index).unwrap();
        assert_eq!(listed.len(), 5, "every entry stays listed");
        assert!(listed[0].data.is_none(), "the oldest lost its content");
        assert_eq!(listed[4], entries[4], "the newest keeps its content");
    }

    /// Found by the `oci_manifest` fuzz target: an index with one entry that is not a
    /// descriptor (no `digest`) was kept by `merge_into_index`, and then the merged index,
    /// attestations and all, could not be read.
    #[test]
    fn entry_that_is_not_a_descriptor_does_not_hide_the_attestations() {
        let existing = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":345}]}"#;
        let entry = Descriptor::embedding(OCI_MANIFEST, b"{}");
        let entry = Descriptor {
            artifact_type: Some(BUNDLE_MEDIA_TYPE.to_owned()),
            ..entry
        };
        let merged = merge_into_index(Some(existing), &entry).unwrap();
        let found = select_attestations(&merged).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].digest, entry.digest);
        assert!(select_attestations(b"{\"manifests\": 1}").is_err());
    }
}
