//! Models as OCI artifacts: the CNCF ModelPack v1 layout (`modelpack/model-spec`), written
//! by `vouch model push`, read by `vouch attest --model-artifact`, and pulled by `vouch-init
//! --model-artifact` ([`pull`]: every blob hashed as it is written).
//!
//! One raw layer per file (`application/vnd.cncf.model.*.v1.raw`), so that a layer's digest
//! is the SHA-256 of the file itself and its size the file's size; the file's path is the
//! `org.cncf.model.filepath` annotation (and `org.opencontainers.image.title`). The config
//! (`application/vnd.cncf.model.config.v1+json`) holds `descriptor`, `config` and `modelfs`
//! (`type: layers`, one `diffIds` entry per layer, in order).
//!
//! Reading ([`parse_manifest`]) is pure and trusts nothing: the paths it returns are still
//! untrusted strings, for `vouch-attest` to check as model paths. Tar and compressed layers
//! are refused (their digests are not the files' digests).

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt as _;

use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use crate::blocking::BlockingRegistry;
use crate::error::{Error, Result};
use crate::reference::ImageReference;
use crate::registry::{Options, Registry, check_digest};
use crate::{OCI_MANIFEST, sha256_digest};

/// The manifest's `artifactType`.
pub const MODEL_ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
/// The config blob's media type.
pub const MODEL_CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
/// Raw weight files.
pub const WEIGHT_RAW: &str = "application/vnd.cncf.model.weight.v1.raw";
/// Raw configuration files of the weights (config.json, tokenizer files).
pub const WEIGHT_CONFIG_RAW: &str = "application/vnd.cncf.model.weight.config.v1.raw";
/// Raw documentation files.
pub const DOC_RAW: &str = "application/vnd.cncf.model.doc.v1.raw";
/// Raw code files.
pub const CODE_RAW: &str = "application/vnd.cncf.model.code.v1.raw";
/// Raw dataset files (read, never written by vouch).
pub const DATASET_RAW: &str = "application/vnd.cncf.model.dataset.v1.raw";
/// The layer annotation naming the file's path in the model.
pub const FILEPATH_ANNOTATION: &str = "org.cncf.model.filepath";
/// The OCI title annotation (the fallback for the path).
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

const RAW_TYPES: [&str; 5] = [
    WEIGHT_RAW,
    WEIGHT_CONFIG_RAW,
    DOC_RAW,
    CODE_RAW,
    DATASET_RAW,
];

