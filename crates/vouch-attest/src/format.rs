//! The statement's JSON, written and read. Layout: `docs/attestation.md`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use vouch_model::{Digest, HashAlgorithm, IgnoreSet, Method, ModelPath, Resource};

use crate::{Attestation, Error, Image, Model, ModelArtifact, ModelFile, PREDICATE_TYPE, Role};

const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The statement type `cosign attest` writes (in-toto v0.1: the same fields vouch reads).
const STATEMENT_TYPE_V01: &str = "https://in-toto.io/Statement/v0.1";

type DigestSet = BTreeMap<String, String>;

fn digest_set(d: &Digest) -> DigestSet {
    BTreeMap::from([(d.algorithm.name().to_owned(), d.hex())])
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    name: String,
    digest: DigestSet,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Predicate {
    images: Vec<ImageJson>,
    model: ModelJson,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generator: Option<Generator>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Generator {
    name: String,
    version: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImageJson {
    name: String,
    digest: DigestSet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ModelJson {
    name: String,
    digest: DigestSet,
    hashing: Hashing,
    files: Vec<FileJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact: Option<ArtifactJson>,
}

/// The OCI artifact the model was read from (`vouch attest --model-artifact`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ArtifactJson {
    name: String,
    digest: DigestSet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Hashing {
    algorithm: String,
    method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ignore_paths: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    path: String,
    size: u64,
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<DigestSet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shards: Vec<ShardJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardJson {
    start: u64,
    end: u64,
    digest: DigestSet,
}

/// Serialise an attestation as an in-toto statement (the DSSE payload to sign).
pub fn build_statement(a: &Attestation) -> Vec<u8> {
    let mut subject: Vec<Subject> = a
        .images
        .iter()
        .map(|i| Subject {
            name: i.name.clone(),
            digest: digest_set(&i.digest),
        })
        .collect();
    // The model artifact after the images (which stay first), before the model.
    if let Some(artifact) = &a.model.artifact {
        subject.push(Subject {
            name: artifact.name.clone(),
            digest: digest_set(&artifact.digest),
        });
    }
    subject.push(Subject {
        name: a.model.name.clone(),
        digest: digest_set(&a.model.digest),
    });
    let m = &a.model;
    let predicate = Predicate {
        images: a
            .images
            .iter()
            .map(|i| ImageJson {
                name: i.name.clone(),
                digest: digest_set(&i.digest),
                media_type: i.media_type.clone(),
                reference: i.reference.clone(),
            })
            .collect(),
        model: ModelJson {
            name: m.name.clone(),
            digest: digest_set(&m.digest),
            hashing: Hashing {
                algorithm: m.algorithm.name().to_owned(),
                method: match m.method {
                    Method::Files => "files".to_owned(),
                    Method::Shards { .. } => "shards".to_owned(),
                },
                shard_size: match m.method {
                    Method::Files => None,
                    Method::Shards { size } => Some(size),
                },
                ignore_paths: m
                    .ignore_paths
                    .paths()
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
            },
            files: m
                .files
                .iter()
                .map(|f| {
                    let (digest, shards) = match m.method {
                        Method::Files => (
                            f.resources.first().map(|r| digest_set(&r.digest)),
                            Vec::new(),
                        ),
                        Method::Shards { .. } => (
                            None,
                            f.resources
                                .iter()
                                .map(|r| {
                                    let (start, end) = r.shard.unwrap_or((0, r.size.unwrap_or(0)));
                                    ShardJson {
                                        start,
                                        end,
                                        digest: digest_set(&r.digest),
                                    }
                                })
                                .collect(),
                        ),
                    };
                    FileJson {
                        path: f.path.to_string(),
                        size: f.size,
                        role: f.role.name().to_owned(),
                        digest,
                        shards,
                    }
                })
                .collect(),
            artifact: m.artifact.as_ref().map(|x| ArtifactJson {
                name: x.name.clone(),
                digest: digest_set(&x.digest),
                media_type: x.media_type.clone(),
            }),
        },
        metadata: a.metadata.clone(),
        generator: Some(Generator {
            name: "vouch".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
    };
    let statement = Statement {
        kind: STATEMENT_TYPE.to_owned(),
        subject,
        predicate_type: PREDICATE_TYPE.to_owned(),
        predicate: serde_json::to_value(predicate).unwrap_or_default(),
    };
    serde_json::to_vec(&statement).unwrap_or_default()
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

/// The one digest of a digest set, with a known algorithm.
fn one_digest(set: &DigestSet, what: &str, allowed: &[HashAlgorithm]) -> Result<Digest, Error> {
    let mut it = set.iter();
    let (Some((alg, hex)), None) = (it.next(), it.next()) else {
        return Err(malformed(format!("{what}: expected exactly one digest")));
    };
    let algorithm: HashAlgorithm = alg
        .parse()
        .map_err(|e: String| malformed(format!("{what}: {e}")))?;
    if !allowed.contains(&algorithm) {
        return Err(malformed(format!(
            "{what}: `{alg}` digest not expected here"
        )));
    }
    Digest::from_hex(algorithm, hex)
        .ok_or_else(|| malformed(format!("{what}: `{hex}` is not 64 lower-case hex digits")))
}

/// Parse and check the consistency of a combined attestation statement.
///
/// Checked here (beyond the shape): every path is a valid model path and appears once;
/// shards tile each file exactly; the model digest recomputed from the file list equals
/// the recorded one; the subjects are exactly the images plus the model, with the same
/// digests as the predicate, or exactly the images.
///
/// Subjects of the images only are what `cosign attest --type https://vouch.dev/attestation/v1
/// --predicate P` writes (its subject is the image it attests, and its statement type is
/// in-toto v0.1, also accepted). Nothing is lost: the model digest is in the signed
/// predicate and is recomputed from its file list either way; the model subject only helps
/// tools that index statements by subject.
pub fn parse_statement(payload: &[u8]) -> Result<Attestation, Error> {
    let st: Statement = serde_json::from_slice(payload)?;
    if st.kind != STATEMENT_TYPE && st.kind != STATEMENT_TYPE_V01 {
        return Err(Error::StatementType(st.kind));
    }
    if st.predicate_type != PREDICATE_TYPE {
        return Err(Error::PredicateType(st.predicate_type));
    }
    let p: Predicate = serde_json::from_value(st.predicate)?;
    const SHA256: &[HashAlgorithm] = &[HashAlgorithm::Sha256];

    let mut images = Vec::with_capacity(p.images.len());
    for i in p.images {
        if i.name.is_empty() {
            return Err(malformed("an image has an empty name"));
        }
        let digest = one_digest(&i.digest, &format!("image `{}`", i.name), SHA256)?;
        images.push(Image {
            name: i.name,
            digest,
            media_type: i.media_type,
            reference: i.reference,
        });
    }
    if images.is_empty() {
        return Err(malformed("the attestation covers no image"));
    }

    let m = p.model;
    let algorithm: HashAlgorithm = m.hashing.algorithm.parse().map_err(malformed)?;
    let method = match (m.hashing.method.as_str(), m.hashing.shard_size) {
        ("files", None) => Method::Files,
        ("shards", Some(size)) if size > 0 => Method::Shards { size },
        (method, size) => {
            return Err(malformed(format!(
                "hashing method `{method}` with shard size {size:?}"
            )));
        }
    };
    let mut ignore_paths = IgnoreSet::new();
    for path in &m.hashing.ignore_paths {
        ignore_paths.insert(ModelPath::parse(path)?);
    }
    let mut seen = HashSet::new();
    let mut files = Vec::with_capacity(m.files.len());
    for f in m.files {
        let path = ModelPath::parse(&f.path)?;
        if !seen.insert(path.clone()) {
            return Err(malformed(format!("`{path}` is listed twice")));
        }
        let role = Role::from_name(&f.role)
            .ok_or_else(|| malformed(format!("`{path}` has unknown role `{}`", f.role)))?;
        let what = format!("file `{path}`");
        let resources = match method {
            Method::Files => {
                let (Some(d), true) = (&f.digest, f.shards.is_empty()) else {
                    return Err(malformed(format!(
                        "{what}: a `files` attestation needs one digest per file"
                    )));
                };
                vec![Resource {
                    path: path.clone(),
                    shard: None,
                    size: Some(f.size),
                    digest: one_digest(d, &what, &[algorithm])?,
                }]
            }
            Method::Shards { size: shard_size } => {
                if f.digest.is_some() || f.shards.is_empty() {
                    return Err(malformed(format!(
                        "{what}: a `shards` attestation needs shards, not a file digest"
                    )));
                }
                let mut next = 0;
                let mut out = Vec::with_capacity(f.shards.len());
                for s in &f.shards {
                    let tiles = s.start == next
                        && s.end >= s.start
                        && s.end - s.start <= shard_size
                        && s.end <= f.size;
                    let full_or_last = s.end - s.start == shard_size || s.end == f.size;
                    if !tiles || !full_or_last {
                        return Err(malformed(format!(
                            "{what}: shard {}..{} does not tile the file",
                            s.start, s.end
                        )));
                    }
                    next = s.end;
                    out.push(Resource {
                        path: path.clone(),
                        shard: Some((s.start, s.end)),
                        size: Some(s.end - s.start),
                        digest: one_digest(&s.digest, &what, &[algorithm])?,
                    });
                }
                if next != f.size || (f.size == 0 && out.len() != 1) {
                    return Err(malformed(format!(
                        "{what}: shards cover {next} of {} bytes",
                        f.size
                    )));
                }
                out
            }
        };
        files.push(ModelFile {
            path,
            size: f.size,
            role,
            resources,
        });
    }
    let digest = one_digest(&m.digest, "model", SHA256)?;
    let artifact = match m.artifact {
        Some(x) => {
            if x.name.is_empty() {
                return Err(malformed("the model artifact has an empty name"));
            }
            let digest = one_digest(&x.digest, &format!("model artifact `{}`", x.name), SHA256)?;
            Some(ModelArtifact {
                name: x.name,
                digest,
                media_type: x.media_type,
            })
        }
        None => None,
    };
    let model = Model {
        name: m.name,
        digest,
        algorithm,
        method,
        ignore_paths,
        files,
        artifact,
    };
    let recomputed = model.manifest().model_digest();
    if recomputed != Some(digest) {
        return Err(malformed(format!(
            "the model digest {digest} does not match its file list (which hashes to {})",
            recomputed.map_or_else(|| "nothing".into(), |d| d.to_string())
        )));
    }

    // Subjects: exactly the images and the model, or exactly the images.
    let mut images_only: Vec<(String, Digest)> =
        images.iter().map(|i| (i.name.clone(), i.digest)).collect();
    let mut expected = images_only.clone();
    if let Some(x) = &model.artifact {
        expected.push((x.name.clone(), x.digest));
    }
    expected.push((model.name.clone(), model.digest));
    let mut actual = Vec::with_capacity(st.subject.len());
    for s in &st.subject {
        actual.push((
            s.name.clone(),
            one_digest(&s.digest, &format!("subject `{}`", s.name), SHA256)?,
        ));
    }
    let order =
        |a: &(String, Digest), b: &(String, Digest)| (&a.0, a.1.bytes).cmp(&(&b.0, b.1.bytes));
    expected.sort_by(order);
    images_only.sort_by(order);
    actual.sort_by(order);
    if expected != actual && images_only != actual {
        return Err(malformed(
            "the statement's subjects are not exactly its images, its model artifact (if any) and its model (or only its images)",
        ));
    }
    Ok(Attestation {
        images,
        model,
        metadata: p.metadata,
    })
}
