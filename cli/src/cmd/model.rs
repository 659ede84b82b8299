use std::path::{Path, PathBuf};

use serde_json::json;
use vouch_model::{
    HashAlgorithm, HashOptions, IgnoreSet, InvalidPath, Manifest, Method, ModelPath, ScanOptions,
};
use vouch_trust::{CertificateAuthorities, PublicKey, Trust};

use crate::args::{HashArg, HashingArgs, IgnoreArgs, ModelCommand, OutputArgs, TrustArgs};
use crate::failure::{Failure, Result};
use crate::files;
use crate::progress::with_bar;

pub fn run(cmd: ModelCommand) -> Result {
    match cmd {
        ModelCommand::Hash {
            dir,
            hashing,
            output,
        } => hash(&dir, &hashing, &output),
        ModelCommand::Sign {
            dir,
            key,
            keyless,
            keyless_args,
            signature,
            name,
            hashing,
            output,
        } => {
            // The signer before any hashing: a missing key or token should fail first.
            let signer = super::keyless::DsseSigner::new(
                key.as_deref(),
                keyless.then_some(&keyless_args),
                Some(&keyless_args),
            )?;
            sign(&dir, &signer, signature, name, &hashing, &output)
        }
        ModelCommand::Verify {
            dir,
            signature,
            trust,
            certificate_oidc_issuer,
            trusted_root,
            ignore,
            output,
        } => {
            let trust = match (&trust.certificate_identity, &certificate_oidc_issuer) {
                (Some(identity), Some(issuer)) => {
                    super::keyless::BundleTrust::keyless(identity, issuer, trusted_root.as_deref())?
                }
                _ => super::keyless::BundleTrust::Classic(load_trust(&trust)?),
            };
            verify(&dir, &signature, &trust, &ignore, &output)
        }
        ModelCommand::Push {
            dir,
            reference,
            name,
            ignore,
            registry,
            output,
        } => super::model_artifact::push(&dir, &reference, name, &ignore, &registry, &output),
    }
}

/// The canonical model root, or a clear error.
pub fn model_root(dir: &Path) -> Result<PathBuf> {
    let root = dir.canonicalize().map_err(|e| {
        Failure::undecided(format!(
            "cannot open model directory `{}`: {e}",
            dir.display()
        ))
    })?;
    if !root.is_dir() {
        return Err(Failure::undecided(format!(
            "`{}` is not a directory",
            dir.display()
        )));
    }
    Ok(root)
}

/// What `vouch model hash|sign|verify` act on.
#[derive(Debug)]
struct Model {
    /// The canonical path: the model directory, or the model file.
    root: PathBuf,
    /// A single-file model: model-signing names its one resource `.`.
    single_file: bool,
}

/// A model directory or, as model-signing allows, a single model file. A directory may be
/// reached through a symbolic link (as for [`model_root`]); a file may not.
fn model_target(path: &Path) -> Result<Model> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Failure::undecided(format!("cannot open model `{}`: {e}", path.display())))?;
    let kind = meta.file_type();
    if kind.is_file() {
        let root = path.canonicalize().map_err(|e| {
            Failure::undecided(format!("cannot open model file `{}`: {e}", path.display()))
        })?;
        return Ok(Model {
            root,
            single_file: true,
        });
    }
    if kind.is_symlink() && !path.is_dir() {
        return Err(Failure::rejected(format!(
            "`{}` is a symbolic link; vouch never follows a link to a model file",
            path.display()
        ))
        .hint("give the path of the file it points to"));
    }
    if !kind.is_dir() && !kind.is_symlink() {
        return Err(Failure::undecided(format!(
            "`{}` is neither a model directory nor a regular file",
            path.display()
        )));
    }
    Ok(Model {
        root: model_root(path)?,
        single_file: false,
    })
}

