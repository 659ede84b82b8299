//! `--model-artifact`: the model pulled from a ModelPack artifact into the model volume,
//! verified while it streams, for clusters without image volumes.
//!
//! Each step runs only when the one before passed, and nothing in the volume changes before
//! the attestation and the manifest are checked:
//! 1. the attestation (`run.rs`) names this artifact's manifest digest;
//! 2. the manifest, fetched by that digest and re-hashed, lists exactly the attested files,
//!    its paths under the rules of `vouch attest --model-artifact`
//!    ([`vouch_attest::check_artifact_files`]);
//! 3. every blob streams into a new directory `DIR/.vouch-pull-*`, hashed as it is written
//!    ([`vouch_oci::modelpack::pull`]); only when every size and digest matched are the files
//!    moved into `DIR` (one `rename` per top-level entry), then the directory is removed.
//!    On any failure everything written is removed.
//!
//! `DIR` must be empty. A `.vouch-pull-*` directory left by a run that was killed is removed
//! first (nothing ever loads from one: a model is moved out of it only when verified). A
//! `DIR` that holds anything else is checked in place as `--model-dir` alone checks it (a
//! restarted Pod whose volume kept the verified model passes; anything else is refused).

use std::collections::BTreeSet;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde_json::json;
use vouch_attest::{ArtifactFile, ModelReport};
use vouch_oci::ImageReference;
use vouch_oci::modelpack::{self, PullFile};

use crate::config::{Config, Failure};
use crate::run::{VerifiedAttestation, attest_failure};

/// The name of the temporary directory starts so; a model path may not.
pub const TEMP_PREFIX: &str = ".vouch-pull-";

/// What `--model-artifact` did.
#[derive(Debug)]
pub struct Pulled {
    /// The files, as checked.
    pub report: ModelReport,
    /// Whether they were pulled (`false`: they were in the directory already, and checked).
    pub pulled: bool,
}

/// What the model directory holds before anything is written.
#[derive(Debug, PartialEq, Eq)]
struct Volume {
    /// `.vouch-pull-*` directories of earlier runs.
    stale: Vec<PathBuf>,
    /// Every other entry.
    other: Vec<PathBuf>,
}

fn undecided(m: String) -> Failure {
    Failure::Undecided(m)
}

/// The entries of `dir`, which must be a directory. Only read.
fn volume(dir: &Path) -> Result<Volume, Failure> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| {
        undecided(format!(
            "cannot use the model directory `{shown}`: {e}\nhint: mount the model volume (an `emptyDir`) at `--model-dir`"
        ))
    })?;
    if !meta.is_dir() {
        return Err(undecided(format!(
            "the model directory `{shown}` is not a directory\nhint: mount the model volume (an `emptyDir`) at `--model-dir`"
        )));
    }
    let mut v = Volume {
        stale: Vec::new(),
        other: Vec::new(),
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| undecided(format!("cannot list the model directory `{shown}`: {e}")))?;
    for e in entries {
        let e =
            e.map_err(|e| undecided(format!("cannot list the model directory `{shown}`: {e}")))?;
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let ours = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if ours && is_dir {
            v.stale.push(e.path());
        } else {
            v.other.push(e.path());
        }
    }
    v.stale.sort();
    v.other.sort();
    Ok(v)
}