/// Bytes read from a file per chunk of a chunked upload (oci-client sends one request per
/// chunk, of at most 4 MiB).
const CHUNK: usize = 4 << 20;
/// Bytes read per chunk of a streamed upload (one request for the whole file).
const DIRECT_CHUNK: usize = 1 << 20;
/// Layers uploaded at once.
const PARALLEL_UPLOADS: usize = 4;
/// SHA-256 of no bytes.
const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One file of a ModelPack artifact, as its manifest describes it. `path` is untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLayer {
    /// The `org.cncf.model.filepath` annotation, else `org.opencontainers.image.title`.
    pub path: String,
    /// The layer's media type (one of the raw ModelPack types).
    pub media_type: String,
    /// `sha256:<hex>`: the file's SHA-256 (a raw layer is the file).
    pub digest: String,
    /// The file's size.
    pub size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: RawDescriptor,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The files a ModelPack manifest lists, in manifest order.
///
/// Refused: anything that is not an OCI image manifest of a ModelPack artifact (by
/// `artifactType`, or by the config's media type as older clients write it), layers that are
/// not raw (tar, `+gzip`, `+zstd`: their digests are not the files' digests), layers without
/// a path annotation, digests that are not `sha256:` + 64 lower-case hex digits.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ArtifactLayer>, String> {
    let m: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI image manifest: {e}"))?;
    if m.schema_version != Some(2) {
        return Err("not an OCI image manifest (schemaVersion is not 2)".to_owned());
    }
    if let Some(t) = &m.media_type
        && t != OCI_MANIFEST
    {
        return Err(format!(
            "its media type is `{t}`, not an OCI image manifest ({OCI_MANIFEST})"
        ));
    }
    let is_model = m.artifact_type.as_deref() == Some(MODEL_ARTIFACT_TYPE)
        || m.config.media_type == MODEL_CONFIG;
    if !is_model {
        return Err(format!(
            "not a ModelPack model artifact: artifactType is {}, config media type `{}` (expected `{MODEL_ARTIFACT_TYPE}` or a `{MODEL_CONFIG}` config)",
            m.artifact_type
                .as_deref()
                .map_or_else(|| "absent".to_owned(), |t| format!("`{t}`")),
            m.config.media_type
        ));
    }
    if m.layers.is_empty() {
        return Err("the artifact has no layers (no model files)".to_owned());
    }
    let mut out = Vec::with_capacity(m.layers.len());
    for (i, l) in m.layers.into_iter().enumerate() {
        let path = l
            .annotations
            .get(FILEPATH_ANNOTATION)
            .or_else(|| l.annotations.get(TITLE_ANNOTATION))
            .cloned()
            .ok_or_else(|| {
                format!("layer {i} ({}) has neither a `{FILEPATH_ANNOTATION}` nor a `{TITLE_ANNOTATION}` annotation: its file has no name", l.digest)
            })?;
        if !RAW_TYPES.contains(&l.media_type.as_str()) {
            let packed = l.media_type.contains(".tar") || l.media_type.contains('+');
            return Err(if packed {
                format!(
                    "layer `{path}` is `{}`: tar and compressed layers are not supported (their digests are not the files' digests); push the model with raw layers: `vouch model push DIR REPO:TAG` (or `modctl build --raw`)",
                    l.media_type
                )
            } else {
                format!(
                    "layer `{path}` has media type `{}`, not a raw ModelPack layer ({})",
                    l.media_type,
                    RAW_TYPES.join(", ")
                )
            });
        }
        if !crate::is_sha256_digest(&l.digest) {
            return Err(format!(
                "layer `{path}`: `{}` is not a sha256 digest",
                l.digest
            ));
        }
        out.push(ArtifactLayer {
            path,
            media_type: l.media_type,
            digest: l.digest,
            size: l.size,
        });
    }
    Ok(out)
}

/// The ModelPack config blob for `layers` (file digests in manifest order).
#[must_use]
pub fn config_blob(name: &str, layer_digests: &[String]) -> Vec<u8> {
    let config = json!({
        "descriptor": {"name": name},
        "config": {},
        "modelfs": {"type": "layers", "diffIds": layer_digests},
    });
    serde_json::to_vec(&config).unwrap_or_default()
}

/// The ModelPack manifest for a config blob and the layers, in this order.
#[must_use]
pub fn manifest(config: &[u8], layers: &[ArtifactLayer]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": l.media_type,
                "digest": l.digest,
                "size": l.size,
                "annotations": {FILEPATH_ANNOTATION: l.path, TITLE_ANNOTATION: l.path},
            })
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODEL_ARTIFACT_TYPE,
        "config": {
            "mediaType": MODEL_CONFIG,
            "digest": sha256_digest(config),
            "size": config.len(),
        },
        "layers": layers,
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// Opens a file to push when its upload starts (so that a model of thousands of files does
/// not hold thousands open): the caller checks that it is a regular file of the listed size,
/// not reached through a link; an error is the reason, for a person.
pub type OpenFile = Box<dyn FnOnce() -> std::result::Result<std::fs::File, String> + Send>;

/// One file to push.
pub struct PushFile {
    /// Its path in the model (the filepath annotation).
    pub path: String,
    /// Its layer media type.
    pub media_type: String,
    /// Opens it.
    pub open: OpenFile,
    /// Its size when it was listed; a file that changes while it is read is an error.
    pub size: u64,
}

