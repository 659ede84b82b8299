//! The recorded AdmissionReviews (`testdata/admission/`) sent over real HTTPS to the running
//! `vouch-admission`, with real attestations signed in the setup and served from an
//! attestation directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
#[path = "../../crates/vouch-policy/tests/fixtures/mod.rs"]
mod fixtures;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Conn, Webhook};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vouch-admission"))
}

async fn webhook(dir: &Path, policy: &str, with_attestations: bool) -> Webhook {
    if !dir.join("tls.crt").exists() {
        common::make_certs(dir);
    }
    let policy = fixtures::testdata(&format!("policy/{policy}.yaml"));
    let mut extra = vec!["--policy".to_owned(), policy.display().to_string()];
    if with_attestations {
        let att = dir.join("attestations");
        fixtures::write_attestation_dir(&att);
        extra.push("--attestation-dir".into());
        extra.push(att.display().to_string());
    }
    extra.push("--deadline".into());
    extra.push("2s".into());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    common::start(bin(), dir, &extra).await
}

async fn conn(w: &Webhook) -> Conn {
    Conn::open(w.addr, common::tls_config(&w.dir.join("ca.pem")))
        .await
        .unwrap()
}

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(fixtures::testdata(&format!("admission/{name}.json"))).unwrap()
}

