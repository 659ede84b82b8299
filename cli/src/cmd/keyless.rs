//! Keyless signing from the command line: which services, which identity token, and how a
//! signing failure is reported. Shared by `vouch sign-bundle`, `vouch model sign --keyless`
//! and `vouch attest --keyless`; the work is in `vouch-keyless`.

use std::path::PathBuf;

use clap::Args;
use vouch_keyless::{Error, Instance, KeylessSigner, Services, Signed, TokenSource};
use vouch_sigstore::{Artifact, Signer, TrustedRoot};

use crate::failure::{Failure, Result};
use crate::files;

/// Where keyless signing gets its identity and which services it uses.
#[derive(Debug, Clone, Args)]
pub struct KeylessArgs {
    /// The OIDC identity token (a JWT) [default: `$SIGSTORE_ID_TOKEN`, then the CI's ambient
    /// token, e.g. GitHub Actions with `permissions: id-token: write`].
    #[arg(long, value_name = "TOKEN")]
    pub identity_token: Option<String>,
    /// A Sigstore signing config (`signing_config.v0.2.json`) naming Fulcio, Rekor and the
    /// timestamp authority [default: the embedded public-good production snapshot].
    #[arg(
        long,
        value_name = "FILE",
        env = "VOUCH_SIGNING_CONFIG",
        hide_env_values = true
    )]
    pub signing_config: Option<PathBuf>,
    /// Fulcio base URL (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub fulcio_url: Option<String>,
    /// Rekor v1 base URL (overrides the signing config).
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,
    /// RFC 3161 timestamp authority URL, e.g. `https://HOST/api/v1/timestamp` (overrides
    /// the signing config).
    #[arg(long, value_name = "URL")]
    pub tsa_url: Option<String>,
}

impl KeylessArgs {
    /// Whether any of these flags was given.
    pub fn any(&self) -> bool {
        self.identity_token.is_some()
            || self.signing_config.is_some()
            || self.fulcio_url.is_some()
            || self.rekor_url.is_some()
            || self.tsa_url.is_some()
    }

    /// The services to submit to: the signing config, the embedded instance, or the URLs.
    pub fn services(&self, staging: bool) -> Result<Services> {
        let (fulcio, rekor, tsa) = (
            self.fulcio_url.as_deref(),
            self.rekor_url.as_deref(),
            self.tsa_url.as_deref(),
        );
        let base = match (&self.signing_config, fulcio, rekor) {
            (Some(path), _, _) => {
                Services::from_signing_config(&files::read(path, "signing config")?)
                    .map_err(failure)?
            }
            // Both given explicitly: nothing from an embedded config (not even its TSA).
            (None, Some(fulcio), Some(rekor)) => {
                return Services::from_urls(fulcio, rekor, tsa).map_err(failure);
            }
            (None, _, _) => Services::embedded(if staging {
                Instance::Staging
            } else {
                Instance::Production
            })
            .map_err(failure)?,
        };
        base.with_overrides(fulcio, rekor, tsa).map_err(failure)
    }

    /// A signer with the identity token found (see `vouch_keyless::find_token`).
    pub fn signer(&self, staging: bool) -> Result<(KeylessSigner, TokenSource)> {
        let services = self.services(staging)?;
        let (token, source) =
            vouch_keyless::find_token(self.identity_token.as_deref()).map_err(failure)?;
        let signer = KeylessSigner::new(&services, token).map_err(failure)?;
        Ok((signer, source))
    }
}

/// Check a freshly signed bundle against a trusted root, for the identity and issuer its
/// certificate names: catches a Fulcio, Rekor or TSA that the root does not trust before
/// the bundle is handed out.
pub fn check_signed(signed: &Signed, root: &std::path::Path, artifact: Artifact<'_>) -> Result {
    let root = TrustedRoot::from_json(&files::read(root, "trusted root")?)
        .map_err(|e| Failure::undecided(e).hint("pass the instance's `trusted_root.json`"))?;
    let signer = Signer::Identity {
        identity: signed.identity.clone(),
        issuer: signed.issuer.clone(),
    };
    vouch_sigstore::verify(signed.bundle_json.as_bytes(), &root, &signer, artifact).map_err(
        |e| {
            Failure::undecided(format!(
                "the new bundle does not verify against the trusted root: {e}"
            ))
            .hint("the services that signed are not the ones this trusted root trusts; nothing was written")
        },
    )?;
    Ok(())
}

/// The SHA-256 digest of the first subject of an in-toto statement (to check a DSSE bundle).
pub fn first_subject_sha256(statement: &[u8]) -> Option<[u8; 32]> {
    let v: serde_json::Value = serde_json::from_slice(statement).ok()?;
    let hex = v
        .get("subject")?
        .get(0)?
        .get("digest")?
        .get("sha256")?
        .as_str()?;
    vouch_sigstore::parse_sha256_digest(&format!("sha256:{hex}"))
}