/// The paths to leave out of `model`: [`ignore_set`] for a directory; for a single file,
/// only the git paths model-signing records (they cannot match the file), and
/// `--ignore-paths` is refused.
fn model_ignore_set(model: &Model, args: &IgnoreArgs) -> Result<IgnoreSet> {
    if !model.single_file {
        return ignore_set(&model.root, args);
    }
    if let Some(p) = args.ignore_paths.first() {
        return Err(Failure::undecided(format!(
            "`--ignore-paths {}`: `{}` is a single-file model, there is nothing to leave out",
            p.display(),
            model.root.display()
        )));
    }
    let mut set = IgnoreSet::new();
    if !args.no_ignore_git_paths {
        set.insert_git_paths();
    }
    Ok(set)
}

/// Hash a model directory or file, with a progress bar.
fn hash_target(
    model: &Model,
    ignore: &IgnoreSet,
    options: &HashOptions,
    quiet: bool,
) -> Result<Manifest> {
    if !model.single_file {
        let scan = ScanOptions {
            ignore: ignore.clone(),
            reject_hard_links: false,
        };
        return hash_model(&model.root, &scan, options, quiet);
    }
    let files = vouch_model::scan_file(&model.root)?;
    let total = files.iter().map(|f| f.size).sum();
    let resources = with_bar(Some(total), quiet, |p| {
        vouch_model::hash_files(&model.root, &files, options, p)
    })?;
    Ok(Manifest::new(options.algorithm, options.method, resources))
}

/// A path given on the command line, as a path inside the model (`None` when it lies outside).
fn inside_model(root: &Path, path: &Path) -> std::result::Result<Option<ModelPath>, InvalidPath> {
    let rel = if path.is_absolute() {
        match path.strip_prefix(root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => return Ok(None),
        }
    } else {
        path.to_path_buf()
    };
    ModelPath::from_relative(&rel).map(Some)
}

/// Where a (possibly not yet existing) file lies relative to the model root, if inside it.
pub fn file_in_model(root: &Path, file: &Path) -> Option<ModelPath> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let full = parent.canonicalize().ok()?.join(file.file_name()?);
    ModelPath::from_relative(full.strip_prefix(root).ok()?).ok()
}

pub fn ignore_set(root: &Path, args: &IgnoreArgs) -> Result<IgnoreSet> {
    let mut set = IgnoreSet::new();
    if !args.no_ignore_git_paths {
        set.insert_git_paths();
    }
    for p in &args.ignore_paths {
        let inside = inside_model(root, p).map_err(|e| {
            Failure::undecided(format!("`--ignore-paths {}`: {e}", p.display()))
                .hint("ignore paths are relative to the model directory and stay inside it")
        })?;
        match inside {
            Some(mp) => set.insert(mp),
            None => {
                return Err(Failure::undecided(format!(
                    "`--ignore-paths {}` is outside the model directory",
                    p.display()
                ))
                .hint("ignore paths are relative to the model directory"));
            }
        }
    }
    Ok(set)
}

pub fn hash_options(args: &HashingArgs) -> HashOptions {
    HashOptions {
        algorithm: match args.hash {
            HashArg::Sha256 => HashAlgorithm::Sha256,
            HashArg::Blake3 => HashAlgorithm::Blake3,
        },
        method: args
            .shard_size
            .map_or(Method::Files, |size| Method::Shards { size }),
        ..Default::default()
    }
}

/// Scan and hash with a progress bar.
pub fn hash_model(
    root: &Path,
    scan: &ScanOptions,
    options: &HashOptions,
    quiet: bool,
) -> Result<Manifest> {
    let files = vouch_model::scan(root, scan)?;
    let total = files.iter().map(|f| f.size).sum();
    let resources = with_bar(Some(total), quiet, |p| {
        vouch_model::hash_files(root, &files, options, p)
    })?;
    Ok(Manifest::new(options.algorithm, options.method, resources))
}

fn method_label(m: Method) -> String {
    match m {
        Method::Files => "files".into(),
        Method::Shards { size } => format!("shards of {size} bytes"),
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS.get(unit).unwrap_or(&"B"))
    }
}

