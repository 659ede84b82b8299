//! How lookups find attestations, against a scripted registry on 127.0.0.1 that records
//! every request: the referrers API first, the tag schema where there is none (and then only
//! the tag, once the client knows), and referrers that are not vouch's never fetched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use vouch_oci::{
    BUNDLE_CONTENT_ANNOTATION, BUNDLE_MEDIA_TYPE, BlockingRegistry, Descriptor, ImageReference,
    OCI_INDEX, OCI_MANIFEST, Options, artifact_manifest, attestation_annotations, merge_into_index,
};

const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const BUNDLE: &[u8] = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#;

/// A response: status, content type, body; a content type with `\r\n` in it adds headers.
type Reply = (u16, &'static str, Vec<u8>);

/// Serve `route(path)` for every request until the test ends; returns the address and the
/// log of request lines (`GET /v2/...`).
fn registry(route: impl Fn(&str) -> Reply + Send + 'static) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let mut parts = line.split_whitespace();
            let request = format!(
                "{} {}",
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("")
            );
            let path = request.split_once(' ').map_or("", |(_, p)| p).to_owned();
            seen.lock().unwrap().push(request);
            let (status, kind, body) = route(&path);
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (addr, log)
}

/// vouch's artifact manifest for IMAGE, with the bundle inline.
fn vouch_manifest() -> Vec<u8> {
    let subject = Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest: IMAGE.into(),
        size: 100,
        artifact_type: None,
        annotations: BTreeMap::new(),
        data: None,
    };
    artifact_manifest(
        &Descriptor::embedding(BUNDLE_MEDIA_TYPE, BUNDLE),
        &subject,
        &attestation_annotations(&BTreeMap::new()),
    )
}

fn entry(manifest: &[u8], inline: bool) -> Descriptor {
    let mut d = Descriptor {
        artifact_type: Some(BUNDLE_MEDIA_TYPE.into()),
        annotations: attestation_annotations(&BTreeMap::new()),
        ..Descriptor::embedding(OCI_MANIFEST, manifest)
    };
    if !inline {
        d.data = None;
    }
    d
}

fn client(addr: &str) -> (BlockingRegistry, ImageReference) {
    let image = ImageReference::parse_pinned(&format!("{addr}/models/x@{IMAGE}")).unwrap();
    (
        BlockingRegistry::for_reference(&image, &Options::default()).unwrap(),
        image,
    )
}

#[test]
fn without_the_api_the_tag_is_read_and_the_client_remembers() {
    let index = merge_into_index(None, &entry(&vouch_manifest(), true)).unwrap();
    let (addr, log) = registry(move |path| {
        if path.contains("/referrers/") {
            (404, "text/plain", b"404 page not found".to_vec())
        } else if path.ends_with(&IMAGE.replace(':', "-")) {
            (200, OCI_INDEX, index.clone())
        } else {
            (404, "text/plain", Vec::new())
        }
    });
    let (registry, image) = client(&addr);
    for _ in 0..2 {
        let found = registry.fetch_attestations(&image).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bundle, BUNDLE);
    }
    let tag = format!("GET /v2/models/x/manifests/{}", IMAGE.replace(':', "-"));
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[0].starts_with(&format!("GET /v2/models/x/referrers/{IMAGE}")));
    assert_eq!(
        log[1..],
        [tag.clone(), tag],
        "then the tag only, one request each"
    );
}

#[test]
fn with_the_api_its_list_is_used_and_other_referrers_are_not_fetched() {
    let manifest = vouch_manifest();
    let ours = entry(&manifest, false);
    let mut signature = entry(b"{}", false);
    signature
        .annotations
        .insert(BUNDLE_CONTENT_ANNOTATION.into(), "message-signature".into());
    let listed = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [signature, ours],
    }))
    .unwrap();
    let ours_path = format!("/v2/models/x/manifests/{}", ours.digest);
    let (addr, log) = registry(move |path| {
        if path.contains("/referrers/") {
            (200, OCI_INDEX, listed.clone())
        } else if path == ours_path {
            (200, OCI_MANIFEST, manifest.clone())
        } else {
            (404, "text/plain", Vec::new())
        }
    });
    let (registry, image) = client(&addr);
    let found = registry.fetch_attestations(&image).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].bundle, BUNDLE,
        "the bundle rides inline in the manifest"
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.len(),
        2,
        "the list and our manifest, nothing else: {log:?}"
    );
    assert!(log[0].contains("/referrers/") && log[0].contains("artifactType="));
    assert_eq!(
        log[1],
        format!("GET /v2/models/x/manifests/{}", ours.digest)
    );
}

#[test]
fn what_older_vouch_versions_pushed_is_still_found() {
    // No bundle annotations on the manifest or the tag entry, only vouch's own.
    let subject = Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest: IMAGE.into(),
        size: 100,
        artifact_type: None,
        annotations: BTreeMap::new(),
        data: None,
    };
    let own = BTreeMap::from([("dev.vouch.model.digest".to_owned(), IMAGE.to_owned())]);
    let manifest = artifact_manifest(
        &Descriptor::embedding(BUNDLE_MEDIA_TYPE, BUNDLE),
        &subject,
        &own,
    );
    let old_entry = Descriptor {
        artifact_type: Some(BUNDLE_MEDIA_TYPE.into()),
        annotations: own,
        ..Descriptor::embedding(OCI_MANIFEST, &manifest)
    };
    let index = merge_into_index(None, &old_entry).unwrap();
    let (addr, _log) = registry(move |path| {
        if path.ends_with(&IMAGE.replace(':', "-")) {
            (200, OCI_INDEX, index.clone())
        } else {
            (404, "text/plain", Vec::new())
        }
    });
    let (registry, image) = client(&addr);
    let found = registry.fetch_attestations(&image).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].bundle, BUNDLE);
}

#[test]
fn a_paged_referrers_list_is_read_to_its_end() {
    let manifest = vouch_manifest();
    let ours = entry(&manifest, false);
    let mut signature = entry(b"{}", false);
    signature
        .annotations
        .insert(BUNDLE_CONTENT_ANNOTATION.into(), "message-signature".into());
    let page = |e: &Descriptor| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [e],
        }))
        .unwrap()
    };
    let (first, second) = (page(&signature), page(&ours));
    let ours_path = format!("/v2/models/x/manifests/{}", ours.digest);
    let (addr, log) = registry(move |path| {
        if path.contains("/referrers/") && path.contains("last=") {
            (200, OCI_INDEX, second.clone())
        } else if path.contains("/referrers/") {
            let link = concat!(
                "application/vnd.oci.image.index.v1+json\r\n",
                "Link: </v2/models/x/referrers/sha256:1111111111111111111111111111111111111111111111111111111111111111?n=1&last=a>; rel=\"next\""
            );
            (200, link, first.clone())
        } else if path == ours_path {
            (200, OCI_MANIFEST, manifest.clone())
        } else {
            (404, "text/plain", Vec::new())
        }
    });
    let (registry, image) = client(&addr);
    let found = registry.fetch_attestations(&image).unwrap();
    assert_eq!(found.len(), 1);
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "two pages and our manifest: {log:?}");
    assert!(log[1].contains("last=a"));
}

#[test]
fn a_registry_error_on_the_api_is_not_taken_for_no_attestation() {
    let (addr, _log) = registry(|_| (500, "text/plain", b"boom".to_vec()));
    let (registry, image) = client(&addr);
    let err = registry.fetch_attestations(&image).unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
}