impl std::fmt::Debug for PushFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushFile")
            .field("path", &self.path)
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What `push` stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedModel {
    /// `registry/repository@sha256:<manifest digest>`.
    pub reference: String,
    /// The manifest digest.
    pub manifest_digest: String,
    /// The layers, in manifest order.
    pub layers: Vec<ArtifactLayer>,
    /// How many layer bytes were sent (blobs the registry had already are not).
    pub bytes_sent: u64,
    /// How many layers the registry had already.
    pub layers_skipped: usize,
}

/// Push `files` (in this order) as a ModelPack artifact tagged `target`'s tag.
///
/// Each file is read once: its bytes are hashed as they are sent (chunked upload; the
/// registry checks the digest too). A layer is skipped without sending it when the manifest
/// already at the tag lists the same path with the same size and the registry has that blob:
/// then the file is read once to hash it, and sent only if its digest differs. Memory stays
/// flat: at most a few chunks per upload in flight, [`PARALLEL_UPLOADS`] uploads at once.
pub fn push(
    target: &ImageReference,
    name: &str,
    files: Vec<PushFile>,
    options: &Options,
) -> Result<PushedModel> {
    let Some(tag) = target.tag().map(str::to_owned) else {
        return Err(Error::Registry {
            registry: target.registry().to_owned(),
            what: "model push",
            reason: format!("`{target}` has no tag to push to (REPO:TAG)"),
        });
    };
    let (runtime, registry) = runtime_for(target, options)?;
    runtime.block_on(push_async(&registry, target, &tag, name, files))
}

/// The runtime a push or a pull runs on (two workers for its parallel transfers), and a
/// client for `reference`'s registry built inside it (reqwest's client must be).
fn runtime_for(
    reference: &ImageReference,
    options: &Options,
) -> Result<(tokio::runtime::Runtime, Registry)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let registry = {
        let _guard = runtime.enter();
        Registry::for_reference(reference, options)?
    };
    Ok((runtime, registry))
}

async fn push_async(
    registry: &Registry,
    target: &ImageReference,
    tag: &str,
    name: &str,
    files: Vec<PushFile>,
) -> Result<PushedModel> {
    registry.store_auth().await?;
    // What the tag holds now: the candidates for skipping.
    let previous: BTreeMap<(String, u64), String> =
        match registry.manifest_at(target, &[OCI_MANIFEST]).await {
            Ok(bytes) => parse_manifest(&bytes)
                .unwrap_or_default()
                .into_iter()
                .map(|l| ((l.path, l.size), l.digest))
                .collect(),
            Err(Error::NotFound { .. }) => BTreeMap::new(),
            Err(e) => return Err(e),
        };
    let uploads = files.into_iter().map(|f| {
        let known = previous.get(&(f.path.clone(), f.size)).cloned();
        async move { push_layer(registry, target, f, known).await }
    });
    let results: Vec<Result<(ArtifactLayer, Option<u64>)>> = futures_util::stream::iter(uploads)
        .buffered(PARALLEL_UPLOADS)
        .collect()
        .await;
    let mut layers = Vec::with_capacity(results.len());
    let mut bytes_sent = 0;
    let mut layers_skipped = 0;
    for r in results {
        let (layer, sent) = r?;
        match sent {
            Some(n) => bytes_sent += n,
            None => layers_skipped += 1,
        }
        layers.push(layer);
    }
    let digests: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let config = config_blob(name, &digests);
    let config_digest = sha256_digest(&config);
    if !registry.has_blob(target, &config_digest).await? {
        registry
            .put_blob(target, config.clone(), &config_digest)
            .await?;
    }
    let manifest = manifest(&config, &layers);
    let manifest_digest = sha256_digest(&manifest);
    registry
        .put_manifest(&target.with_tag(tag), &manifest, OCI_MANIFEST)
        .await?;
    Ok(PushedModel {
        reference: target.with_digest(&manifest_digest).to_string(),
        manifest_digest,
        layers,
        bytes_sent,
        layers_skipped,
    })
}

