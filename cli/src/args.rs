//! Raw command-line arguments (step one of two: `cmd` turns them into typed settings).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Prove that the model running in your cluster is the model your CI released.
#[derive(Debug, Parser)]
#[command(
    name = "vouch",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether the command was asked for JSON output (`--json`): then a failure is a JSON
    /// document on stdout as well as text on stderr.
    pub fn json(&self) -> bool {
        match &self.command {
            Command::Key(_) => false,
            Command::Model(
                ModelCommand::Hash { output, .. }
                | ModelCommand::Sign { output, .. }
                | ModelCommand::Verify { output, .. }
                | ModelCommand::Push { output, .. },
            ) => output.json,
            Command::Attest(a) => a.output_format.json,
            Command::Verify(v) => v.output.json,
            Command::Inspect(i) => i.json,
            Command::Policy(crate::cmd::policy::PolicyCommand::Check(c)) => c.json,
            Command::VerifyBundle(v) => v.output.json,
            Command::SignBundle(s) => s.output.json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Hash, sign and verify model directories (OpenSSF Model Signing format).
    #[command(subcommand)]
    Model(ModelCommand),
    /// Sign an image and a model together into one combined attestation.
    Attest(AttestArgs),
    /// Verify a combined attestation: signature, image digest and (with --model) every file.
    Verify(VerifyArgs),
    /// Show what an attestation says (signer, images, model files by role, metadata).
    Inspect(InspectArgs),
    /// Trust policies: check manifests offline with the admission decision.
    #[command(subcommand)]
    Policy(crate::cmd::policy::PolicyCommand),
    /// Verify any Sigstore bundle (certificate identity or managed key), offline: the
    /// sigstore-conformance protocol.
    VerifyBundle(crate::cmd::verify_bundle::VerifyBundleArgs),
    /// Sign any file keylessly (OIDC token -> Fulcio certificate -> Rekor entry) into a
    /// Sigstore bundle: the sigstore-conformance protocol.
    SignBundle(crate::cmd::sign_bundle::SignBundleArgs),
}

/// Registry access.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to a registry that is not on the loopback interface.
    #[arg(long)]
    pub allow_insecure_registry: bool,
    /// PEM file of CA certificates trusted for registries besides the system store;
    /// loopback registries are then spoken to over HTTPS too.
    #[arg(
        long,
        env = "VOUCH_REGISTRY_CA",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub registry_ca: Option<std::path::PathBuf>,
    /// Registry user name (default: from the docker config).
    #[arg(
        long,
        env = "VOUCH_REGISTRY_USERNAME",
        value_name = "USER",
        hide_env_values = true
    )]
    pub registry_username: Option<String>,
    /// Registry password or token (prefer the environment variable).
    #[arg(
        long,
        env = "VOUCH_REGISTRY_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The image, by digest (`REF@sha256:HEX`) or tag (resolved to its digest, which is what
    /// gets signed).
    #[arg(
        long,
        value_name = "REF",
        required_unless_present = "image_layout",
        conflicts_with = "image_layout"
    )]
    pub image: Option<String>,
    /// A local OCI image layout (as written by `umoci` or `skopeo copy oci:`), `DIR[:TAG]`.
    #[arg(long, value_name = "DIR[:TAG]")]
    pub image_layout: Option<String>,
    /// Image name recorded for `--image-layout` [default: the layout directory's name].
    #[arg(long, value_name = "NAME", requires = "image_layout")]
    pub image_name: Option<String>,
    /// The model directory.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "model_artifact",
        conflicts_with = "model_artifact"
    )]
    pub model: Option<std::path::PathBuf>,
    /// The model as an OCI artifact (CNCF ModelPack, raw layers), by digest: attested from
    /// its manifest (paths, sizes and digests of the layers), without pulling the weights.
    #[arg(long, value_name = "REF@sha256:HEX", conflicts_with_all = ["shard_size", "ignore_paths"])]
    pub model_artifact: Option<String>,
    /// Model name [default: the directory's (or the artifact repository's) name].
    #[arg(long)]
    pub name: Option<String>,
    /// PEM private key (ECDSA P-256 or P-384).
    #[arg(
        long,
        value_name = "KEY",
        required_unless_present = "keyless",
        conflicts_with = "keyless"
    )]
    pub key: Option<std::path::PathBuf>,
    /// Sign without a long-lived key: an OIDC identity token buys a short-lived Fulcio
    /// certificate, and the signature is logged in Rekor.
    #[arg(long)]
    pub keyless: bool,
    #[command(flatten)]
    pub keyless_args: crate::cmd::keyless::KeylessArgs,
    /// Free metadata recorded in the attestation (version, dataset, owner, purpose,
    /// license, ...). Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotate: Vec<String>,
    /// Write the bundle here.
    #[arg(long, value_name = "FILE", required_unless_present = "push")]
    pub output: Option<std::path::PathBuf>,
    /// Store the bundle in the image's repository, attached to the image (OCI referrer).
    #[arg(long, conflicts_with = "image_layout")]
    pub push: bool,
    #[command(flatten)]
    pub hashing: HashingArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub output_format: OutputArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A bundle file to verify.
    #[arg(long, value_name = "FILE", required_unless_present = "image")]
    pub attestation: Option<std::path::PathBuf>,
    /// The image by digest (`REF@sha256:HEX`). Without `--attestation`, its attestations are
    /// fetched from the registry; with it, the file must cover this image.
    #[arg(long, value_name = "REF@sha256:HEX")]
    pub image: Option<String>,
    /// Also check every file of this model directory against the attestation.
    #[arg(long, value_name = "DIR")]
    pub model: Option<std::path::PathBuf>,
    /// The model artifact (`REF@sha256:HEX`) the attestation must name: one attested with
    /// `vouch attest --model-artifact`.
    #[arg(long, value_name = "REF@sha256:HEX")]
    pub model_artifact: Option<String>,
    /// The model digest the deployment pins (`sha256:HEX`).
    #[arg(long, value_name = "sha256:HEX")]
    pub expect_model_digest: Option<String>,
    #[command(flatten)]
    pub trust: VerifyTrustArgs,
    /// The exact OIDC issuer of a keyless signer's certificate (with
    /// `--certificate-identity`).
    #[arg(long, value_name = "URL", requires = "certificate_identity")]
    pub certificate_oidc_issuer: Option<String>,
    /// The Sigstore trusted root (`trusted_root.json`) for `--certificate-identity`
    /// [default: the embedded public-good production snapshot] (unused with `--key`,
    /// `--certificate-chain` and `--policy`, whose keyless authorities name their own).
    #[arg(
        long,
        value_name = "FILE",
        env = "VOUCH_TRUSTED_ROOT",
        hide_env_values = true
    )]
    pub trusted_root: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Whom `vouch verify` trusts: one key, a certificate chain, or a trust policy.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct VerifyTrustArgs {
    /// PEM public key (ECDSA P-256 or P-384) of the signer.
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// PEM certificates of the authorities that issue signing certificates
    /// (model-signing's certificate mode).
    #[arg(long, value_name = "CA.pem")]
    pub certificate_chain: Option<PathBuf>,
    /// A keyless signer: the exact identity (SAN) of its Fulcio certificate (with
    /// `--certificate-oidc-issuer`; checked offline against `--trusted-root`).
    #[arg(long, value_name = "IDENTITY", requires = "certificate_oidc_issuer")]
    pub certificate_identity: Option<String>,
    /// The trust policy (YAML, `vouch.dev/v1alpha1` `TrustPolicy`): the authorities of its
    /// `images` rules that match `--image` may sign. Needs `--image REF@sha256:HEX`.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A bundle file.
    #[arg(
        value_name = "FILE",
        required_unless_present = "image",
        conflicts_with = "image"
    )]
    pub file: Option<std::path::PathBuf>,
    /// Show the attestations stored in the registry for this image (`REF@sha256:HEX`).
    #[arg(long, value_name = "REF@sha256:HEX")]
    pub image: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Machine-readable JSON on stdout: one document (an array of attestations), or on
    /// failure `{"verified": false, "outcome": "rejected"|"undecided", "errors": [...]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate an ECDSA P-256 key pair: P.key (PKCS#8 PEM, mode 0600) and P.pub (SPKI PEM).
    Generate {
        /// Path prefix of the two files.
        #[arg(long, default_value = "vouch", value_name = "P")]
        output_prefix: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HashArg {
    Sha256,
    Blake3,
}

/// Which files make up the model and how they are hashed.
#[derive(Debug, Args)]
pub struct HashingArgs {
    /// Hash function.
    #[arg(long = "hash", value_enum, default_value = "sha256")]
    pub hash: HashArg,
    /// Cut files into shards of this many bytes and hash the shards in parallel
    /// (OMS `shards` serialization). Without it, one digest per file.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_size: Option<u64>,
    #[command(flatten)]
    pub ignore: IgnoreArgs,
}

#[derive(Debug, Args)]
pub struct IgnoreArgs {
    /// Leave out this path (relative to the model directory; a directory leaves out all
    /// below it). Repeatable.
    #[arg(long = "ignore-paths", value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,
    /// Also hash `.git`, `.gitattributes`, `.github` and `.gitignore` (left out by default).
    #[arg(long)]
    pub no_ignore_git_paths: bool,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Machine-readable JSON on stdout: one document, on success and on failure (then
    /// `{"verified": false, "outcome": "rejected"|"undecided", "errors": [...]}`, see the
    /// README; the message stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no informational output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print the manifest of a model directory: every file (or shard) with its digest.
    Hash {
        /// The model directory.
        dir: PathBuf,
        #[command(flatten)]
        hashing: HashingArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Sign a model directory with a private key, writing an OMS signature (Sigstore bundle).
    Sign {
        /// The model directory.
        dir: PathBuf,
        /// PEM private key (PKCS#8 or SEC 1; ECDSA P-256 or P-384).
        #[arg(
            long,
            value_name = "KEY",
            required_unless_present = "keyless",
            conflicts_with = "keyless"
        )]
        key: Option<PathBuf>,
        /// Sign without a long-lived key: an OIDC identity token buys a short-lived Fulcio
        /// certificate, and the signature is logged in Rekor.
        #[arg(long)]
        keyless: bool,
        #[command(flatten)]
        keyless_args: crate::cmd::keyless::KeylessArgs,
        /// Where to write the signature [default: DIR/model.sig].
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
        /// Model name recorded in the signature [default: the directory's name].
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        hashing: HashingArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Publish a model directory as an OCI artifact (CNCF ModelPack v1, one raw layer per
    /// file) and print its `REF@sha256:...`.
    Push {
        /// The model directory.
        dir: PathBuf,
        /// Where to push it: `REGISTRY/REPOSITORY[:TAG]` [default tag: latest].
        #[arg(value_name = "REPO[:TAG]")]
        reference: String,
        /// Model name recorded in the artifact's config [default: the directory's name].
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        ignore: IgnoreArgs,
        #[command(flatten)]
        registry: RegistryArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Verify a model directory against an OMS signature.
    Verify {
        /// The model directory.
        dir: PathBuf,
        /// The signature (Sigstore bundle) to check.
        #[arg(long, value_name = "FILE")]
        signature: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// The exact OIDC issuer of a keyless signer's certificate (with
        /// `--certificate-identity`).
        #[arg(long, value_name = "URL", requires = "certificate_identity")]
        certificate_oidc_issuer: Option<String>,
        /// The Sigstore trusted root (`trusted_root.json`) for `--certificate-identity`
        /// [default: the embedded public-good production snapshot].
        #[arg(long, value_name = "FILE", requires = "certificate_identity")]
        trusted_root: Option<PathBuf>,
        #[command(flatten)]
        ignore: IgnoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Whom to trust.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TrustArgs {
    /// PEM public key (ECDSA P-256 or P-384) of the signer.
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// PEM certificates of the authorities that issue signing certificates
    /// (model-signing's certificate mode).
    #[arg(long, value_name = "CA.pem")]
    pub certificate_chain: Option<PathBuf>,
    /// A keyless signer: the exact identity (SAN) of its Fulcio certificate (with
    /// `--certificate-oidc-issuer`; checked offline against `--trusted-root`).
    #[arg(long, value_name = "IDENTITY", requires = "certificate_oidc_issuer")]
    pub certificate_identity: Option<String>,
}