/// How a keyless signing failure is reported: always "could not decide" (exit 2).
pub fn failure(e: Error) -> Failure {
    let f = Failure::undecided(&e).code("keyless");
    match &e {
        Error::NoToken => f.hint(format!(
            "pass `--identity-token JWT`, set `{}`, or run in GitHub Actions with `permissions: id-token: write`",
            vouch_keyless::TOKEN_ENV
        )),
        Error::TokenExpired(_) => f.hint("identity tokens live minutes: get a fresh one and sign right away"),
        Error::Token(_) => f.hint("the token must be a JWT (header.claims.signature) with `iss`, `sub` and `exp` claims"),
        Error::SigningConfig(_) | Error::Url { .. } => f.hint(
            "pass the instance's `signing_config.v0.2.json` with `--signing-config`, or `--fulcio-url URL --rekor-url URL [--tsa-url URL]`",
        ),
        Error::GitHubActions { refused: true, .. } => f.hint(format!(
            "the service refused `{}`: give the job `permissions: id-token: write` and pass the runner's `{}` and `{}` unchanged (or give a token with `--identity-token`)",
            vouch_keyless::ACTIONS_TOKEN_ENV,
            vouch_keyless::ACTIONS_URL_ENV,
            vouch_keyless::ACTIONS_TOKEN_ENV
        )),
        Error::GitHubActions { .. } => f.hint(format!(
            "check `{}`: it is the runner's token service, set by GitHub Actions for jobs with `permissions: id-token: write`",
            vouch_keyless::ACTIONS_URL_ENV
        )),
        Error::Fulcio { .. } => f.hint("check that Fulcio trusts the token's issuer, that the token's audience is `sigstore`, and that the URL is right"),
        Error::Rekor { .. } | Error::Tsa { .. } => f.hint("check the URL and that the service is up; signing again gets a new certificate"),
        _ => f,
    }
}

/// How a DSSE statement gets signed: a local key, or keylessly.
#[derive(Debug)]
pub enum DsseSigner {
    /// A private key file (the bundle names the key by its hint; no log entry).
    Key(vouch_sign::SigningKey),
    /// An identity token, Fulcio and Rekor.
    Keyless(Box<KeylessSigner>),
}

impl DsseSigner {
    /// `--key FILE` or `--keyless` (exactly one; clap enforces it, this double-checks).
    /// `keyless_flags` are the keyless flags given (refused with `--key`).
    pub fn new(
        key: Option<&std::path::Path>,
        keyless: Option<&KeylessArgs>,
        keyless_flags: Option<&KeylessArgs>,
    ) -> Result<Self> {
        match (key, keyless) {
            (Some(_), None) if keyless_flags.is_some_and(KeylessArgs::any) => {
                Err(Failure::undecided(
                    "`--identity-token`, `--signing-config`, `--fulcio-url`, `--rekor-url` and `--tsa-url` go with `--keyless`, not `--key`",
                ))
            }
            (Some(path), None) => {
                vouch_sign::SigningKey::from_pem(&files::read_private_key(path)?)
                    .map(DsseSigner::Key)
                    .map_err(|e| {
                        Failure::usage(format!("`--key {}`: {e}", path.display()))
                            .code("trust-material")
                            .hint("`--key` takes a PEM private key (PKCS#8 or SEC 1, ECDSA P-256 or P-384), as `vouch key generate` writes (`P.key`)")
                    })
            }
            (None, Some(args)) => Ok(DsseSigner::Keyless(Box::new(args.signer(false)?.0))),
            _ => Err(Failure::undecided(
                "give exactly one of `--key KEY` and `--keyless`",
            )),
        }
    }

    /// Sign an in-toto statement (exactly these bytes); the bundle JSON and, for keyless, who
    /// the certificate names.
    pub fn sign_statement(&self, statement: Vec<u8>) -> Result<(Vec<u8>, Option<Signed>)> {
        match self {
            DsseSigner::Key(key) => Ok((
                key.sign_dsse(vouch_bundle::IN_TOTO_PAYLOAD_TYPE, statement)?
                    .to_json(),
                None,
            )),
            DsseSigner::Keyless(signer) => {
                let signed = signer.sign_in_toto(&statement).map_err(failure)?;
                Ok((signed.bundle_json.clone().into_bytes(), Some(signed)))
            }
        }
    }
}

/// Whom a DSSE bundle must be signed by: a key or certificate authorities (`vouch-trust`),
/// or a keyless identity checked against a Sigstore trusted root.
#[derive(Debug)]
pub enum BundleTrust {
    /// `--key` or `--certificate-chain`.
    Classic(vouch_trust::Trust),
    /// `--certificate-identity` + `--certificate-oidc-issuer` [+ `--trusted-root`].
    Keyless {
        /// The trusted root.
        root: Box<TrustedRoot>,
        /// The exact SAN.
        identity: String,
        /// The exact OIDC issuer.
        issuer: String,
    },
}

impl BundleTrust {
    /// Keyless trust; without `trusted_root`, the embedded public-good production root.
    pub fn keyless(
        identity: &str,
        issuer: &str,
        trusted_root: Option<&std::path::Path>,
    ) -> Result<Self> {
        let root = match trusted_root {
            Some(path) => TrustedRoot::from_json(&files::read(path, "trusted root")?),
            None => TrustedRoot::embedded(vouch_sigstore::Instance::Production),
        }
        .map_err(super::verify_bundle::failure)?;
        Ok(BundleTrust::Keyless {
            root: Box::new(root),
            identity: identity.to_owned(),
            issuer: issuer.to_owned(),
        })
    }

    /// Check a bundle (its JSON bytes): the signed in-toto statement and who signed it.
    pub fn verify(
        &self,
        bytes: &[u8],
    ) -> Result<vouch_trust::Verified<vouch_trust::SignedPayload>> {
        match self {
            BundleTrust::Classic(trust) => {
                let bundle = vouch_bundle::Bundle::from_json(bytes)?;
                Ok(vouch_trust::verify_envelope(
                    &bundle,
                    trust,
                    std::time::SystemTime::now(),
                )?)
            }
            BundleTrust::Keyless {
                root,
                identity,
                issuer,
            } => vouch_trust::verify_keyless(bytes, root, identity, issuer)
                .map_err(super::verify_bundle::failure),
        }
    }
}
