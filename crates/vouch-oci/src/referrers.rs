//! The pure part of attestation storage: the artifact manifest, the referrers tag-schema
//! index, and picking attestations out of a referrers list. No I/O; tested with recorded JSON.
//!
//! Descriptors written by vouch carry their content inline (the OCI 1.1 `data` field): the
//! artifact manifest embeds the bundle, and the tag-schema index entry embeds the artifact
//! manifest. A reader that understands `data` finds everything in the one index it fetches;
//! one that does not fetches the manifest and the blob as usual, and both are always pushed.
//!
//! The layout is cosign v3's for Sigstore bundles (`specs/BUNDLE_SPEC.md` in cosign):
//! `artifactType` and layer media type = the bundle media type, config = the OCI empty
//! descriptor, `subject` = the image, and the annotations `dev.sigstore.bundle.content`,
//! `dev.sigstore.bundle.predicateType` and `org.opencontainers.image.created` on the manifest
//! and on its tag-schema index entry, which always carries the real `artifactType` (Kyverno
//! skips entries without it). Other tools' referrers of the same image (cosign signatures,
//! SBOMs, attestations of other predicate types) stay in the index and are skipped when
//! reading, by their artifact type or annotations, before anything is fetched for them.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    ATTESTATION_PREDICATE_TYPE, BUNDLE_CONTENT_ANNOTATION, BUNDLE_MEDIA_TYPE,
    BUNDLE_PREDICATE_TYPE_ANNOTATION, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST,
};

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

/// The annotations of a stored attestation: `extra` (the model digest, the creation time)
/// and the Sigstore bundle ones, which say it is a DSSE envelope of vouch's predicate type
/// (they win over keys of the same name in `extra`).
#[must_use]
pub fn attestation_annotations(extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut a = extra.clone();
    a.insert(
        BUNDLE_CONTENT_ANNOTATION.to_owned(),
        "dsse-envelope".to_owned(),
    );
    a.insert(
        BUNDLE_PREDICATE_TYPE_ANNOTATION.to_owned(),
        ATTESTATION_PREDICATE_TYPE.to_owned(),
    );
    a
}

/// Whether a referrer's annotations say it is not a vouch attestation: a message signature,
/// or a statement of another predicate type (cosign's own attestations, SLSA provenance).
/// Referrers without these annotations (older vouch versions wrote none) are not foreign.
/// Annotations are untrusted, but this only ever leaves a candidate out.
pub(crate) fn foreign(annotations: &BTreeMap<String, String>) -> bool {
    let other = |key: &str, ours: &str| annotations.get(key).is_some_and(|v| v != ours);
    other(BUNDLE_CONTENT_ANNOTATION, "dsse-envelope")
        || other(BUNDLE_PREDICATE_TYPE_ANNOTATION, ATTESTATION_PREDICATE_TYPE)
}

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

/// The next page of a referrers list, from the `Link` header of a page (`<URL>; rel="next"`,
/// RFC 8288, as the distribution spec's pagination uses): a path on the same registry, made
/// absolute with `origin` (`http(s)://HOST`). A link to another host is refused.
pub(crate) fn next_page(link: &str, origin: &str) -> Result<Option<String>, String> {
    for value in link.split(',') {
        let mut parts = value.split(';').map(str::trim);
        let Some(target) = parts
            .next()
            .and_then(|t| t.strip_prefix('<'))
            .and_then(|t| t.strip_suffix('>'))
        else {
            continue;
        };
        let next = parts.any(|p| {
            p.strip_prefix("rel=")
                .is_some_and(|r| r.trim_matches('"').split(' ').any(|r| r == "next"))
        });
        if !next {
            continue;
        }
        if target.starts_with('/') && !target.starts_with("//") {
            return Ok(Some(format!("{origin}{target}")));
        }
        if target
            .strip_prefix(origin)
            .is_some_and(|rest| rest.starts_with('/'))
        {
            return Ok(Some(target.to_owned()));
        }
        return Err(format!(
            "its next page `{target}` is not on the registry that served the list"
        ));
    }
    Ok(None)
}

