//! OCI image layouts on disk (what `umoci` and `skopeo copy oci:` write): find the manifest
//! a tag names and check that its blob is really there with that digest.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::referrers::Descriptor;

/// The annotation an image layout uses for tags.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image found in a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutImage {
    /// The layout directory.
    pub dir: PathBuf,
    /// The tag, when the layout names one.
    pub tag: Option<String>,
    /// Manifest (or index) digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    manifests: Vec<Descriptor>,
}

/// Split `DIR[:TAG]`: a path that exists as given is a directory even when it contains `:`.
#[must_use]
pub fn split_spec(spec: &str) -> (PathBuf, Option<String>) {
    let whole = Path::new(spec);
    if whole.join("index.json").exists() {
        return (whole.to_path_buf(), None);
    }
    match spec.rsplit_once(':') {
        Some((dir, tag)) if !dir.is_empty() && !tag.contains('/') => {
            (PathBuf::from(dir), Some(tag.to_owned()))
        }
        _ => (whole.to_path_buf(), None),
    }
}

/// Find the image `DIR[:TAG]` names. Without a tag the layout must hold exactly one image.
pub fn resolve(spec: &str) -> Result<LayoutImage> {
    let (dir, tag) = split_spec(spec);
    let err = |reason: String| Error::Layout {
        path: dir.display().to_string(),
        reason,
    };
    let layout = std::fs::read(dir.join("oci-layout")).map_err(|e| {
        err(format!(
            "no `oci-layout` file ({e}); is this an OCI image layout (`skopeo copy ... oci:DIR:TAG`)?"
        ))
    })?;
    let version: serde_json::Value = serde_json::from_slice(&layout)
        .map_err(|e| err(format!("`oci-layout` is not JSON: {e}")))?;
    if version.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
        return Err(err(
            "`oci-layout` is not imageLayoutVersion 1.0.0".to_owned()
        ));
    }
    let index = std::fs::read(dir.join("index.json"))
        .map_err(|e| err(format!("cannot read `index.json`: {e}")))?;
    let index: Index = serde_json::from_slice(&index)
        .map_err(|e| err(format!("`index.json` is malformed: {e}")))?;
    let tag_of = |d: &Descriptor| d.annotations.get(REF_NAME).cloned();
    let chosen = match &tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| tag_of(d).as_deref() == Some(t.as_str()))
            .ok_or_else(|| err(format!("no image tagged `{t}`; tags: {}", tags(&index))))?,
        None => match index.manifests.as_slice() {
            [only] => only,
            [] => return Err(err("the layout holds no image".to_owned())),
            _ => {
                return Err(err(format!(
                    "the layout holds {} images; name one as DIR:TAG (tags: {})",
                    index.manifests.len(),
                    tags(&index)
                )));
            }
        },
    };
    let Some(hex) = chosen
        .digest
        .strip_prefix("sha256:")
        .filter(|_| crate::is_sha256_digest(&chosen.digest))
    else {
        return Err(err(format!("`{}` is not a sha256 digest", chosen.digest)));
    };
    let blob_path = dir.join("blobs").join("sha256").join(hex);
    let blob = std::fs::read(&blob_path)
        .map_err(|e| err(format!("manifest blob {}: {e}", chosen.digest)))?;
    let actual = crate::sha256_digest(&blob);
    if actual != chosen.digest || blob.len() as u64 != chosen.size {
        return Err(err(format!(
            "manifest blob {} is corrupt: {} bytes with digest {actual}, index says {} bytes",
            chosen.digest,
            blob.len(),
            chosen.size
        )));
    }
    Ok(LayoutImage {
        dir: dir.clone(),
        tag: tag.or_else(|| tag_of(chosen)),
        digest: chosen.digest.clone(),
        media_type: chosen.media_type.clone(),
        size: chosen.size,
    })
}

fn tags(index: &Index) -> String {
    let t: Vec<&str> = index
        .manifests
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
        .collect();
    if t.is_empty() {
        "none".to_owned()
    } else {
        t.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn layout(entries: &[(&str, &[u8])]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("blobs/sha256")).unwrap();
        let mut manifests = Vec::new();
        for (tag, blob) in entries {
            let digest = crate::sha256_digest(blob);
            std::fs::write(d.path().join("blobs/sha256").join(&digest[7..]), blob).unwrap();
            manifests.push(serde_json::json!({
                "mediaType": crate::OCI_MANIFEST, "digest": digest, "size": blob.len(),
                "annotations": { REF_NAME: tag }
            }));
        }
        std::fs::write(
            d.path().join("index.json"),
            serde_json::to_vec(&serde_json::json!({"schemaVersion":2,"manifests":manifests}))
                .unwrap(),
        )
        .unwrap();
        d
    }

    #[test]
    fn picks_the_tag_or_the_only_image() {
        let d = layout(&[("v1", b"{\"a\":1}")]);
        let spec = d.path().display().to_string();
        let only = resolve(&spec).unwrap();
        assert_eq!(only.digest, crate::sha256_digest(b"{\"a\":1}"));
        assert_eq!(only.tag.as_deref(), Some("v1"));
        assert_eq!(resolve(&format!("{spec}:v1")).unwrap(), only);
        let e = resolve(&format!("{spec}:v2")).unwrap_err().to_string();
        assert!(e.contains("no image tagged `v2`; tags: v1"), "{e}");
    }

    #[test]
    fn several_images_need_a_tag() {
        let d = layout(&[("a", b"{}"), ("b", b"[]")]);
        let e = resolve(&d.path().display().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("name one as DIR:TAG (tags: a, b)"), "{e}");
    }

    #[test]
    fn a_corrupt_blob_is_refused() {
        let d = layout(&[("v1", b"{\"a\":1}")]);
        let digest = crate::sha256_digest(b"{\"a\":1}");
        std::fs::write(
            d.path().join("blobs/sha256").join(&digest[7..]),
            b"{\"a\":2}",
        )
        .unwrap();
        let e = resolve(&d.path().display().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("corrupt"), "{e}");
    }

    #[test]
    fn not_a_layout() {
        let d = tempfile::tempdir().unwrap();
        let e = resolve(&d.path().display().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("oci-layout"), "{e}");
    }
}