fn manifest_json(m: &Manifest) -> serde_json::Value {
    json!({
        "hash": m.algorithm.name(),
        "method": match m.method { Method::Files => "files", Method::Shards { .. } => "shards" },
        "shardSize": match m.method { Method::Files => None, Method::Shards { size } => Some(size) },
        "modelDigest": m.model_digest().map(|d| d.to_string()),
        "omsDigest": m.oms_digest().to_string(),
        "files": m.file_count(),
        "bytes": m.total_bytes(),
        "resources": m.resources().iter().map(|r| json!({
            "name": r.name(),
            "path": r.path.as_str(),
            "start": r.shard.map(|s| s.0),
            "end": r.shard.map(|s| s.1),
            "size": r.size,
            "digest": r.digest.to_string(),
        })).collect::<Vec<_>>(),
    })
}

pub fn print_json(v: &serde_json::Value) -> Result {
    let text = serde_json::to_string_pretty(v).map_err(Failure::undecided)?;
    println!("{text}");
    Ok(())
}

fn hash(dir: &Path, args: &HashingArgs, output: &OutputArgs) -> Result {
    let model = model_target(dir)?;
    let ignore = model_ignore_set(&model, &args.ignore)?;
    let manifest = hash_target(
        &model,
        &ignore,
        &hash_options(args),
        output.quiet || output.json,
    )?;
    if output.json {
        return print_json(&manifest_json(&manifest));
    }
    let mut out = String::new();
    for r in manifest.resources() {
        out.push_str(&format!(
            "{}  {:>12}  {}\n",
            r.digest,
            r.size.unwrap_or(0),
            r.name()
        ));
    }
    out.push_str(&format!(
        "\n{} files, {} ({}, {})\n",
        manifest.file_count(),
        human_bytes(manifest.total_bytes()),
        manifest.algorithm,
        method_label(manifest.method)
    ));
    if let Some(d) = manifest.model_digest() {
        out.push_str(&format!("model digest: {d}\n"));
    }
    out.push_str(&format!("oms digest:   {}\n", manifest.oms_digest()));
    print!("{out}");
    Ok(())
}

fn sign(
    dir: &Path,
    signer: &super::keyless::DsseSigner,
    signature: Option<PathBuf>,
    name: Option<String>,
    args: &HashingArgs,
    output: &OutputArgs,
) -> Result {
    let model = model_target(dir)?;
    // A directory's signature defaults to DIR/model.sig, a file's to FILE.sig beside it.
    let signature = signature.unwrap_or_else(|| {
        if model.single_file {
            let mut s = dir.as_os_str().to_owned();
            s.push(".sig");
            PathBuf::from(s)
        } else {
            dir.join("model.sig")
        }
    });
    if signature.canonicalize().is_ok_and(|s| s == model.root) {
        return Err(Failure::undecided(format!(
            "`--signature {}` is the model itself; writing the signature would overwrite it",
            signature.display()
        )));
    }
    let mut ignore = model_ignore_set(&model, &args.ignore)?;
    if !model.single_file
        && let Some(inside) = file_in_model(&model.root, &signature)
    {
        ignore.insert(inside);
    }
    let manifest = hash_target(
        &model,
        &ignore,
        &hash_options(args),
        output.quiet || output.json,
    )?;
    let root = &model.root;
    let name = name.unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let payload = vouch_oms::build_statement(&name, &manifest, &ignore);
    let (bundle_json, keyless) = signer.sign_statement(payload)?;
    files::write_atomic(&signature, &bundle_json, 0o644)?;
    if output.json {
        return print_json(&json!({
            "signature": signature,
            "name": name,
            "files": manifest.file_count(),
            "bytes": manifest.total_bytes(),
            "modelDigest": manifest.model_digest().map(|d| d.to_string()),
            "omsDigest": manifest.oms_digest().to_string(),
            "keyHint": match signer {
                super::keyless::DsseSigner::Key(key) => Some(key.public_key().hint()),
                super::keyless::DsseSigner::Keyless(_) => None,
            },
            "identity": keyless.as_ref().map(|k| &k.identity),
            "issuer": keyless.as_ref().map(|k| &k.issuer),
            "logIndex": keyless.as_ref().and_then(|k| k.log_index),
        }));
    }
    if !output.quiet {
        eprintln!(
            "signed `{name}`: {} files, {} ({})\nsignature: {}\noms digest: {}",
            manifest.file_count(),
            human_bytes(manifest.total_bytes()),
            manifest.algorithm,
            signature.display(),
            manifest.oms_digest()
        );
        if let Some(k) = &keyless {
            eprintln!("signed as {} (issuer {})", k.identity, k.issuer);
        }
    }
    Ok(())
}

