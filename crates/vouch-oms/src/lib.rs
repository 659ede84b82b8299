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
//! Reading follows the spec but refuses what model-signing 1.1.1 lets through: names that
//! are absolute, contain `..` or repeat; fractional shard sizes; a subject digest that does
//! not match the resources. The v0.1 predicate (`https://model_signing/Digests/v0.1`, one
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
            Method::Files => (ModelPath::parse(name)?, None, None),
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
                (
                    ModelPath::parse(path)?,
                    Some((start, end)),
                    Some(end - start),
                )
            }
        };
        resources.push(Resource {
            path,
            shard,
            size,
            digest,
        });
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
/// `extra_ignore` adds paths to leave out (the signature file, `--ignore-paths`) on top of
/// those the signer recorded.
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
    let actual = vouch_model::hash_dir(root, &scan, &options, progress)?;
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
