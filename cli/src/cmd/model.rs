use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::json;
use vouch_model::{
    HashAlgorithm, HashOptions, IgnoreSet, Manifest, Method, ModelPath, ScanOptions,
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
            signature,
            name,
            hashing,
            output,
        } => sign(&dir, &key, signature, name, &hashing, &output),
        ModelCommand::Verify {
            dir,
            signature,
            trust,
            ignore,
            output,
        } => verify(&dir, &signature, &trust, &ignore, &output),
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

/// A path given on the command line, as a path inside the model (`None` when it lies outside).
fn inside_model(root: &Path, path: &Path) -> Result<Option<ModelPath>> {
    let rel = if path.is_absolute() {
        match path.strip_prefix(root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => return Ok(None),
        }
    } else {
        path.to_path_buf()
    };
    ModelPath::from_relative(&rel)
        .map(Some)
        .map_err(Failure::undecided)
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
        match inside_model(root, p)? {
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
    let root = model_root(dir)?;
    let scan = ScanOptions {
        ignore: ignore_set(&root, &args.ignore)?,
        reject_hard_links: false,
    };
    let manifest = hash_model(
        &root,
        &scan,
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
    key_path: &Path,
    signature: Option<PathBuf>,
    name: Option<String>,
    args: &HashingArgs,
    output: &OutputArgs,
) -> Result {
    let root = model_root(dir)?;
    let key = vouch_sign::SigningKey::from_pem(&files::read(key_path, "private key")?)
        .map_err(|e| Failure::undecided(format!("`{}`: {e}", key_path.display())))?;
    let signature = signature.unwrap_or_else(|| dir.join("model.sig"));
    let mut ignore = ignore_set(&root, &args.ignore)?;
    if let Some(inside) = file_in_model(&root, &signature) {
        ignore.insert(inside);
    }
    let scan = ScanOptions {
        ignore: ignore.clone(),
        reject_hard_links: false,
    };
    let manifest = hash_model(
        &root,
        &scan,
        &hash_options(args),
        output.quiet || output.json,
    )?;
    let name = name.unwrap_or_else(|| {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let payload = vouch_oms::build_statement(&name, &manifest, &ignore);
    let bundle = key.sign_dsse(vouch_bundle::IN_TOTO_PAYLOAD_TYPE, payload)?;
    files::write_atomic(&signature, &bundle.to_json(), 0o644)?;
    if output.json {
        return print_json(&json!({
            "signature": signature,
            "name": name,
            "files": manifest.file_count(),
            "bytes": manifest.total_bytes(),
            "modelDigest": manifest.model_digest().map(|d| d.to_string()),
            "omsDigest": manifest.oms_digest().to_string(),
            "keyHint": key.public_key().hint(),
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
    }
    Ok(())
}

pub fn load_trust(args: &TrustArgs) -> Result<Trust> {
    match (&args.key, &args.certificate_chain) {
        (Some(key), None) => Ok(Trust::Key(
            PublicKey::from_pem(&files::read(key, "public key")?)
                .map_err(|e| Failure::undecided(format!("`{}`: {e}", key.display())))?,
        )),
        (None, Some(chain)) => Ok(Trust::Certificates(
            CertificateAuthorities::from_pem(&files::read(chain, "certificate chain")?)
                .map_err(|e| Failure::undecided(format!("`{}`: {e}", chain.display())))?,
        )),
        _ => Err(Failure::undecided(
            "give exactly one of `--key` or `--certificate-chain`",
        )),
    }
}

fn verify(
    dir: &Path,
    signature: &Path,
    trust: &TrustArgs,
    ignore: &IgnoreArgs,
    output: &OutputArgs,
) -> Result {
    let root = model_root(dir)?;
    let trust = load_trust(trust)?;
    let bundle = vouch_bundle::Bundle::from_json(&files::read(signature, "signature")?)?;
    let verified = vouch_trust::verify_envelope(&bundle, &trust, SystemTime::now())?;
    let statement = vouch_oms::statement_from(verified)?;
    let mut extra = ignore_set(&root, ignore)?;
    if let Some(inside) = file_in_model(&root, signature) {
        extra.insert(inside);
    }
    let quiet = output.quiet || output.json;
    let report = with_bar(None, quiet, |p| {
        vouch_oms::verify_model(&root, &statement, &extra, 0, p)
    })?;
    let (st, signer) = statement.get();
    let report = report.get();
    if output.json {
        return print_json(&json!({
            "verified": true,
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