/// The `--certificate-chain` file; a key is refused with the flag that takes it.
fn read_chain(chain: &Path) -> Result<Vec<u8>> {
    let bytes = files::read(chain, "certificate chain")?;
    match files::pem_holds(&bytes) {
        files::PemHolds::PublicKey => Err(Failure::usage(format!(
            "`--certificate-chain {}` is a public key, not certificates",
            chain.display()
        ))
        .code("trust-material")
        .hint("pass a public key with `--key` instead")),
        files::PemHolds::PrivateKey => Err(Failure::usage(format!(
            "`--certificate-chain {}` is a private key, not certificates",
            chain.display()
        ))
        .code("trust-material")
        .hint("pass the CA certificates (`-----BEGIN CERTIFICATE-----`) that issued the signing certificate")),
        _ => Ok(bytes),
    }
}

pub fn load_trust(args: &TrustArgs) -> Result<Trust> {
    match (&args.key, &args.certificate_chain) {
        (Some(key), None) => Ok(Trust::Key(
            PublicKey::from_pem(&files::read_public_key(key, files::CertificateFlag::Chain)?).map_err(|e| {
                Failure::usage(format!("`--key {}`: {e}", key.display()))
                    .code("trust-material")
                    .hint("`--key` takes a PEM public key (ECDSA P-256 or P-384), as `vouch key generate` writes (`P.pub`)")
            })?,
        )),
        (None, Some(chain)) => Ok(Trust::Certificates(
            CertificateAuthorities::from_pem(&read_chain(chain)?).map_err(|e| {
                Failure::usage(format!("`--certificate-chain {}`: {e}", chain.display()))
                    .code("trust-material")
                    .hint("`--certificate-chain` takes PEM certificates (`-----BEGIN CERTIFICATE-----`) of the authorities that issue signing certificates")
            })?,
        )),
        _ => Err(Failure::undecided(
            "give exactly one of `--key` or `--certificate-chain`",
        )),
    }
}

fn verify(
    dir: &Path,
    signature: &Path,
    trust: &super::keyless::BundleTrust,
    ignore: &IgnoreArgs,
    output: &OutputArgs,
) -> Result {
    let model = model_target(dir)?;
    let verified = trust.verify(&files::read_bundle(signature, files::BundleUse::Signature)?)?;
    let statement = vouch_oms::statement_from(verified)?;
    let mut extra = model_ignore_set(&model, ignore)?;
    if !model.single_file
        && let Some(inside) = file_in_model(&model.root, signature)
    {
        extra.insert(inside);
    }
    let quiet = output.quiet || output.json;
    let report = with_bar(None, quiet, |p| {
        vouch_oms::verify_model(&model.root, &statement, &extra, 0, p)
    })?;
    let (st, signer) = statement.get();
    let report = report.get();
    if output.json {
        return print_json(&json!({
            "verified": true,
            "outcome": "verified",
            "name": st.name,
            "signer": signer.to_string(),
            "files": report.files,
            "bytes": report.bytes,
            "omsDigest": report.digest.to_string(),
        }));
    }
    if !output.quiet {
        println!(
            "verified: `{}` ({} files, {}) matches its signature by {signer}\noms digest: {}",
            st.name,
            report.files,
            human_bytes(report.bytes),
            report.digest
        );
    }
    Ok(())
}
