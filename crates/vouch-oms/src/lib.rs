//! The OpenSSF Model Signing (OMS) statement, byte-compatible with `model-signing` 1.1.1.
//!
//! An OMS signature is an in-toto Statement v1 with predicate type
//! `https://model_signing/signature/v1.0`:
//!
//! - `subject`: one entry, the model name and `sha256` = SHA-256 over the raw digests of all
//!   resources, concatenated in resource order;
//! - `predicate.serialization`: how the model was cut and hashed (`method` `files` or
//!   `shards`, `hash_type`, `shard_size`, `allow_symlinks`, `ignore_paths`);
//! - `predicate.resources`: `{name, algorithm, digest}` per file (`name` = relative path) or
//!   per shard (`name` = `path:start:end`), sorted by path components.
//!
//! A single-file model (model-signing signs a file path as well as a directory) has one
//! resource named `.` (or shards `.:start:end`): the model path itself. Such a statement
//! only verifies a file, and a statement naming files only verifies a directory.
//!
//! Reading follows the spec but refuses what model-signing 1.1.1 lets through: names that
//! are absolute, contain `..` or repeat; `.` next to other names; fractional shard sizes; a
//! subject digest that does not match the resources. The v0.1 predicate (`https://model_signing/Digests/v0.1`, one
//! subject per file) is read too.
//!
//! Checking a model ([`verify_model`]) takes a [`Verified`] statement, so it cannot run on
//! a payload whose signature was not checked.

#![forbid(unsafe_code)]

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vouch_model::{
    Difference, Digest, HashAlgorithm, HashOptions, IgnoreSet, Manifest, Method, ModelPath,
    Progress, Resource, ScanOptions,
};
use vouch_trust::{SignedPayload, Verified};

/// in-toto Statement v1 type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The OMS v1.0 predicate type.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The pre-1.0 predicate type, still read.
pub const PREDICATE_TYPE_V01: &str = "https://model_signing/Digests/v0.1";

/// Why a statement is not a usable OMS statement, or a model does not match it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The payload is not JSON.
    #[error("the signed payload is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field is missing or of the wrong type.
    #[error("the signed statement is malformed: {0}")]
    Malformed(String),
    /// Not an in-toto v1 statement.
    #[error("the signed payload is not an in-toto Statement v1 (`_type` is `{0}`)")]
    StatementType(String),
    /// Not an OMS predicate.
    #[error(
        "the statement's predicate type is `{0}`, not an OMS model signature ({PREDICATE_TYPE})"
    )]
    PredicateType(String),
    /// A resource path that could leave the model.
    #[error(transparent)]
    Path(#[from] vouch_model::InvalidPath),
    /// The subject digest does not match the resources.
    #[error(
        "the statement is inconsistent: its subject digest is {stated} but its resources hash to {computed}"
    )]
    Inconsistent {
        /// Digest in the subject.
        stated: String,
        /// Digest computed over the resources.
        computed: String,
    },
    /// A single-file signature checked against a directory.
    #[error(
        "the signature is for a single-file model (its one resource is named `.`), but `{}` is a directory",
        .root.display()
    )]
    SingleFileSignature {
        /// The directory given as the model.
        root: std::path::PathBuf,
    },
    /// A directory signature checked against a single file.
    #[error(
        "the signature is for a model directory, but `{}` is a single file (a single-file signature has one resource named `.`)",
        .root.display()
    )]
    DirectorySignature {
        /// The file given as the model.
        root: std::path::PathBuf,
    },
    /// Hashing the model on disk failed.
    #[error(transparent)]
    Model(#[from] vouch_model::Error),
    /// The model on disk differs from the statement.
    #[error("the model does not match its signature ({} difference{})", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Mismatch(Vec<Difference>),
}

/// A parsed OMS statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The model name in the subject (informative only).
    pub name: String,
    /// The subject digest (SHA-256 over the resource digests).
    pub digest: Digest,
    /// The signed manifest.
    pub manifest: Manifest,
    /// Paths the signer left out.
    pub ignore_paths: IgnoreSet,
}

impl Statement {
    /// True when the statement signs a single-file model: every resource is named `.`
    /// (model-signing's name for the model file itself).
    pub fn is_single_file(&self) -> bool {
        let resources = self.manifest.resources();
        !resources.is_empty() && resources.iter().all(|r| r.path.is_single_file())
    }
}

#[derive(Serialize)]
struct OutStatement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: [OutSubject<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: OutPredicate<'a>,
}

#[derive(Serialize)]
struct OutSubject<'a> {
    name: &'a str,
    digest: OutDigest,
}

