//! Image references: the registry client's (`vouch_oci::ImageReference`) and the policy's
//! (`vouch_policy::ImageRef`, as Kubernetes writes them). A reference that parses prints
//! back to a reference that parses to an equal one, and its parts are consistent. (The
//! registry client's reference remembers whether a tag was written: `nginx` prints as
//! `docker.io/library/nginx:latest`, which names the same image but with a written tag, so
//! there the printed form and the parts must be equal.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = vouch_oci::ImageReference::parse(text) {
        let printed = r.to_string();
        let again = vouch_oci::ImageReference::parse(&printed).unwrap_or_else(|e| {
            panic!("{text:?} printed as {printed:?}, which does not parse: {e}")
        });
        assert_eq!(again.to_string(), printed, "{text:?}");
        assert_eq!(
            (
                again.registry(),
                again.repository(),
                again.tag(),
                again.digest()
            ),
            (r.registry(), r.repository(), r.tag(), r.digest()),
            "{text:?} -> {printed:?}"
        );
        if r.tag().is_some() || r.digest().is_some() {
            let reparsed = vouch_oci::ImageReference::parse(&again.to_string()).expect("reparse");
            assert_eq!(reparsed, again, "{printed:?} does not print back to itself");
        }
        if let Some(d) = r.digest() {
            assert!(vouch_oci::is_sha256_digest(d), "digest {d:?}");
            assert!(vouch_oci::ImageReference::parse_pinned(text).is_ok());
            assert_eq!(r.with_digest(d), r.with_digest(d));
        }
        let _ = r.is_loopback();
    }
    if let Ok(r) = vouch_policy::ImageRef::parse(text) {
        let printed = r.to_string();
        let again = vouch_policy::ImageRef::parse(&printed).unwrap_or_else(|e| {
            panic!("{text:?} printed as {printed:?}, which does not parse: {e}")
        });
        assert_eq!(again, r, "{text:?} -> {printed:?}");
        if let Some(p) = r.pinned() {
            let pinned = vouch_policy::ImageRef::parse(&p).expect("a pinned reference parses");
            assert_eq!(pinned.repository, r.repository);
            assert_eq!(pinned.digest, r.digest);
        }
    }
});