/// Upload one file; `Some(bytes sent)`, or `None` when the registry had it.
async fn push_layer(
    registry: &Registry,
    target: &ImageReference,
    f: PushFile,
    known: Option<String>,
) -> Result<(ArtifactLayer, Option<u64>)> {
    let PushFile {
        path,
        media_type,
        open,
        size,
    } = f;
    let layer = |digest: String| ArtifactLayer {
        path: path.clone(),
        media_type: media_type.clone(),
        digest,
        size,
    };
    if size == 0 {
        if registry.has_blob(target, EMPTY_SHA256).await? {
            return Ok((layer(EMPTY_SHA256.to_owned()), None));
        }
        registry.put_blob(target, Vec::new(), EMPTY_SHA256).await?;
        return Ok((layer(EMPTY_SHA256.to_owned()), Some(0)));
    }
    let file = tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| Error::Runtime(e.to_string()))?
        .map_err(|reason| Error::Registry {
            registry: target.registry().to_owned(),
            what: "model push",
            reason,
        })?;
    let file = std::sync::Arc::new(file);
    if let Some(known) = known {
        let (f, p) = (file.clone(), path.clone());
        let digest = tokio::task::spawn_blocking(move || hash_file(&f, size, &p))
            .await
            .map_err(|e| Error::Runtime(e.to_string()))??;
        if digest == known && registry.has_blob(target, &digest).await? {
            return Ok((layer(digest), None));
        }
    }
    // One streamed request where the registry takes it anonymously; else oci-client's
    // chunked upload (a request per chunk, any login it negotiates).
    for direct in [true, false] {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(1);
        let (f, p) = (file.clone(), path.clone());
        let chunk = if direct { DIRECT_CHUNK } else { CHUNK };
        let reader = tokio::task::spawn_blocking(move || send_file(&f, size, &p, &tx, chunk));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let registry_name = target.registry().to_owned();
        let read = async move {
            match reader.await.map_err(|e| Error::Runtime(e.to_string()))? {
                Ok(Some(digest)) => Ok(digest),
                Ok(None) => Err(Error::Runtime("the upload stopped".to_owned())),
                Err(reason) => Err(Error::Registry {
                    registry: registry_name,
                    what: "model push",
                    reason,
                }),
            }
        };
        if direct {
            match registry
                .put_blob_streamed(target, stream, size, read)
                .await?
            {
                Some(digest) => return Ok((layer(digest), Some(size))),
                None => continue,
            }
        }
        let sent = registry.put_blob_stream(target, stream, &path).await;
        // The reader's own verdict first: a file that changed is the real cause of a failed
        // send (and a reader stopped by a failed send defers to the send's error).
        let read = read.await;
        let (digest, n) = match (read, sent) {
            (Err(Error::Runtime(_)), Err(e)) => return Err(e),
            (Err(e), _) => return Err(e),
            (Ok(_), sent) => sent?,
        };
        if n != size {
            return Err(Error::Registry {
                registry: target.registry().to_owned(),
                what: "model push",
                reason: format!("`{path}`: sent {n} bytes, the file has {size}"),
            });
        }
        return Ok((layer(digest), Some(n)));
    }
    Err(Error::Runtime("no upload method left".to_owned()))
}

fn read_err(path: &str, e: &std::io::Error) -> String {
    format!("cannot read `{path}`: {e}")
}

fn changed(path: &str, size: u64, actual: u64) -> String {
    format!("`{path}` changed while it was being pushed (expected {size} bytes, found {actual})")
}

/// Read `file` (of `size` bytes) from the start, in chunks, and check its size at the end.
/// Positional reads: the same open file may be read twice (hashed, then sent).
fn each_chunk(
    file: &std::fs::File,
    size: u64,
    path: &str,
    each: impl FnMut(bytes::Bytes) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    each_chunk_of(file, size, path, CHUNK, each)
}

