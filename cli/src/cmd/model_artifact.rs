//! Models as OCI artifacts (CNCF ModelPack): `vouch model push`, and the model of
//! `vouch attest --model-artifact`, read from the artifact's manifest. Layout and trust:
//! `docs/model-artifacts.md`.

use std::path::Path;

use serde_json::json;
use vouch_attest::{ArtifactFile, Model, ModelArtifact, Role};
use vouch_model::{Digest, HashAlgorithm, ScanOptions};
use vouch_oci::ImageReference;
use vouch_oci::modelpack::{self, ArtifactLayer, PushFile};

use super::model::{human_bytes, ignore_set, model_root, print_json};
use crate::args::{IgnoreArgs, OutputArgs, RegistryArgs};
use crate::failure::{Failure, Result};

/// File extensions of code files (`application/vnd.cncf.model.code.v1.raw`).
const CODE_EXTENSIONS: [&str; 12] = [
    ".py", ".sh", ".js", ".ts", ".rs", ".go", ".c", ".cc", ".cpp", ".h", ".cu", ".ipynb",
];

/// The layer media type of a model file, by its role: weights, weight configuration (the
/// model's and the tokenizer's files), code, else documentation.
pub fn media_type_for(path: &str) -> &'static str {
    match Role::classify(path) {
        Role::Weights => modelpack::WEIGHT_RAW,
        Role::Config | Role::Tokenizer => modelpack::WEIGHT_CONFIG_RAW,
        Role::Other => {
            let lower = path.to_ascii_lowercase();
            if CODE_EXTENSIONS.iter().any(|e| lower.ends_with(e)) {
                modelpack::CODE_RAW
            } else {
                modelpack::DOC_RAW
            }
        }
    }
}

/// `vouch model push DIR REPO[:TAG]`.
pub fn push(
    dir: &Path,
    reference: &str,
    name: Option<String>,
    ignore: &IgnoreArgs,
    registry: &RegistryArgs,
    output: &OutputArgs,
) -> Result {
    let target = ImageReference::parse(reference)?;
    if target.digest().is_some() {
        return Err(Failure::undecided(format!(
            "`{reference}` names a digest; push to a tag: `REPO:TAG` (the digest is printed after the push)"
        ))
        .hint("`vouch model push DIR registry.example.com/models/llm:1.0`"));
    }
    // No tag: `latest`, as docker and oras do.
    let target = match target.tag() {
        Some(_) => target,
        None => target.with_tag("latest"),
    };
    let root = model_root(dir)?;
    let scan = ScanOptions {
        ignore: ignore_set(&root, ignore)?,
        reject_hard_links: false,
    };
    let entries = vouch_model::scan(&root, &scan)?;
    if entries.is_empty() {
        return Err(
            Failure::undecided(format!("`{}` holds no model files", dir.display()))
                .hint("give the directory that holds the model's files"),
        );
    }
    let files: Vec<PushFile> = entries
        .iter()
        .map(|e| {
            let (root, entry) = (root.clone(), e.clone());
            PushFile {
                path: e.path.to_string(),
                media_type: media_type_for(e.path.as_str()).to_owned(),
                open: Box::new(move || {
                    vouch_model::open_file(&root, &entry).map_err(|e| e.to_string())
                }),
                size: e.size,
            }
        })
        .collect();
    let name = name.unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let options = super::registry::options(registry)?;
    let pushed = modelpack::push(&target, &name, files, &options)?;
    let total: u64 = pushed.layers.iter().map(|l| l.size).sum();
    if output.json {
        return print_json(&json!({
            "reference": pushed.reference,
            "tag": target.to_string(),
            "manifestDigest": pushed.manifest_digest,
            "artifactType": modelpack::MODEL_ARTIFACT_TYPE,
            "files": pushed.layers.len(),
            "bytes": total,
            "bytesSent": pushed.bytes_sent,
            "layersSkipped": pushed.layers_skipped,
        }));
    }
    if !output.quiet {
        eprintln!(
            "pushed model `{name}` ({} files, {}; {} already in the registry) to {target}",
            pushed.layers.len(),
            human_bytes(total),
            pushed.layers_skipped,
        );
        eprintln!(
            "attest it with the image that serves it: `vouch attest --image IMAGE --model-artifact {} --key KEY --push`",
            pushed.reference
        );
    }
    println!("{}", pushed.reference);
    Ok(())
}

