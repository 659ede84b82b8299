//! AdmissionReview v1 in, AdmissionReview v1 out. Every response starts as a denial and
//! becomes an allow only when the decision says so; nothing here returns a patch.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use kube_core::admission::AdmissionResponse;
use kube_core::response::StatusSummary;
use vouch_policy::{Attestations, Decision, Prepared, Subject};

use crate::cache::Cache;
use crate::metrics::Metrics;

/// Shared by every request.
#[derive(Debug)]
pub struct State {
    pub policy: Arc<crate::policy::LivePolicy>,
    pub cache: Cache,
    pub metrics: Arc<Metrics>,
    /// Internal deadline for one review (below the webhook timeout).
    pub deadline: Duration,
}

/// An HTTP answer: status code and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

fn error_answer(status: u16, message: &str) -> Answer {
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": status,
        "message": message,
    });
    Answer {
        status,
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// Answer one request body.
pub async fn handle(state: &State, body: &[u8]) -> Answer {
    let started = Instant::now();
    let answer = handle_inner(state, body, started).await;
    state.metrics.observe(started.elapsed());
    answer
}

async fn handle_inner(state: &State, body: &[u8], started: Instant) -> Answer {
    let invalid = |state: &State, status: u16, message: String| {
        state.metrics.invalid.fetch_add(1, Relaxed);
        tracing::warn!(status, error = %message, "unusable request");
        error_answer(status, &message)
    };
    let review = match vouch_policy::review::read_review(body) {
        Ok(r) => r,
        // A request that names itself gets an answer it can match: a denial with its uid.
        Err(e) if !e.uid.is_empty() => {
            state.metrics.invalid.fetch_add(1, Relaxed);
            let message = format!("vouch: denied: {}", e.message.trim_start_matches("vouch: "));
            tracing::warn!(uid = %e.uid, error = %message, "unreadable review");
            let mut resp = AdmissionResponse::invalid(&message);
            resp.uid = e.uid;
            resp.result.code = 400;
            return respond(resp);
        }
        Err(e) => return invalid(state, 400, e.message),
    };
    let req = &review.request;
    // Start from deny: only an explicit allow below changes it.
    let mut resp = AdmissionResponse::from(req).deny("vouch: no decision was reached");
    resp.result.code = 403;
    resp.result.status = Some(StatusSummary::Failure);
    resp.result.reason = "Forbidden".into();

    let subject = review.subject();
    let decision = decide(state, &subject, started).await;
    if decision.allowed {
        resp.allowed = true;
        resp.result = Default::default();
        if !decision.warnings.is_empty() {
            resp.warnings = Some(decision.warnings.clone());
        }
        if decision.warnings.is_empty() {
            state.metrics.allowed.fetch_add(1, Relaxed);
        } else {
            state.metrics.warned.fetch_add(1, Relaxed);
        }
    } else {
        resp.result.message = decision.message();
        state.metrics.denied.fetch_add(1, Relaxed);
    }
    tracing::info!(
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = %subject.namespace,
        name = %req.name,
        operation = ?req.operation,
        allowed = decision.allowed,
        problems = decision.findings.len(),
        latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        summary = %decision.summary,
        "review"
    );
    respond(resp)
}

async fn decide(state: &State, subject: &Subject<'_>, started: Instant) -> Decision {
    // The policy in force when the review arrived decides all of it, even if a reload
    // lands meanwhile.
    let in_force = state.policy.get();
    let policy = &*in_force;
    let deadline = started + state.deadline;
    let prepared = Prepared::new(policy, subject);
    let images = prepared.lookups(policy);
    let mut results = Attestations::new();
    match images.as_slice() {
        [] => {}
        [one] => {
            let l = state.cache.lookup(policy, one, deadline).await;
            if let Some(p) = one.pinned() {
                results.insert(p, l);
            }
        }
        many => {
            // Concurrently; `lookups` already deduplicated them.
            let futures = many.iter().map(|img| async move {
                (
                    img.pinned(),
                    state.cache.lookup(policy, img, deadline).await,
                )
            });
            for (pinned, l) in join_all(futures).await {
                if let Some(p) = pinned {
                    results.insert(p, l);
                }
            }
        }
    }
    prepared.decide(policy, &results)
}

/// Await every future concurrently (a few per request; no extra crate for this).
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (f, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

fn respond(resp: AdmissionResponse) -> Answer {
    match serde_json::to_vec(&resp.into_review()) {
        Ok(body) => Answer { status: 200, body },
        Err(e) => error_answer(500, &format!("vouch: cannot encode the response: {e}")),
    }
}