fn each_chunk_of(
    file: &std::fs::File,
    size: u64,
    path: &str,
    chunk: usize,
    mut each: impl FnMut(bytes::Bytes) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; chunk];
        let mut filled = 0;
        while filled < chunk {
            let at = total + filled as u64;
            match file.read_at(buf.get_mut(filled..).unwrap_or_default(), at) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(path, &e)),
            }
        }
        if filled == 0 {
            break;
        }
        total += filled as u64;
        if total > size {
            return Err(changed(path, size, total));
        }
        buf.truncate(filled);
        each(bytes::Bytes::from(buf))?;
    }
    let after = file.metadata().map_err(|e| read_err(path, &e))?.len();
    if total != size || after != size {
        return Err(changed(path, size, total.max(after)));
    }
    Ok(())
}

fn hash_file(file: &std::fs::File, size: u64, path: &str) -> Result<String> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    each_chunk(file, size, path, |b| {
        h.update(&b);
        Ok(())
    })
    .map_err(|reason| Error::Registry {
        registry: String::new(),
        what: "model push",
        reason,
    })?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Send `file` into `tx` in chunks of `chunk` bytes, hashing it: `Some(digest)` when all of
/// it was sent, `None` when the receiver stopped first (the upload's error is the one to
/// report), an error when the file could not be read or changed.
fn send_file(
    file: &std::fs::File,
    size: u64,
    path: &str,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    chunk: usize,
) -> std::result::Result<Option<String>, String> {
    use sha2::Digest as _;
    const STOPPED: &str = "the upload stopped";
    let mut h = sha2::Sha256::new();
    let r = each_chunk_of(file, size, path, chunk, |b| {
        h.update(&b);
        tx.blocking_send(Ok(b)).map_err(|_| STOPPED.to_owned())
    });
    match r {
        Err(reason) if reason == STOPPED => Ok(None),
        Err(reason) => {
            // End the upload with an error rather than a short blob.
            let _ = tx.blocking_send(Err(std::io::Error::other(reason.clone())));
            Err(reason)
        }
        Ok(()) => Ok(Some(format!("sha256:{}", hex::encode(h.finalize())))),
    }
}

/// Blobs downloaded at once by [`pull`].
const PARALLEL_DOWNLOADS: usize = 4;
/// Pieces of one download queued for its writer. A piece is what one read of the
/// connection gave (hyper's buffer, which grows to a few hundred KiB on a fast link), and is
/// written as it is: no second copy.
const QUEUED_PIECES: usize = 4;

/// Creates the file one blob is written to, when its download starts (the caller decides
/// where, and refuses to write through links); an error is the reason, for a person.
pub type CreateFile = Box<dyn FnOnce() -> std::result::Result<std::fs::File, String> + Send>;

/// One blob to pull into a file.
pub struct PullFile {
    /// Its path in the model (for messages).
    pub path: String,
    /// `sha256:<hex>`: what its bytes must hash to.
    pub digest: String,
    /// How many bytes it must have.
    pub size: u64,
    /// Creates the file.
    pub create: CreateFile,
}

impl std::fmt::Debug for PullFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullFile")
            .field("path", &self.path)
            .field("digest", &self.digest)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Whether a pull hashes what it writes. Only [`pull`] (always) and the benchmark's
/// baseline exist.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Digests,
    #[cfg_attr(not(feature = "dangerous-unverified-pull"), allow(dead_code))]
    SizesOnly,
}

/// Pull the blobs `files` name from `reference`'s repository, [`PARALLEL_DOWNLOADS`] at
/// once, into the files their `create` makes: every piece is hashed and written as it
/// arrives (memory stays flat: a few pieces queued per download), and
/// each blob must have its size and digest ([`Error::BlobDiffers`] otherwise; a blob longer
/// than its size is stopped at once). Returns the bytes written.
///
/// On an error the first failure is returned once every download has stopped; what was
/// written stays where `create` put it, for the caller to remove (it chose the place). A
/// file's bytes are only the blob's once this returns `Ok`.
pub fn pull(reference: &ImageReference, files: Vec<PullFile>, options: &Options) -> Result<u64> {
    pull_checked(reference, files, options, Check::Digests)
}

