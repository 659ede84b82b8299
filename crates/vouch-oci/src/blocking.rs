//! A blocking face of [`Registry`] for command-line tools: one small current-thread runtime.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::reference::ImageReference;
use crate::registry::{FetchedAttestation, Options, PushedAttestation, Registry, ResolvedImage};

/// [`Registry`] driven to completion on a private current-thread runtime.
#[derive(Debug)]
pub struct BlockingRegistry {
    runtime: tokio::runtime::Runtime,
    registry: Registry,
}

impl BlockingRegistry {
    /// A client for the registry of `reference`.
    pub fn for_reference(reference: &ImageReference, options: &Options) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        // reqwest's client must be built inside a runtime context.
        let registry = {
            let _guard = runtime.enter();
            Registry::for_reference(reference, options)?
        };
        Ok(Self { runtime, registry })
    }

    /// See [`Registry::resolve`].
    pub fn resolve(&self, reference: &ImageReference) -> Result<ResolvedImage> {
        self.runtime.block_on(self.registry.resolve(reference))
    }

    /// See [`Registry::push_attestation`].
    pub fn push_attestation(
        &self,
        image: &ResolvedImage,
        bundle: &[u8],
        annotations: &BTreeMap<String, String>,
    ) -> Result<PushedAttestation> {
        self.runtime
            .block_on(self.registry.push_attestation(image, bundle, annotations))
    }

    /// See [`Registry::manifest_at`].
    pub(crate) fn manifest_at(
        &self,
        reference: &ImageReference,
        accept: &[&str],
    ) -> Result<Vec<u8>> {
        self.runtime
            .block_on(self.registry.manifest_at(reference, accept))
    }

    /// See [`Registry::fetch_attestations`].
    pub fn fetch_attestations(&self, image: &ImageReference) -> Result<Vec<FetchedAttestation>> {
        self.runtime
            .block_on(self.registry.fetch_attestations(image))
    }
}
