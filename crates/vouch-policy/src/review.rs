//! Reading an `admission.k8s.io/v1` AdmissionReview into what [`crate::Prepared`] decides
//! (feature `admission-review`): the webhook and the fuzz target read reviews with this one
//! function, so what is fuzzed is what is served.

use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionReview};
use serde::Deserialize as _;
use serde_json::Value;

use crate::{Operation, Subject};

/// The review's `apiVersion`.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The review's `kind`.
pub const KIND: &str = "AdmissionReview";

/// A review that was read: kube-core's request without its objects, and the object, which
/// only the policy reads.
#[derive(Debug)]
pub struct Review {
    /// The request (`object` and `oldObject` taken out).
    pub request: AdmissionRequest<DynamicObject>,
    /// `request.object`, as sent (for UPDATE: the new object); `None` when absent or null.
    pub object: Option<Value>,
}

impl Review {
    /// What the decision reads.
    pub fn subject(&self) -> Subject<'_> {
        use kube_core::admission::Operation as Op;
        Subject {
            kind: &self.request.kind.kind,
            namespace: self.request.namespace.as_deref().unwrap_or(""),
            operation: match self.request.operation {
                Op::Create => Operation::Create,
                Op::Update => Operation::Update,
                Op::Delete => Operation::Delete,
                Op::Connect => Operation::Connect,
            },
            object: self.object.as_ref(),
        }
    }
}

/// Why a body is not a review vouch can decide. `uid` is the request's, when it could be
/// read, so that the answer can still name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// `request.uid`, or empty.
    pub uid: String,
    /// For the person who reads the API server's log (starts with `vouch: `).
    pub message: String,
}

/// Read an AdmissionReview. The object is taken out of the JSON before kube-core reads the
/// rest, so a (possibly large) object is neither copied nor parsed twice; `oldObject` is
/// dropped (vouch decides the new object only).
pub fn read_review(body: &[u8]) -> Result<Review, Unreadable> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| Unreadable {
        uid: String::new(),
        message: format!("vouch: the body is not JSON: {e}"),
    })?;
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != API_VERSION || kind != KIND {
        return Err(Unreadable {
            uid: String::new(),
            message: format!(
                "vouch: expected an AdmissionReview of apiVersion `{API_VERSION}`, got kind `{kind}` apiVersion `{api_version}`; set `admissionReviewVersions: [v1]` in the webhook configuration"
            ),
        });
    }
    let uid = value
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let object = value
        .pointer_mut("/request/object")
        .map(Value::take)
        .filter(|o| !o.is_null());
    if let Some(old) = value.pointer_mut("/request/oldObject") {
        old.take();
    }
    let review = AdmissionReview::<DynamicObject>::deserialize(value).map_err(|e| Unreadable {
        uid: uid.clone(),
        message: format!("vouch: the AdmissionReview cannot be read: {e}"),
    })?;
    let request: AdmissionRequest<DynamicObject> = review.try_into().map_err(|_| Unreadable {
        uid: String::new(),
        message: "vouch: the AdmissionReview has no `request`".into(),
    })?;
    Ok(Review { request, object })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": API_VERSION, "kind": KIND, "request": request
        }))
        .unwrap()
    }

    fn request() -> Value {
        serde_json::json!({
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "UPDATE",
            "namespace": "ml",
            "name": "p",
            "userInfo": {},
            "object": {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}},
            "oldObject": {"apiVersion": "v1", "kind": "Pod"}
        })
    }

    #[test]
    fn a_review_gives_its_subject_and_object() {
        let r = read_review(&review(request())).unwrap();
        let s = r.subject();
        assert_eq!((s.kind, s.namespace), ("Pod", "ml"));
        assert_eq!(s.operation, Operation::Update);
        assert_eq!(
            s.object.unwrap()["spec"]["containers"],
            serde_json::json!([])
        );
        assert_eq!(r.request.uid, "u-1");
    }

    #[test]
    fn unreadable_bodies_say_why_and_keep_the_uid_when_there_is_one() {
        let e = read_review(b"{").unwrap_err();
        assert!(
            e.message.starts_with("vouch: the body is not JSON"),
            "{e:?}"
        );
        let e =
            read_review(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}"#)
                .unwrap_err();
        assert!(e.message.contains("admissionReviewVersions: [v1]"), "{e:?}");
        let mut bad = request();
        bad["operation"] = "EXPLODE".into();
        let e = read_review(&review(bad)).unwrap_err();
        assert_eq!(e.uid, "u-1");
        assert!(e.message.contains("cannot be read"), "{e:?}");
        let e = read_review(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
            .unwrap_err();
        assert!(e.message.contains("no `request`"), "{e:?}");
    }

    #[test]
    fn a_null_object_is_none() {
        let mut r = request();
        r["object"] = Value::Null;
        assert!(read_review(&review(r)).unwrap().object.is_none());
    }
}