/// [`pull`] without hashing (sizes are still checked): the baseline of
/// `scripts/bench-modelpack`, the same client doing everything but the verification. Never
/// use its files: nothing says they are the blobs asked for.
#[cfg(feature = "dangerous-unverified-pull")]
#[doc(hidden)]
pub fn dangerous_pull_unverified(
    reference: &ImageReference,
    files: Vec<PullFile>,
    options: &Options,
) -> Result<u64> {
    pull_checked(reference, files, options, Check::SizesOnly)
}

fn pull_checked(
    reference: &ImageReference,
    files: Vec<PullFile>,
    options: &Options,
    check: Check,
) -> Result<u64> {
    let (runtime, registry) = runtime_for(reference, options)?;
    let result = runtime.block_on(async {
        let downloads = files
            .into_iter()
            .map(|f| pull_file(&registry, reference, f, check));
        let mut running =
            futures_util::stream::iter(downloads).buffer_unordered(PARALLEL_DOWNLOADS);
        let mut total = 0u64;
        while let Some(r) = running.next().await {
            total += r?;
        }
        Ok(total)
    });
    // Dropping the runtime waits for the writers still running (each stops at once when its
    // download is dropped), so nothing is written after this returns.
    drop(registry);
    drop(runtime);
    result
}

/// Download one blob into its file; the bytes written.
async fn pull_file(
    registry: &Registry,
    reference: &ImageReference,
    f: PullFile,
    check: Check,
) -> Result<u64> {
    let PullFile {
        path,
        digest,
        size,
        create,
    } = f;
    let origin = reference.with_digest(&digest).to_string();
    let differs = |expected: String, found: String| Error::BlobDiffers {
        origin: origin.clone(),
        file: path.clone(),
        expected,
        found,
    };
    let mut response = registry.blob_response(reference, &digest).await?;
    if let Some(n) = response.content_length()
        && n != size
    {
        return Err(differs(format!("{size} bytes"), format!("{n} bytes")));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(QUEUED_PIECES);
    let p = path.clone();
    let writer = tokio::task::spawn_blocking(move || write_blob(create, rx, check, &p));
    let mut received = 0u64;
    let fed: Result<()> = async {
        while let Some(piece) = registry.next_chunk(&mut response).await? {
            received += piece.len() as u64;
            if received > size {
                return Err(differs(
                    format!("{size} bytes"),
                    format!("more than {size} bytes"),
                ));
            }
            if tx.send(piece).await.is_err() {
                // The writer stopped: its error is the one to report.
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| Error::Runtime(e.to_string()))?;
    fed?;
    let (actual, n) = written.map_err(|reason| Error::Registry {
        registry: reference.registry().to_owned(),
        what: "model pull",
        reason,
    })?;
    if n != size {
        return Err(differs(format!("{size} bytes"), format!("{n} bytes")));
    }
    if check == Check::Digests && actual != digest {
        return Err(differs(digest.clone(), actual));
    }
    Ok(n)
}

/// The writer of one download: create the file, then hash and write every piece until the
/// sender is done; the digest (when hashing) and the bytes written.
fn write_blob(
    create: CreateFile,
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    check: Check,
    path: &str,
) -> std::result::Result<(String, u64), String> {
    use sha2::Digest as _;
    use std::io::Write as _;
    let write_err = |e: std::io::Error| format!("cannot write `{path}`: {e}");
    let mut out = create()?;
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    while let Some(piece) = rx.blocking_recv() {
        if check == Check::Digests {
            h.update(&piece);
        }
        out.write_all(&piece).map_err(write_err)?;
        n += piece.len() as u64;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), n))
}

/// The ModelPack manifest at `reference` (pinned by digest), checked against that digest,
/// and the files it lists.
pub fn fetch_manifest(
    reference: &ImageReference,
    options: &Options,
) -> Result<(Vec<u8>, Vec<ArtifactLayer>)> {
    let Some(digest) = reference.digest().map(str::to_owned) else {
        return Err(Error::DigestRequired {
            reference: reference.to_string(),
        });
    };
    let bytes = BlockingRegistry::for_reference(reference, options)?
        .manifest_at(reference, &[OCI_MANIFEST])?;
    check_digest(
        &bytes,
        Some(&digest),
        "model artifact manifest",
        &reference.to_string(),
    )?;
    let layers = parse_manifest(&bytes).map_err(|reason| Error::Malformed {
        what: "model artifact manifest",
        origin: reference.to_string(),
        reason,
    })?;
    Ok((bytes, layers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../testdata/modelpack/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_an_oras_pushed_manifest() {
        let layers = parse_manifest(&testdata("oras-raw.json")).unwrap_or_default();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].path, "config.json");
        assert_eq!(layers[0].media_type, WEIGHT_CONFIG_RAW);
        assert_eq!(layers[1].path, "model.safetensors");
        assert_eq!(layers[1].size, 64);
    }

    #[test]
    fn written_manifest_reads_back() {
        let layers = vec![
            ArtifactLayer {
                path: "config.json".into(),
                media_type: WEIGHT_CONFIG_RAW.into(),
                digest: EMPTY_SHA256.into(),
                size: 0,
            },
            ArtifactLayer {
                path: "sub/model.safetensors".into(),
                media_type: WEIGHT_RAW.into(),
                digest: sha256_digest(b"x"),
                size: 1,
            },
        ];
        let digests: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
        let config = config_blob("m", &digests);
        let v: serde_json::Value = serde_json::from_slice(&config).unwrap_or_default();
        assert_eq!(v["modelfs"]["type"], "layers");
        assert_eq!(v["modelfs"]["diffIds"][1], digests[1]);
        let m = manifest(&config, &layers);
        assert_eq!(parse_manifest(&m), Ok(layers));
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap_or_default();
        assert_eq!(v["artifactType"], MODEL_ARTIFACT_TYPE);
        assert_eq!(v["config"]["mediaType"], MODEL_CONFIG);
    }

    #[test]
    fn a_file_is_read_whole_and_twice_and_a_changed_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("w");
        let data: Vec<u8> = (0..(CHUNK + 10)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap_or_default();
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let size = data.len() as u64;
        for _ in 0..2 {
            let mut got = Vec::new();
            let mut chunks = 0;
            each_chunk(&file, size, "w", |b| {
                chunks += 1;
                got.extend_from_slice(&b);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((chunks, got == data), (2, true));
        }
        assert_eq!(
            hash_file(&file, size, "w").unwrap_or_default(),
            sha256_digest(&data)
        );
        let e = each_chunk(&file, size - 1, "w", |_| Ok(())).unwrap_err();
        assert!(e.contains("changed while it was being pushed"), "{e}");
        let e = each_chunk(&file, size + 1, "w", |_| Ok(())).unwrap_err();
        assert!(e.contains("changed while it was being pushed"), "{e}");
    }

    #[test]
    fn refuses_tar_layers_with_a_hint() {
        let e = parse_manifest(&testdata("tar-layers.json"))
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("tar and compressed layers are not supported"),
            "{e}"
        );
        assert!(e.contains("vouch model push"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_model() {
        let e = parse_manifest(&testdata("not-a-model.json"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("not a ModelPack model artifact"), "{e}");
        let e = parse_manifest(b"{}").err().unwrap_or_default();
        assert!(e.contains("not an OCI image manifest"), "{e}");
    }

    #[test]
    fn refuses_layers_without_a_name_or_a_sha256_digest() {
        let m = String::from_utf8(testdata("oras-raw.json")).unwrap_or_default();
        let unnamed = m
            .replace("\"org.opencontainers.image.title\"", "\"x\"")
            .replace("\"org.cncf.model.filepath\"", "\"y\"");
        let e = parse_manifest(unnamed.as_bytes()).err().unwrap_or_default();
        assert!(e.contains("has neither"), "{e}");
        let weak = m.replacen("sha256:", "sha512:", 2);
        let e = parse_manifest(weak.as_bytes()).err().unwrap_or_default();
        assert!(e.contains("is not a sha256 digest"), "{e}");
    }
}
