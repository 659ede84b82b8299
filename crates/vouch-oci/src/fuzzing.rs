//! Entry points for the fuzz targets in `fuzz/`, compiled only under `--cfg fuzzing` (which
//! `cargo fuzz` sets): thin shims over parsers that are private to this crate, so that the
//! crate's API stays as it is.

use std::collections::BTreeMap;

use crate::Credentials;
use crate::referrers::Descriptor;

/// [`crate::referrers::bundle_layer`]: a stored artifact manifest, checked as the attestation
/// of `subject_digest`.
pub fn bundle_layer(
    manifest: &[u8],
    subject_digest: &str,
) -> Result<(Descriptor, BTreeMap<String, String>), String> {
    crate::referrers::bundle_layer(manifest, subject_digest)
}

/// The media type a fetched manifest declares or has the shape of.
pub fn manifest_media_type(bytes: &[u8]) -> Result<String, String> {
    crate::registry::manifest_media_type(bytes)
}

/// The credentials a docker config holds for `registry`; `helper_output` stands for what a
/// credential helper printed (`None`: the helper found nothing), parsed as the real helper
/// output is. No program is run.
pub fn docker_config_credentials(
    config: &[u8],
    registry: &str,
    helper_output: Option<&[u8]>,
) -> Result<Credentials, String> {
    let config = crate::auth::parse_docker_config(config)?;
    let run = |name: &str, _server: &str| match helper_output {
        Some(out) => crate::auth::parse_helper_output(name, out).map(Some),
        None => Ok(None),
    };
    crate::auth::resolve(&config, registry, crate::Helpers::Run, &run)
}