/// Pull (or check in place) the model of `artifact` into `c.model_dir`, for `attestation`,
/// which already passed signature, image, pin and artifact digest.
pub fn pull(
    c: &Config,
    artifact: &ImageReference,
    attestation: &VerifiedAttestation,
) -> Result<Pulled, Failure> {
    let dir = &c.model_dir;
    let found = volume(dir)?;
    if !found.other.is_empty() {
        return check_in_place(c, &found, attestation);
    }

    // The manifest, by digest (re-hashed), and its files against the attested ones.
    let (_, layers) = modelpack::fetch_manifest(artifact, &c.registry).map_err(|e| {
        let hint = e
            .hint()
            .or_else(|| {
                matches!(e, vouch_oci::Error::Malformed { .. }).then(|| {
                    "pull a ModelPack artifact with raw layers (`vouch model push DIR REPO:TAG` makes one), the one the attestation names".to_owned()
                })
            })
            .map(|h| format!("\nhint: {h}"))
            .unwrap_or_default();
        let m = format!("cannot use the model artifact {artifact}: {e}{hint}");
        if matches!(e, vouch_oci::Error::Malformed { .. }) {
            Failure::Rejected(m)
        } else {
            Failure::Undecided(m)
        }
    })?;
    let files: Vec<ArtifactFile<'_>> = layers
        .iter()
        .map(|l| ArtifactFile {
            path: &l.path,
            size: l.size,
            digest: &l.digest,
        })
        .collect();
    let model = vouch_attest::check_artifact_files(attestation, &files).map_err(|e| match e {
        vouch_attest::Error::Mismatch(diffs) => {
            let lines: Vec<String> = diffs.iter().map(|d| format!("  - {d}")).collect();
            Failure::Differs {
                kind: "model-mismatch",
                message: format!(
                    "the model artifact {artifact} does not list the attested files:\n{}\nhint: {MANIFEST_HINT}",
                    lines.join("\n")
                ),
                reasons: diffs
                    .iter()
                    .map(|d| crate::run::difference_json(d, MANIFEST_HINT))
                    .collect(),
            }
        }
        vouch_attest::Error::Artifact(m) => Failure::Rejected(format!(
            "the model artifact {artifact} cannot be pulled: {m}\nhint: the artifact's layer annotations must name each file once, by a relative path inside the model; push it again with `vouch model push DIR REPO:TAG`"
        )),
        other => attest_failure(other),
    })?;
    let model = model.into_inner();
    let plan = plan(&model)?;

    // Only now is the volume written to.
    remove_stale(&found)?;
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&temp)
        .map_err(|e| {
            undecided(format!(
                "cannot create `{}` in the model directory: {e}\nhint: the model volume must be writable by vouch-init",
                temp.display()
            ))
        })?;
    let result = fill(c, artifact, &temp, &plan);
    let result = result.and_then(|bytes| move_into_place(dir, &temp).map(|()| bytes));
    match result {
        Ok(bytes) => Ok(Pulled {
            report: ModelReport {
                files: model.files.len(),
                bytes,
                digest: model.digest,
            },
            pulled: true,
        }),
        Err(f) => Err(with_cleanup(f, &temp)),
    }
}

const NOT_EMPTY_HINT: &str = "mount an empty volume (an `emptyDir`) at `--model-dir`; a directory that holds files passes only when they are the attested model (a restarted Pod's volume)";

const MANIFEST_HINT: &str = "the artifact is not the model CI attested; pull the artifact the attestation was made for (`vouch attest --model-artifact`), or attest this one";

/// What to write: the directories to make (parents first) and the files, as checked paths.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    dirs: Vec<String>,
    files: Vec<(String, u64, String)>,
}

fn plan(model: &vouch_attest::Model) -> Result<Plan, Failure> {
    let mut dirs = BTreeSet::new();
    let mut files = Vec::with_capacity(model.files.len());
    for f in &model.files {
        let path = f.path.as_str();
        if path.starts_with(TEMP_PREFIX) {
            return Err(Failure::Rejected(format!(
                "the model artifact names a file `{path}`: names starting with `{TEMP_PREFIX}` are vouch-init's own\nhint: rename it in the model and push it again"
            )));
        }
        let mut prefix = String::new();
        let components: Vec<&str> = f.path.components().collect();
        for c in components.iter().take(components.len().saturating_sub(1)) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            dirs.insert(prefix.clone());
        }
        let digest = match f.resources.as_slice() {
            [r] => r.digest.to_string(),
            _ => {
                return Err(Failure::Rejected(format!(
                    "`{path}` is attested as shards; an artifact's layers are whole files"
                )));
            }
        };
        files.push((path.to_owned(), f.size, digest));
    }
    // BTreeSet order puts `a` before `a/b`: parents first.
    Ok(Plan {
        dirs: dirs.into_iter().collect(),
        files,
    })
}

/// Make the directories, then stream every file into `temp`; the bytes written.
fn fill(c: &Config, artifact: &ImageReference, temp: &Path, plan: &Plan) -> Result<u64, Failure> {
    for d in &plan.dirs {
        let at = temp.join(d);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&at)
            .map_err(|e| undecided(format!("cannot create `{}`: {e}", at.display())))?;
    }
    let files: Vec<PullFile> = plan
        .files
        .iter()
        .map(|(path, size, digest)| {
            let at = temp.join(path);
            PullFile {
                path: path.clone(),
                digest: digest.clone(),
                size: *size,
                // A new file (`O_CREAT|O_EXCL`: never through a link) in a directory made above.
                create: Box::new(move || {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o644)
                        .open(&at)
                        .map_err(|e| format!("cannot create `{}`: {e}", at.display()))
                }),
            }
        })
        .collect();
    modelpack::pull(artifact, files, &c.registry).map_err(|e| pull_failure(artifact, &e))
}