#[derive(Serialize)]
struct OutDigest {
    sha256: String,
}

#[derive(Serialize)]
struct OutPredicate<'a> {
    serialization: OutSerialization,
    resources: Vec<OutResource<'a>>,
}

#[derive(Serialize)]
struct OutSerialization {
    method: &'static str,
    hash_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_size: Option<u64>,
    allow_symlinks: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ignore_paths: Vec<String>,
}

#[derive(Serialize)]
struct OutResource<'a> {
    name: String,
    algorithm: &'a str,
    digest: String,
}

fn resource_algorithm(algorithm: HashAlgorithm, method: Method) -> String {
    match method {
        Method::Files => algorithm.name().to_owned(),
        Method::Shards { size } => format!("{}-sharded-{size}", algorithm.name()),
    }
}

/// Build the OMS statement JSON for a model (the DSSE payload to sign).
pub fn build_statement(name: &str, manifest: &Manifest, ignore: &IgnoreSet) -> Vec<u8> {
    let algorithm = resource_algorithm(manifest.algorithm, manifest.method);
    let statement = OutStatement {
        kind: STATEMENT_TYPE,
        subject: [OutSubject {
            name,
            digest: OutDigest {
                sha256: manifest.oms_digest().hex(),
            },
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: OutPredicate {
            serialization: OutSerialization {
                method: match manifest.method {
                    Method::Files => "files",
                    Method::Shards { .. } => "shards",
                },
                hash_type: manifest.algorithm.name(),
                shard_size: match manifest.method {
                    Method::Files => None,
                    Method::Shards { size } => Some(size),
                },
                allow_symlinks: false,
                ignore_paths: ignore.paths().iter().map(|p| p.to_string()).collect(),
            },
            resources: manifest
                .resources()
                .iter()
                .map(|r| OutResource {
                    name: r.name(),
                    algorithm: &algorithm,
                    digest: r.digest.hex(),
                })
                .collect(),
        },
    };
    serde_json::to_vec(&statement).unwrap_or_default()
}

#[derive(Deserialize)]
struct InStatement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<InSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    #[serde(default)]
    predicate: Value,
}

#[derive(Deserialize)]
struct InSubject {
    #[serde(default)]
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, Error> {
    v.get(key)
        .ok_or_else(|| malformed(format!("missing field `{key}`")))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, Error> {
    field(v, key)?
        .as_str()
        .ok_or_else(|| malformed(format!("field `{key}` is not a string")))
}

fn parse_digest(algorithm: HashAlgorithm, hex: &str, what: &str) -> Result<Digest, Error> {
    Digest::from_hex(algorithm, hex)
        .ok_or_else(|| malformed(format!("{what}: `{hex}` is not 64 lower-case hex digits")))
}

/// An integer shard size; model-signing 1.1.1 writes `2.0` for 2, which is read as 2.
fn shard_size(v: &Value) -> Result<u64, Error> {
    let bad = || malformed("`shard_size` must be a positive whole number of bytes");
    let size = match v.as_u64() {
        Some(n) => n,
        None => {
            let f = v.as_f64().ok_or_else(bad)?;
            if f.fract() != 0.0 || !(1.0..9.0e15).contains(&f) {
                return Err(bad());
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = f as u64;
            n
        }
    };
    if size == 0 { Err(bad()) } else { Ok(size) }
}

/// A resource path from a statement: a [`ModelPath`], or `.` for a single-file model.
fn resource_path(name: &str) -> Result<ModelPath, Error> {
    if name == "." {
        Ok(ModelPath::single_file())
    } else {
        Ok(ModelPath::parse(name)?)
    }
}

/// Parse an OMS statement from the signed payload bytes (never re-serialised).
pub fn parse_statement(payload: &[u8]) -> Result<Statement, Error> {
    let st: InStatement = serde_json::from_slice(payload)?;
    if st.kind != STATEMENT_TYPE {
        return Err(Error::StatementType(st.kind));
    }
    match st.predicate_type.as_str() {
        PREDICATE_TYPE => parse_v1(st),
        PREDICATE_TYPE_V01 => parse_v01(st),
        other => Err(Error::PredicateType(other.to_owned())),
    }
}

fn parse_v1(st: InStatement) -> Result<Statement, Error> {
    let [subject] = <[InSubject; 1]>::try_from(st.subject)
        .map_err(|s| malformed(format!("expected exactly one subject, found {}", s.len())))?;
    let stated = subject
        .digest
        .get("sha256")
        .ok_or_else(|| malformed("the subject has no sha256 digest"))?;
    let stated = parse_digest(HashAlgorithm::Sha256, stated, "subject digest")?;
    let ser = field(&st.predicate, "serialization")?;
    let algorithm: HashAlgorithm = str_field(ser, "hash_type")?.parse().map_err(malformed)?;
    let method = match str_field(ser, "method")? {
        "files" => Method::Files,
        "shards" => Method::Shards {
            size: shard_size(field(ser, "shard_size")?)?,
        },
        other => return Err(malformed(format!("unknown serialization method `{other}`"))),
    };
    let mut ignore_paths = IgnoreSet::new();
    if let Some(list) = ser.get("ignore_paths") {
        let list = list
            .as_array()
            .ok_or_else(|| malformed("`ignore_paths` is not a list"))?;
        for p in list {
            let p = p
                .as_str()
                .ok_or_else(|| malformed("an `ignore_paths` entry is not a string"))?;
            ignore_paths.insert(ModelPath::parse(p)?);
        }
    }
    let want_algorithm = resource_algorithm(algorithm, method);
    let list = field(&st.predicate, "resources")?
        .as_array()
        .ok_or_else(|| malformed("`resources` is not a list"))?;
    let mut resources = Vec::with_capacity(list.len());
    let mut names = std::collections::HashSet::new();
    for r in list {
        let name = str_field(r, "name")?;
        let alg = str_field(r, "algorithm")?;
        if alg != want_algorithm && alg != algorithm.name() {
            return Err(malformed(format!(
                "resource `{name}` uses `{alg}`, but the serialization says `{want_algorithm}`"
            )));
        }
        if !names.insert(name) {
            return Err(malformed(format!("resource `{name}` is listed twice")));
        }
        let digest = parse_digest(algorithm, str_field(r, "digest")?, name)?;
        let (path, shard, size) = match method {
            Method::Files => (resource_path(name)?, None, None),
            Method::Shards { size: shard_size } => {
                let mut parts = name.rsplitn(3, ':');
                let (Some(end), Some(start), Some(path)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(malformed(format!("shard `{name}` is not `path:start:end`")));
                };
                let (Ok(start), Ok(end)) = (start.parse::<u64>(), end.parse::<u64>()) else {
                    return Err(malformed(format!("shard `{name}` has a non-numeric range")));
                };
                if end < start || end - start > shard_size || start % shard_size != 0 {
                    return Err(malformed(format!(
                        "shard `{name}` does not fit shard size {shard_size}"
                    )));
                }
                (resource_path(path)?, Some((start, end)), Some(end - start))
            }
        };
        resources.push(Resource {
            path,
            shard,
            size,
            digest,
        });
    }
    // OMS v1.0 section 5.2.1: "The `resources` array MUST contain at least one entry."
    if resources.is_empty() {
        return Err(empty_statement());
    }
    // `.` is the model file itself: it cannot sit next to other files.
    let single = resources.iter().filter(|r| r.path.is_single_file()).count();
    if single != 0 && single != resources.len() {
        return Err(malformed(
            "resource `.` (the model itself, for a single-file model) is listed with other files",
        ));
    }
    // The subject digest is over the resources in the order they are listed.
    let mut concatenated = Vec::with_capacity(resources.len() * 32);
    for r in &resources {
        concatenated.extend_from_slice(&r.digest.bytes);
    }
    let computed = Digest::sha256(&concatenated);
    if computed != stated {
        return Err(Error::Inconsistent {
            stated: stated.hex(),
            computed: computed.hex(),
        });
    }
    Ok(Statement {
        name: subject.name,
        digest: stated,
        manifest: Manifest::new(algorithm, method, resources),
        ignore_paths,
    })
}

/// A statement that lists no file: an empty model, which OMS v1.0 rejects (section 6.1).
fn empty_statement() -> Error {
    malformed("it lists no file (an empty model signs nothing)")
}

fn parse_v01(st: InStatement) -> Result<Statement, Error> {
    let mut resources = Vec::with_capacity(st.subject.len());
    for s in st.subject {
        let hex = s
            .digest
            .get("sha256")
            .ok_or_else(|| malformed(format!("subject `{}` has no sha256 digest", s.name)))?;
        let digest = parse_digest(HashAlgorithm::Sha256, hex, &s.name)?;
        resources.push(Resource {
            path: ModelPath::parse(&s.name)?,
            shard: None,
            size: None,
            digest,
        });
    }
    if resources.is_empty() {
        return Err(empty_statement());
    }
    let manifest = Manifest::new(HashAlgorithm::Sha256, Method::Files, resources);
    Ok(Statement {
        name: String::new(),
        digest: manifest.oms_digest(),
        manifest,
        ignore_paths: IgnoreSet::new(),
    })
}

/// Parse the statement out of a verified payload.
pub fn statement_from(
    payload: Verified<SignedPayload>,
) -> Result<Verified<(Statement, vouch_trust::Signer)>, Error> {
    payload.try_map(|p| Ok((parse_statement(&p.payload)?, p.signer)))
}

/// What a successful [`verify_model`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files checked.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// The model digest from the signature.
    pub digest: Digest,
}

/// Hash the model below `root` the way the statement says it was hashed and compare.
///
/// `root` is a directory, or, for a single-file statement, the model file (which must not
/// be a symbolic link). A single-file statement never verifies a directory, nor a directory
/// statement a file.
///
/// `extra_ignore` adds paths to leave out (the signature file, `--ignore-paths`) on top of
/// those the signer recorded; it plays no part for a single file.
pub fn verify_model(
    root: &Path,
    statement: &Verified<(Statement, vouch_trust::Signer)>,
    extra_ignore: &IgnoreSet,
    threads: usize,
    progress: Option<&Progress>,
) -> Result<Verified<Report>, Error> {
    let (st, _) = statement.get();
    let mut scan = ScanOptions {
        ignore: st.ignore_paths.clone(),
        reject_hard_links: false,
    };
    for p in extra_ignore.paths() {
        scan.ignore.insert(p.clone());
    }
    let options = HashOptions {
        algorithm: st.manifest.algorithm,
        method: st.manifest.method,
        threads,
        ..Default::default()
    };
    let is_dir = std::fs::metadata(root)
        .map_err(|source| vouch_model::Error::Root {
            path: root.to_path_buf(),
            source,
        })?
        .is_dir();
    let actual = match (is_dir, st.is_single_file()) {
        (true, false) => vouch_model::hash_dir(root, &scan, &options, progress)?,
        (false, true) => vouch_model::hash_file(root, &options, progress)?,
        (true, true) => {
            return Err(Error::SingleFileSignature {
                root: root.to_path_buf(),
            });
        }
        (false, false) => {
            return Err(Error::DirectorySignature {
                root: root.to_path_buf(),
            });
        }
    };
    let differences = vouch_model::diff(st.manifest.resources(), actual.resources());
    if !differences.is_empty() {
        return Err(Error::Mismatch(differences));
    }
    Ok(statement.clone().map(|_| Report {
        files: actual.file_count(),
        bytes: actual.total_bytes(),
        digest: st.digest,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use std::path::{Path, PathBuf};
    use std::time::SystemTime;

    use super::*;

    fn testdata(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata")
            .join(path)
    }

    /// The statement of a model-signing fixture, verified with `release.pub`.
    fn fixture(sig: &str) -> Verified<(Statement, vouch_trust::Signer)> {
        let bundle =
            vouch_bundle::Bundle::from_json(&std::fs::read(testdata(sig)).unwrap()).unwrap();
        let key =
            vouch_trust::PublicKey::from_pem(&std::fs::read(testdata("keys/release.pub")).unwrap())
                .unwrap();
        let payload =
            vouch_trust::verify_envelope(&bundle, &vouch_trust::Trust::Key(key), SystemTime::now())
                .unwrap();
        statement_from(payload).unwrap()
    }

    fn statement_json(resources: &[(&str, &str)], method: &str) -> Vec<u8> {
        let digest = |i: usize| format!("{:064x}", i + 1);
        let mut concatenated = Vec::new();
        let list: Vec<Value> = resources
            .iter()
            .enumerate()
            .map(|(i, (name, algorithm))| {
                concatenated.extend_from_slice(
                    &Digest::from_hex(HashAlgorithm::Sha256, &digest(i))
                        .unwrap()
                        .bytes,
                );
                serde_json::json!({"name": name, "algorithm": algorithm, "digest": digest(i)})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "m", "digest": {"sha256": Digest::sha256(&concatenated).hex()}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "serialization": {"method": method, "hash_type": "sha256", "shard_size": 4, "allow_symlinks": false},
                "resources": list,
            }
        }))
        .unwrap()
    }

    #[test]
    fn statement_of_an_empty_model_is_refused() {
        // OMS v1.0: `resources` must have at least one entry.
        let err = parse_statement(&statement_json(&[], "files")).unwrap_err();
        assert!(
            matches!(&err, Error::Malformed(m) if m.contains("lists no file")),
            "{err}"
        );
        // What vouch would write for an empty manifest is refused too.
        let empty = Manifest::new(HashAlgorithm::Sha256, Method::Files, Vec::new());
        let built = build_statement("m", &empty, &IgnoreSet::new());
        assert!(parse_statement(&built).is_err());
        // And a pre-1.0 statement without subjects.
        let v01 = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [],
            "predicateType": PREDICATE_TYPE_V01,
            "predicate": {},
        });
        let err = parse_statement(&serde_json::to_vec(&v01).unwrap()).unwrap_err();
        assert!(err.to_string().contains("lists no file"), "{err}");
    }

    #[test]
    fn single_file_statement_parses_with_dot() {
        let st = parse_statement(&statement_json(&[(".", "sha256")], "files")).unwrap();
        assert!(st.is_single_file());
        assert_eq!(st.manifest.resources()[0].name(), ".");
        let st = parse_statement(&statement_json(
            &[(".:0:4", "sha256-sharded-4"), (".:4:6", "sha256-sharded-4")],
            "shards",
        ))
        .unwrap();
        assert!(st.is_single_file());
        let dir = parse_statement(&statement_json(&[("a", "sha256")], "files")).unwrap();
        assert!(!dir.is_single_file());
    }

    #[test]
    fn dot_next_to_other_files_is_malformed() {
        for (resources, method) in [
            (vec![(".", "sha256"), ("a", "sha256")], "files"),
            (vec![("a", "sha256"), (".", "sha256")], "files"),
            (
                vec![(".:0:4", "sha256-sharded-4"), ("a:0:4", "sha256-sharded-4")],
                "shards",
            ),
        ] {
            let err = parse_statement(&statement_json(&resources, method)).unwrap_err();
            assert!(
                matches!(err, Error::Malformed(ref m) if m.contains("`.`")),
                "{err}"
            );
        }
        for bad in ["./a", "a/.", "..", "./."] {
            assert!(
                parse_statement(&statement_json(&[(bad, "sha256")], "files")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn single_file_statement_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.bin");
        std::fs::write(&file, b"weights").unwrap();
        let manifest = vouch_model::hash_file(&file, &HashOptions::default(), None).unwrap();
        let json = build_statement("w.bin", &manifest, &IgnoreSet::new());
        let st = parse_statement(&json).unwrap();
        assert!(st.is_single_file());
        // OMS file resources carry no size; names and digests must match.
        assert!(vouch_model::diff(st.manifest.resources(), manifest.resources()).is_empty());
        assert_eq!(st.digest, manifest.oms_digest());
        assert_eq!(st.name, "w.bin");
        let value: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["predicate"]["resources"][0]["name"], ".");
    }

    #[test]
    fn model_signing_single_file_fixture_verifies_the_file_only() {
        let st = fixture("oms/single-file.sig");
        assert!(st.get().0.is_single_file());
        assert_eq!(st.get().0.name, "model.safetensors");
        let model = testdata("models/tiny-llm");
        let report = verify_model(
            &model.join("model.safetensors"),
            &st,
            &IgnoreSet::new(),
            1,
            None,
        )
        .unwrap();
        assert_eq!(report.get().files, 1);
        let err = verify_model(&model, &st, &IgnoreSet::new(), 1, None).unwrap_err();
        assert!(matches!(err, Error::SingleFileSignature { .. }), "{err}");
        assert!(err.to_string().contains("`.`"), "{err}");
        // Another file is not the signed file.
        let err =
            verify_model(&model.join("config.json"), &st, &IgnoreSet::new(), 1, None).unwrap_err();
        assert!(matches!(err, Error::Mismatch(_)), "{err}");
    }

    #[test]
    fn directory_statement_does_not_verify_a_file() {
        let st = fixture("oms/key.sig");
        assert!(!st.get().0.is_single_file());
        let file = testdata("models/tiny-llm/model.safetensors");
        let err = verify_model(&file, &st, &IgnoreSet::new(), 1, None).unwrap_err();
        assert!(matches!(err, Error::DirectorySignature { .. }), "{err}");
    }

    #[test]
    fn single_file_behind_a_symlink_is_refused() {
        let st = fixture("oms/single-file.sig");
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("model.safetensors");
        std::os::unix::fs::symlink(testdata("models/tiny-llm/model.safetensors"), &link).unwrap();
        let err = verify_model(&link, &st, &IgnoreSet::new(), 1, None).unwrap_err();
        assert!(
            matches!(err, Error::Model(vouch_model::Error::Symlink { .. })),
            "{err}"
        );
    }
}
