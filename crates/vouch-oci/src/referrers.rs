//! The pure part of attestation storage: the artifact manifest, the referrers tag-schema
//! index, and picking attestations out of a referrers list. No I/O; tested with recorded JSON.

use std::collections::BTreeMap;

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
}

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
    serde_json::to_vec(&index).map_err(|e| e.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The attestation manifests a referrers index (from the API or the tag schema) lists, in
/// index order. Entries of other artifact types are left out. Fails only on malformed JSON.
pub fn select_attestations(index: &[u8]) -> Result<Vec<Descriptor>, String> {
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| format!("the referrers index is malformed: {e}"))?;
    Ok(index
        .manifests
        .into_iter()
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
}