/// One referrers list from its pages: the first page with every later page's `manifests`
/// appended.
pub(crate) fn join_pages(pages: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut all: Option<Value> = None;
    for page in pages {
        let v: Value = serde_json::from_slice(page)
            .map_err(|e| format!("a page of the referrers list is not JSON: {e}"))?;
        let entries = v
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match all
            .as_mut()
            .and_then(|a| a.get_mut("manifests"))
            .and_then(Value::as_array_mut)
        {
            Some(list) => list.extend(entries),
            None => all = Some(v),
        }
    }
    serde_json::to_vec(&all.unwrap_or_else(|| json!({ "manifests": [] })))
        .map_err(|e| e.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    manifests: Vec<Value>,
}

/// The attestation manifests a referrers index (from the API or the tag schema) lists, in
/// index order. Entries of other artifact types, bundles whose annotations say they are not
/// vouch attestations ([`foreign`]), and entries that are not descriptors at all (another
/// tool's, or a damaged one: [`merge_into_index`] keeps them, and one of them must not hide
/// the attestations next to it) are left out. Fails only on malformed JSON.
pub fn select_attestations(index: &[u8]) -> Result<Vec<Descriptor>, String> {
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| format!("the referrers index is malformed: {e}"))?;
    Ok(index
        .manifests
        .into_iter()
        .filter_map(|m| serde_json::from_value::<Descriptor>(m).ok())
        .filter(|d| d.artifact_type.as_deref() == Some(BUNDLE_MEDIA_TYPE))
        .filter(|d| d.media_type == OCI_MANIFEST && crate::is_sha256_digest(&d.digest))
        .filter(|d| !foreign(&d.annotations))
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Artifact {
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    subject: Option<Subject>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Only the subject's digest matters (the examples of cosign's bundle spec give no size).
#[derive(Debug, Deserialize)]
struct Subject {
    digest: String,
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
    fn the_artifact_manifest_has_cosign_v3s_bundle_layout() {
        let layer = desc('a', BUNDLE_MEDIA_TYPE);
        let subject = desc('b', OCI_INDEX);
        let extra = BTreeMap::from([
            (
                crate::CREATED_ANNOTATION.to_owned(),
                "2026-12-02T13:00:00Z".to_owned(),
            ),
            // A caller cannot make it claim another content or predicate type.
            (
                BUNDLE_CONTENT_ANNOTATION.to_owned(),
                "message-signature".to_owned(),
            ),
        ]);
        let m = artifact_manifest(&layer, &subject, &attestation_annotations(&extra));
        let v: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["mediaType"], OCI_MANIFEST);
        assert_eq!(v["artifactType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(v["config"]["mediaType"], OCI_EMPTY);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(v["layers"].as_array().unwrap().len(), 1);
        assert_eq!(v["layers"][0]["mediaType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(v["subject"]["mediaType"], OCI_INDEX);
        assert_eq!(v["subject"]["digest"], subject.digest.as_str());
        let a = &v["annotations"];
        assert_eq!(a[BUNDLE_CONTENT_ANNOTATION], "dsse-envelope");
        assert_eq!(
            a[BUNDLE_PREDICATE_TYPE_ANNOTATION],
            ATTESTATION_PREDICATE_TYPE
        );
        assert_eq!(a[crate::CREATED_ANNOTATION], "2026-12-02T13:00:00Z");
    }

    /// The manifest of `specs/BUNDLE_SPEC.md` in cosign (what `cosign attest` pushes).
    const COSIGN_MANIFEST: &str = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json",
      "schemaVersion":2,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json",
      "annotations":{"dev.sigstore.bundle.content":"dsse-envelope",
        "dev.sigstore.bundle.predicateType":"https://vouch.dev/attestation/v1",
        "org.opencontainers.image.created":"2024-03-08T18:18:20.406Z"},
      "config":{"mediaType":"application/vnd.oci.empty.v1+json",
        "digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
      "layers":[{"digest":"sha256:cafed00dcafed00dcafed00dcafed00dcafed00dcafed00dcafed00dcafed00d",
        "mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","size":4971}],
      "subject":{"digest":"sha256:c00010ffc00010ffc00010ffc00010ffc00010ffc00010ffc00010ffc00010ff",
        "mediaType":"application/vnd.oci.image.index.v1+json"}}"#;

    #[test]
    fn a_bundle_cosign_attached_is_read_like_ours() {
        let subject = "sha256:c00010ffc00010ffc00010ffc00010ffc00010ffc00010ffc00010ffc00010ff";
        let (layer, annotations) = bundle_layer(COSIGN_MANIFEST.as_bytes(), subject).unwrap();
        assert_eq!(layer.size, 4971);
        assert!(layer.data.is_none(), "fetched by digest");
        assert!(!foreign(&annotations));
    }

    #[test]
    fn select_skips_what_the_annotations_say_is_not_ours() {
        // What cosign's push leaves in the tag-schema index (go-containerregistry writes no
        // annotations there) and what the referrers API reports (the manifest's annotations).
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":700,
           "digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111",
           "artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":700,
           "digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222",
           "artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json",
           "annotations":{"dev.sigstore.bundle.content":"message-signature"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":700,
           "digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333",
           "artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json",
           "annotations":{"dev.sigstore.bundle.content":"dsse-envelope",
             "dev.sigstore.bundle.predicateType":"https://slsa.dev/provenance/v1"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":700,
           "digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444",
           "artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json",
           "annotations":{"dev.sigstore.bundle.content":"dsse-envelope",
             "dev.sigstore.bundle.predicateType":"https://vouch.dev/attestation/v1"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":700,
           "digest":"sha256:5555555555555555555555555555555555555555555555555555555555555555",
           "artifactType":"application/vnd.dsse.envelope.v1+json"}]}"#;
        let got: Vec<String> = select_attestations(idx)
            .unwrap()
            .into_iter()
            .map(|d| d.digest[7..8].to_owned())
            .collect();
        assert_eq!(got, ["1", "4"]);
    }

    #[test]
    fn the_next_page_stays_on_the_registry() {
        let o = "http://127.0.0.1:5000";
        let next = r#"</v2/m/referrers/sha256:ab?n=2&last=x>; rel="next""#;
        assert_eq!(
            next_page(next, o).unwrap().unwrap(),
            "http://127.0.0.1:5000/v2/m/referrers/sha256:ab?n=2&last=x"
        );
        let absolute = r#"<http://127.0.0.1:5000/v2/m/referrers/x>; rel=next"#;
        assert!(next_page(absolute, o).unwrap().is_some());
        assert_eq!(next_page(r#"</v2/x>; rel="prev""#, o).unwrap(), None);
        assert_eq!(next_page("", o).unwrap(), None);
        for elsewhere in [
            r#"<http://127.0.0.1:5000.evil.example/v2/x>; rel="next""#,
            r#"<https://evil.example/v2/x>; rel="next""#,
            r#"<//evil.example/v2/x>; rel="next""#,
        ] {
            assert!(next_page(elsewhere, o).is_err(), "{elsewhere}");
        }
    }

    #[test]
    fn pages_join_into_one_list() {
        let a = br#"{"schemaVersion":2,"manifests":[{"digest":"a"}]}"#.to_vec();
        let b = br#"{"schemaVersion":2,"manifests":[{"digest":"b"},{"digest":"c"}]}"#.to_vec();
        let v: Value = serde_json::from_slice(&join_pages(&[a, b]).unwrap()).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 3);
        assert_eq!(v["manifests"][2]["digest"], "c");
        assert!(join_pages(&[b"<html>".to_vec()]).is_err());
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
