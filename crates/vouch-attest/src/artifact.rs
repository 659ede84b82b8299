//! A model published as an OCI artifact (CNCF ModelPack): the model read from the artifact's
//! manifest, without its weights. Layout: `docs/model-artifacts.md`.
//!
//! A raw ModelPack layer is the file itself, so its descriptor gives the file's size and
//! SHA-256; the path comes from the layer's annotation and is untrusted: it goes through the
//! same rules as a name found in a directory ([`ModelPath::parse`]: no absolute path, `..`,
//! `.` or empty component), and a path may appear once, and not both as a file and as a
//! directory holding other files.

use std::collections::BTreeSet;

use vouch_model::{Digest, HashAlgorithm, IgnoreSet, Manifest, Method, ModelPath, Resource};
use vouch_trust::{Signer, Verified};

use crate::{Attestation, Error, Model, RoledDifference};

/// The OCI artifact a model was read from: its repository and manifest digest. A subject of
/// the statement (after the images), so that a verifier can match it against the artifact
/// it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelArtifact {
    /// Repository without tag or digest, e.g. `registry.example.com/models/llm-weights`.
    pub name: String,
    /// The artifact's manifest digest.
    pub digest: Digest,
    /// The manifest's `artifactType` (informative).
    pub media_type: Option<String>,
}

/// One layer as the manifest gives it: an untrusted path, a size and a `sha256:` digest.
#[derive(Debug, Clone, Copy)]
pub struct ArtifactFile<'a> {
    pub path: &'a str,
    pub size: u64,
    pub digest: &'a str,
}