/// The model a ModelPack artifact's manifest describes (`bytes`, the manifest whose digest
/// is `digest`, in repository `repository`).
pub fn model_from_manifest(
    name: &str,
    repository: &str,
    digest: &str,
    layers: &[ArtifactLayer],
) -> Result<Model> {
    let digest = digest
        .strip_prefix("sha256:")
        .and_then(|h| Digest::from_hex(HashAlgorithm::Sha256, h))
        .ok_or_else(|| Failure::undecided(format!("`{digest}` is not a sha256 digest")))?;
    let files: Vec<ArtifactFile<'_>> = layers
        .iter()
        .map(|l| ArtifactFile {
            path: &l.path,
            size: l.size,
            digest: &l.digest,
        })
        .collect();
    let artifact = ModelArtifact {
        name: repository.to_owned(),
        digest,
        media_type: Some(modelpack::MODEL_ARTIFACT_TYPE.to_owned()),
    };
    Model::from_artifact(name, artifact, &files).map_err(|e| {
        Failure::rejected(e)
            .code("model-artifact")
            .hint("the artifact's layer annotations must name each file once, by a relative path inside the model; push it again with `vouch model push DIR REPO:TAG`")
    })
}

/// `vouch attest --model-artifact REF@sha256:...`: the model, from the manifest only.
pub fn attest_model(reference: &str, name: Option<&str>, registry: &RegistryArgs) -> Result<Model> {
    let r = ImageReference::parse_pinned(reference)?;
    let options = super::registry::options(registry)?;
    let (_, layers) = modelpack::fetch_manifest(&r, &options).map_err(|e| match e {
        vouch_oci::Error::Malformed { .. } => Failure::rejected(&e)
            .code("model-artifact")
            .hint("attest a ModelPack artifact with raw layers (`vouch model push DIR REPO:TAG` makes one)"),
        other => other.into(),
    })?;
    let repository = r.name();
    let default_name = repository
        .rsplit('/')
        .next()
        .unwrap_or(&repository)
        .to_owned();
    let digest = r.digest().unwrap_or_default();
    model_from_manifest(name.unwrap_or(&default_name), &repository, digest, &layers)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn manifest(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../testdata/modelpack/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn model_of(name: &str) -> std::result::Result<Model, String> {
        let bytes = manifest(name);
        let layers = modelpack::parse_manifest(&bytes)?;
        model_from_manifest(
            "tiny",
            "127.0.0.1:5000/m/tiny",
            &vouch_oci::sha256_digest(&bytes),
            &layers,
        )
        .map_err(|f| f.message)
    }

    #[test]
    fn files_sizes_and_digests_come_from_the_layers() {
        let m = model_of("oras-raw.json").unwrap();
        let files: Vec<(&str, u64, &str)> = m
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.size, f.role.name()))
            .collect();
        assert_eq!(
            files,
            [
                ("config.json", 22, "config"),
                ("model.safetensors", 64, "weights")
            ]
        );
        assert_eq!(
            m.files[1].resources[0].digest.to_string(),
            "sha256:54b74fa3b75131703c57f171843dc58b7ec633810c1d414697a7b314d5fc6d5d"
        );
        let a = m.artifact.unwrap();
        assert_eq!(a.name, "127.0.0.1:5000/m/tiny");
        assert_eq!(
            a.digest.to_string(),
            vouch_oci::sha256_digest(&manifest("oras-raw.json"))
        );
    }

    #[test]
    fn the_title_is_the_fallback_path() {
        let m = model_of("title-only.json").unwrap();
        assert_eq!(m.files[1].path.as_str(), "weights/model.safetensors");
    }

    #[test]
    fn untrusted_paths_are_refused() {
        for (fixture, says) in [
            ("dotdot.json", "`..`"),
            ("absolute.json", "absolute"),
            ("duplicate.json", "listed twice"),
        ] {
            let e = model_of(fixture).unwrap_err();
            assert!(e.contains(says), "{fixture}: {e}");
        }
    }

    #[test]
    fn tar_layers_are_refused() {
        let e = model_of("tar-layers.json").unwrap_err();
        assert!(e.contains("tar and compressed layers"), "{e}");
    }

    #[test]
    fn media_types_by_role() {
        assert_eq!(media_type_for("model.safetensors"), modelpack::WEIGHT_RAW);
        assert_eq!(
            media_type_for("tokenizer.json"),
            modelpack::WEIGHT_CONFIG_RAW
        );
        assert_eq!(media_type_for("config.json"), modelpack::WEIGHT_CONFIG_RAW);
        assert_eq!(media_type_for("modeling.py"), modelpack::CODE_RAW);
        assert_eq!(media_type_for("README.md"), modelpack::DOC_RAW);
    }
}