fn pull_failure(artifact: &ImageReference, e: &vouch_oci::Error) -> Failure {
    let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
    match e {
        vouch_oci::Error::BlobDiffers {
            file,
            expected,
            found,
            ..
        } => {
            let message = format!(
                "the model artifact {artifact} was not pulled (nothing of it is left in the model directory): {e}{hint}"
            );
            Failure::Differs {
                kind: "model-mismatch",
                reasons: vec![json!({
                    "kind": "content-differs",
                    "file": file,
                    "role": vouch_attest::Role::classify(file).name(),
                    "expected": expected,
                    "found": found,
                    "message": e.to_string(),
                    "hint": e.hint(),
                })],
                message,
            }
        }
        _ => undecided(format!(
            "cannot pull the model artifact {artifact}: {e}{hint}"
        )),
    }
}

/// Move every top-level entry of `temp` into `dir`, which must hold nothing but `temp`; on
/// a failure, remove what was moved.
fn move_into_place(dir: &Path, temp: &Path) -> Result<(), Failure> {
    let now = volume(dir)?;
    let appeared = now
        .other
        .iter()
        .chain(now.stale.iter().filter(|s| s.as_path() != temp))
        .next();
    if let Some(first) = appeared {
        return Err(undecided(format!(
            "the model directory `{}` is no longer empty (`{}` appeared while the model was pulled)\nhint: nothing else may write to the model volume while vouch-init runs",
            dir.display(),
            first.display()
        )));
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(temp)
        .and_then(|r| r.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| undecided(format!("cannot list `{}`: {e}", temp.display())))?;
    let mut moved: Vec<PathBuf> = Vec::with_capacity(entries.len());
    for from in entries {
        let Some(name) = from.file_name() else {
            continue;
        };
        let to = dir.join(name);
        if let Err(e) = std::fs::rename(&from, &to) {
            let undo = moved.iter().filter_map(|m| remove(m).err()).next();
            let undo = undo
                .map(|u| format!("; and removing what was moved failed: {u}"))
                .unwrap_or_default();
            return Err(undecided(format!(
                "cannot move `{}` into place: {e}{undo}",
                from.display()
            )));
        }
        moved.push(to);
    }
    std::fs::remove_dir(temp)
        .map_err(|e| undecided(format!("cannot remove `{}`: {e}", temp.display())))
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `f`, once `temp` (and all it holds) is removed; if that fails too, the failure says so.
fn with_cleanup(f: Failure, temp: &Path) -> Failure {
    let Err(e) = remove(temp) else {
        return f;
    };
    let extra = format!(
        "\n  - and `{}` could not be removed: {e} (a later vouch-init removes it; nothing loads from it)",
        temp.display()
    );
    let add = |m: &str| match m.find("\nhint: ") {
        Some(i) => {
            let (text, hints) = m.split_at(i);
            format!("{text}{extra}{hints}")
        }
        None => format!("{m}{extra}"),
    };
    match f {
        Failure::Rejected(m) => Failure::Rejected(add(&m)),
        Failure::Undecided(m) => Failure::Undecided(add(&m)),
        Failure::Differs {
            kind,
            message,
            reasons,
        } => Failure::Differs {
            kind,
            message: add(&message),
            reasons,
        },
    }
}

/// A directory that holds files already: checked in place, as `--model-dir` alone checks it,
/// once the temporary directories of earlier runs are gone.
/// Remove the temporary directories of earlier pulls that did not finish.
fn remove_stale(found: &Volume) -> Result<(), Failure> {
    for s in &found.stale {
        std::fs::remove_dir_all(s).map_err(|e| {
            undecided(format!(
                "cannot remove `{}`, left by an earlier pull that did not finish: {e}",
                s.display()
            ))
        })?;
    }
    Ok(())
}

fn check_in_place(
    c: &Config,
    found: &Volume,
    attestation: &VerifiedAttestation,
) -> Result<Pulled, Failure> {
    remove_stale(found)?;
    let options = vouch_attest::CheckOptions {
        reject_hard_links: true,
        threads: c.threads,
        ..Default::default()
    };
    let report = vouch_attest::check_model(&c.model_dir, attestation, &options, None).map_err(
        |e| match e {
            vouch_attest::Error::Mismatch(diffs) => {
                let lines: Vec<String> = diffs.iter().map(|d| format!("  - {d}")).collect();
                Failure::Differs {
                    kind: "model-mismatch",
                    message: format!(
                        "`--model-artifact` pulls into an empty directory, and `{}` is not empty: what it holds does not match the signed attestation:\n{}\nhint: {NOT_EMPTY_HINT}",
                        c.model_dir.display(),
                        lines.join("\n")
                    ),
                    reasons: diffs
                        .iter()
                        .map(|d| crate::run::difference_json(d, NOT_EMPTY_HINT))
                        .collect(),
                }
            }
            other => attest_failure(other),
        },
    )?;
    Ok(Pulled {
        report: report.into_inner(),
        pulled: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_volume_and_one_with_a_stale_pull() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            volume(d.path()).unwrap(),
            Volume {
                stale: vec![],
                other: vec![]
            }
        );
        std::fs::create_dir(d.path().join(".vouch-pull-1-2")).unwrap();
        std::fs::write(d.path().join(".vouch-pull-1-2/x"), b"x").unwrap();
        // A file with the prefix is not ours: only directories are.
        std::fs::write(d.path().join(".vouch-pull-file"), b"x").unwrap();
        let v = volume(d.path()).unwrap();
        assert_eq!(v.stale, vec![d.path().join(".vouch-pull-1-2")]);
        assert_eq!(v.other, vec![d.path().join(".vouch-pull-file")]);
    }

    #[test]
    fn a_volume_that_is_not_a_directory_is_undecided() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"").unwrap();
        for p in [f, d.path().join("missing")] {
            let e = volume(&p).unwrap_err();
            assert!(matches!(e, Failure::Undecided(_)), "{e:?}");
        }
    }

    fn model(paths: &[&str]) -> vouch_attest::Model {
        let d = vouch_model::Digest::sha256(b"x").to_string();
        let files: Vec<ArtifactFile<'_>> = paths
            .iter()
            .map(|p| ArtifactFile {
                path: p,
                size: 1,
                digest: &d,
            })
            .collect();
        let artifact = vouch_attest::ModelArtifact {
            name: "r/m".into(),
            digest: vouch_model::Digest::sha256(b"m"),
            media_type: None,
        };
        vouch_attest::Model::from_artifact("m", artifact, &files).unwrap()
    }

    #[test]
    fn the_plan_makes_parents_first_and_refuses_our_own_names() {
        let p = plan(&model(&["a/b/c.bin", "a/d.json", "e.txt", "f/g"])).unwrap();
        assert_eq!(p.dirs, ["a", "a/b", "f"]);
        let paths: Vec<&str> = p.files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(paths, ["a/b/c.bin", "a/d.json", "e.txt", "f/g"]);
        assert!(p.files[0].2.starts_with("sha256:"));
        let e = plan(&model(&[".vouch-pull-1/x"])).unwrap_err();
        assert!(e.message().contains("vouch-init's own"), "{e:?}");
    }

    #[test]
    fn moving_into_place_needs_a_directory_that_holds_only_the_pull() {
        let d = tempfile::tempdir().unwrap();
        let temp = d.path().join(".vouch-pull-9-9");
        std::fs::create_dir_all(temp.join("sub")).unwrap();
        std::fs::write(temp.join("sub/w"), b"w").unwrap();
        std::fs::write(temp.join("c.json"), b"{}").unwrap();
        move_into_place(d.path(), &temp).unwrap();
        assert!(!temp.exists());
        assert_eq!(std::fs::read(d.path().join("sub/w")).unwrap(), b"w");
        assert_eq!(std::fs::read(d.path().join("c.json")).unwrap(), b"{}");

        let d = tempfile::tempdir().unwrap();
        let temp = d.path().join(".vouch-pull-9-9");
        std::fs::create_dir(&temp).unwrap();
        std::fs::write(temp.join("c.json"), b"{}").unwrap();
        std::fs::write(d.path().join("intruder"), b"").unwrap();
        let e = move_into_place(d.path(), &temp).unwrap_err();
        assert!(e.message().contains("no longer empty"), "{e:?}");
        assert!(!d.path().join("c.json").exists());
    }

    #[test]
    fn a_failure_removes_the_temporary_directory() {
        let d = tempfile::tempdir().unwrap();
        let temp = d.path().join(".vouch-pull-9-9");
        std::fs::create_dir_all(temp.join("a/b")).unwrap();
        std::fs::write(temp.join("a/b/w"), b"w").unwrap();
        let f = with_cleanup(Failure::Rejected("no\nhint: h".into()), &temp);
        assert_eq!(f.message(), "no\nhint: h");
        assert!(!temp.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