impl Model {
    /// The model that `files` (the layers of `artifact`'s manifest) describe, one SHA-256 per
    /// file, named `name`. Refuses invalid, repeated and conflicting paths, and digests that
    /// are not `sha256:` + 64 lower-case hex digits.
    pub fn from_artifact(
        name: &str,
        artifact: ModelArtifact,
        files: &[ArtifactFile<'_>],
    ) -> Result<Self, Error> {
        let mut resources = Vec::with_capacity(files.len());
        let mut seen = BTreeSet::new();
        for f in files {
            let path = ModelPath::parse(f.path)
                .map_err(|e| Error::Artifact(format!("layer path: {e}")))?;
            if path.is_single_file() {
                return Err(Error::Artifact("layer path `.` names no file".into()));
            }
            if !seen.insert(path.clone()) {
                return Err(Error::Artifact(format!(
                    "layer path `{path}` is listed twice"
                )));
            }
            let digest = f
                .digest
                .strip_prefix("sha256:")
                .and_then(|hex| Digest::from_hex(HashAlgorithm::Sha256, hex))
                .ok_or_else(|| {
                    Error::Artifact(format!(
                        "layer `{path}`: `{}` is not a sha256 digest",
                        f.digest
                    ))
                })?;
            resources.push(Resource {
                path,
                shard: None,
                size: Some(f.size),
                digest,
            });
        }
        // A file `a` and a file `a/b` cannot both exist in a directory.
        for p in &seen {
            let mut prefix = String::new();
            for c in p.components() {
                if !prefix.is_empty() && seen.iter().any(|q| q.as_str() == prefix) {
                    return Err(Error::Artifact(format!(
                        "layer paths `{prefix}` and `{p}` cannot both be files"
                    )));
                }
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(c);
            }
        }
        if resources.is_empty() {
            return Err(Error::Artifact("it lists no files".into()));
        }
        let manifest = Manifest::new(HashAlgorithm::Sha256, Method::Files, resources);
        let mut model = Self::from_manifest(name, &manifest, IgnoreSet::new())?;
        model.artifact = Some(artifact);
        Ok(model)
    }
}

/// Check that a model artifact's manifest lists exactly the attested model's files: the
/// layers `files` (untrusted: the path rules of [`Model::from_artifact`]) must give each
/// attested path, with its size and SHA-256, and nothing else. The model they describe, with
/// the checked paths: what `vouch-init --model-artifact` writes, and nothing else.
///
/// Which artifact this is ([`crate::check_artifact`]) is the caller's check, made first.
pub fn check_artifact_files(
    attestation: &Verified<(Attestation, Signer)>,
    files: &[ArtifactFile<'_>],
) -> Result<Verified<Model>, Error> {
    let attested = &attestation.get().0.model;
    let Some(artifact) = attested.artifact.clone() else {
        return Err(Error::ArtifactMismatch {
            expected: "a model artifact".to_owned(),
            found: "none (it attests a model directory)".to_owned(),
        });
    };
    if attested.algorithm != HashAlgorithm::Sha256 || attested.method != Method::Files {
        return Err(Error::Artifact(format!(
            "the attested model is hashed with {} ({}); a model artifact's layers are the SHA-256 of whole files",
            attested.algorithm,
            match attested.method {
                Method::Files => "files",
                _ => "shards",
            }
        )));
    }
    let listed = Model::from_artifact(&attested.name, artifact, files)?;
    let differences: Vec<RoledDifference> = vouch_model::diff(
        attested.manifest().resources(),
        listed.manifest().resources(),
    )
    .into_iter()
    .map(|d| RoledDifference {
        role: attested.role_of(d.path()),
        difference: d,
    })
    .collect();
    if !differences.is_empty() {
        return Err(Error::Mismatch(differences));
    }
    if listed.digest != attested.digest {
        // Unreachable when the files are equal; kept as a guard.
        return Err(Error::Malformed(format!(
            "the artifact's model digest {} differs from the attested {}",
            listed.digest, attested.digest
        )));
    }
    Ok(attestation.clone().map(|_| listed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const D: &str = "sha256:54b74fa3b75131703c57f171843dc58b7ec633810c1d414697a7b314d5fc6d5d";

    fn artifact() -> ModelArtifact {
        ModelArtifact {
            name: "r/m".into(),
            digest: Digest::sha256(b"manifest"),
            media_type: None,
        }
    }

    fn model(paths: &[&str]) -> Result<Model, Error> {
        let files: Vec<ArtifactFile<'_>> = paths
            .iter()
            .map(|p| ArtifactFile {
                path: p,
                size: 64,
                digest: D,
            })
            .collect();
        Model::from_artifact("m", artifact(), &files)
    }

    #[test]
    fn files_in_canonical_order_with_roles() {
        let m = model(&["model.safetensors", "config.json", "sub/tokenizer.json"]).unwrap();
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["config.json", "model.safetensors", "sub/tokenizer.json"]
        );
        assert_eq!(m.files[1].role, crate::Role::Weights);
        assert_eq!(m.files[1].size, 64);
        assert_eq!(m.artifact, Some(artifact()));
    }

    #[test]
    fn refuses_untrusted_paths() {
        for bad in ["../x", "/etc/passwd", "a/../b", "a//b", "./a", "", "."] {
            let e = model(&["config.json", bad]).unwrap_err().to_string();
            assert!(e.contains("path"), "{bad}: {e}");
        }
        let e = model(&["a", "a"]).unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
        let e = model(&["a", "a/b"]).unwrap_err().to_string();
        assert!(e.contains("cannot both be files"), "{e}");
    }

    #[test]
    fn the_artifact_is_a_subject_after_the_image_and_round_trips() {
        let a = crate::Attestation {
            images: vec![crate::Image {
                name: "r/server".into(),
                digest: Digest::sha256(b"image"),
                media_type: None,
                reference: None,
            }],
            model: model(&["config.json", "model.safetensors"]).unwrap(),
            metadata: Default::default(),
        };
        let payload = crate::build_statement(&a);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        let names: Vec<&str> = v["subject"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["r/server", "r/m", "m"]);
        assert_eq!(crate::parse_statement(&payload).unwrap(), a);
        // Dropping the artifact's subject (or changing its digest) breaks the statement.
        let mut v2 = v.clone();
        v2["subject"].as_array_mut().unwrap().remove(1);
        let e = crate::parse_statement(&serde_json::to_vec(&v2).unwrap()).unwrap_err();
        assert!(e.to_string().contains("subjects"), "{e}");
    }

    #[test]
    fn refuses_other_digests() {
        let files = [ArtifactFile {
            path: "a",
            size: 1,
            digest: "sha512:00",
        }];
        let e = Model::from_artifact("m", artifact(), &files).unwrap_err();
        assert!(e.to_string().contains("not a sha256 digest"), "{e}");
    }
}