#[tokio::test]
async fn recorded_reviews_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let w = webhook(tmp.path(), "enforce", true).await;
    let mut c = conn(&w).await;
    let mut failures = Vec::new();
    for (name, allowed, words) in fixtures::CASES {
        let body = recorded(name);
        let sent: Value = serde_json::from_slice(&body).unwrap();
        let (status, out) = c.request("POST", "/validate", body).await.unwrap();
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&out));
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["apiVersion"], "admission.k8s.io/v1", "{name}");
        assert_eq!(out["kind"], "AdmissionReview", "{name}");
        let resp = &out["response"];
        assert_eq!(resp["uid"], sent["request"]["uid"], "{name}: uid echoed");
        assert!(resp.get("patch").is_none(), "{name}: never a patch");
        if resp["allowed"].as_bool() != Some(*allowed) {
            failures.push(format!("{name}: expected allowed={allowed}: {resp}"));
            continue;
        }
        if !allowed {
            let code = resp["status"]["code"].as_u64().unwrap_or(0);
            let message = resp["status"]["message"].as_str().unwrap_or("");
            if name == &"empty-object" {
                assert!(code == 400 || code == 403, "{name}: {resp}");
            } else {
                assert_eq!(code, 403, "{name}: {resp}");
                for w in *words {
                    if !message.contains(w) {
                        failures.push(format!("{name}: message lacks `{w}`: {message}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Unusable input: clear errors, never a crash, and the server keeps serving.
    let (status, out) = c
        .request("POST", "/validate", recorded("malformed"))
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&out).contains("not JSON"));
    let (status, out) = c
        .request("POST", "/validate", recorded("wrong-api-version"))
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&out).contains("admission.k8s.io/v1"));
    let (status, _) = c
        .request("POST", "/validate", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 400);
    let (status, _) = c.request("POST", "/validate", Vec::new()).await.unwrap();
    assert_eq!(status, 400);
    // A huge object (over kube-apiserver's 3 MiB): refused by size.
    let mut huge: Value = serde_json::from_slice(&recorded("pod-allowed")).unwrap();
    huge["request"]["object"]["metadata"]["annotations"]["padding"] =
        Value::String("x".repeat(4 << 20));
    let mut c2 = conn(&w).await;
    // The server answers 413 from Content-Length without reading the body and closes the
    // connection, so the client sees the 413 or (if it was still writing) a write error.
    match c2
        .request("POST", "/validate", serde_json::to_vec(&huge).unwrap())
        .await
    {
        Ok((status, _)) => assert_eq!(status, 413),
        Err(e) => assert!(e.contains("writing"), "{e}"),
    }
    let (status, _) = c.request("GET", "/validate", Vec::new()).await.unwrap();
    assert_eq!(status, 405);

    let mut c = conn(&w).await;
    let (status, body) = c.request("GET", "/metrics", Vec::new()).await.unwrap();
    assert_eq!(status, 200);
    let m = String::from_utf8(body).unwrap();
    for series in [
        "vouch_admission_reviews_total{decision=\"allowed\"}",
        "vouch_admission_reviews_total{decision=\"denied\"}",
        "vouch_admission_review_duration_seconds_bucket",
        "vouch_admission_cache_hits_total",
        "vouch_admission_cache_misses_total",
        "vouch_admission_registry_errors_total",
        "vouch_admission_registry_waiting 0",
    ] {
        assert!(m.contains(series), "{series} missing:\n{m}");
    }
    let (status, _) = c.request("GET", "/readyz", Vec::new()).await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn warn_mode_allows_with_warnings_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let w = webhook(tmp.path(), "warn", true).await;
    let mut c = conn(&w).await;
    let (status, out) = c
        .request("POST", "/validate", recorded("pod-no-attestation"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["response"]["allowed"], true);
    let warnings = out["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("no combined attestation")
    );
}

#[tokio::test]
async fn without_a_reachable_store_it_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    // No --attestation-dir: the registry source, whose registry cannot be reached (the
    // tests route it to a closed loopback port): every attested image is "could not
    // verify", denied, and quickly.
    let w = webhook(tmp.path(), "enforce", false).await;
    let mut c = conn(&w).await;
    let started = Instant::now();
    let (status, out) = c
        .request("POST", "/validate", recorded("pod-allowed"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(status, 200);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(out["response"]["status"]["code"], 403);
    let msg = out["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("could not verify"), "{msg}");
}

#[tokio::test]
async fn sigterm_stops_it_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = webhook(tmp.path(), "enforce", true).await;
    let pid = w.child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let started = Instant::now();
    loop {
        if let Some(status) = w.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_certificate_is_reloaded_when_it_changes() {
    let tmp = tempfile::tempdir().unwrap();
    common::make_certs(tmp.path());
    let policy = fixtures::testdata("policy/enforce.yaml");
    let w = common::start(
        bin(),
        tmp.path(),
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--tls-reload-interval",
            "100ms",
        ],
    )
    .await;
    // A new CA and certificate: the old client trust fails once the server switches.
    let next = tmp.path().join("next");
    std::fs::create_dir(&next).unwrap();
    common::make_certs(&next);
    std::fs::copy(next.join("tls.key"), tmp.path().join("tls.key")).unwrap();
    std::fs::copy(next.join("tls.crt"), tmp.path().join("tls.crt")).unwrap();
    let tls = common::tls_config(&next.join("ca.pem"));
    let started = Instant::now();
    loop {
        if let Ok(mut c) = Conn::open(w.addr, tls.clone()).await
            && let Ok((200, _)) = c.request("GET", "/healthz", Vec::new()).await
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = Conn::open(w.addr, tls).await.unwrap();
    let (_, m) = c.request("GET", "/metrics", Vec::new()).await.unwrap();
    assert!(String::from_utf8_lossy(&m).contains("vouch_admission_tls_reloads_total 1"));
}

#[tokio::test]
async fn a_changed_policy_takes_effect_without_a_restart_and_a_broken_one_never() {
    let tmp = tempfile::tempdir().unwrap();
    common::make_certs(tmp.path());
    let text = std::fs::read_to_string(fixtures::testdata("policy/enforce.yaml"))
        .unwrap()
        .replace(
            "../keys/release.pub",
            fixtures::testdata("keys/release.pub").to_str().unwrap(),
        )
        .replace(
            "trustedRoot: trusted_root.json",
            &format!(
                "trustedRoot: {}",
                fixtures::testdata("policy/trusted_root.json").display()
            ),
        );
    let policy = tmp.path().join("policy.yaml");
    std::fs::write(&policy, &text).unwrap();
    let w = common::start(
        bin(),
        tmp.path(),
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--policy-reload-interval",
            "100ms",
        ],
    )
    .await;
    let mut c = conn(&w).await;
    // A Pod whose image is named by tag: denied in enforce mode, a warning in warn mode.
    let mut allowed = async || {
        let (_, out) = c
            .request("POST", "/validate", recorded("pod-tag-not-digest"))
            .await
            .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        out["response"]["allowed"].as_bool().unwrap()
    };
    assert!(!allowed().await, "enforce");

    std::fs::write(&policy, text.replace("mode: enforce", "mode: warn")).unwrap();
    let started = Instant::now();
    while !allowed().await {
        assert!(started.elapsed() < Duration::from_secs(10), "not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    std::fs::write(
        &policy,
        "apiVersion: vouch.dev/v1alpha1\nkind: TrustPolicy\nmode: sometimes\n",
    )
    .unwrap();
    let started = Instant::now();
    loop {
        let mut m = conn(&w).await;
        let (_, body) = m.request("GET", "/metrics", Vec::new()).await.unwrap();
        let body = String::from_utf8(body).unwrap();
        if !body.contains("vouch_admission_policy_reload_errors_total 0") {
            assert!(
                body.contains("vouch_admission_policy_reloads_total 1"),
                "{body}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the broken policy was not read"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        allowed().await,
        "the last good policy (warn) stays in force"
    );
}
