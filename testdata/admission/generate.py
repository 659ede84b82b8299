#!/usr/bin/env python3
"""Write the AdmissionReview v1 files in this directory, shaped exactly as kube-apiserver
sends them (request.kind/resource/requestKind, uid, userInfo, object/oldObject, options).

Re-run after changing a case: `python3 testdata/admission/generate.py`. The expected
outcome of every file is in crates/vouch-policy/tests/fixtures/mod.rs (CASES).
"""
import copy
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "sha256:0c2896e1f6f3de15409c9f3c4fbb230059405f27aa99867fc835b37ac286a735"
OTHER_MODEL = "sha256:" + "9" * 64
SERVER = "registry.example.com/models/tiny-llm-server"
INIT = "registry.example.com/vouch/vouch-init@sha256:" + "c3" * 32
FETCHER = "registry.example.com/tools/model-fetcher@sha256:" + "d4" * 32


def digest(h):
    return SERVER + "@sha256:" + h * 32


def pod_spec(server=digest("a1"), pin=MODEL, init=INIT, with_init=True, server_ro=True):
    init_containers = [
        {
            "name": "fetch-model",
            "image": FETCHER,
            "args": ["--from", "s3://models/tiny-llm/1.0.0", "--to", "/models/tiny-llm"],
            "volumeMounts": [{"name": "model", "mountPath": "/models"}],
        }
    ]
    if with_init:
        init_containers.append(
            {
                "name": "vouch-init",
                "image": init,
                "args": [
                    "--model-dir=/models/tiny-llm",
                    "--attestation=/etc/vouch/attestation/attestation.json",
                    "--key=/etc/vouch/trust/release.pub",
                    "--expect-model-digest",
                    pin,
                ],
                "volumeMounts": [
                    {"name": "model", "mountPath": "/models", "readOnly": True},
                    {"name": "attestation", "mountPath": "/etc/vouch/attestation", "readOnly": True},
                ],
            }
        )
    mount = {"name": "model", "mountPath": "/models"}
    if server_ro:
        mount["readOnly"] = True
    return {
        "volumes": [
            {"name": "model", "emptyDir": {}},
            {"name": "attestation", "secret": {"secretName": "tiny-llm-attestation"}},
        ],
        "initContainers": init_containers,
        "containers": [
            {
                "name": "server",
                "image": server,
                "args": ["--model", "/models/tiny-llm"],
                "volumeMounts": [mount],
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
    }


def pod(name, pin=MODEL, namespace="models", **kw):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"vouch.dev/model-digest": pin},
            "labels": {"app": "tiny-llm"},
        },
        "spec": pod_spec(pin=pin, **kw),
    }


def review(uid, obj, kind=("", "v1", "Pod"), resource="pods", operation="CREATE", old=None,
           namespace="models", sub=None, name=None):
    group, version, k = kind
    req = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": k},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": k},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name or (obj or old or {}).get("metadata", {}).get("name", ""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": operation.capitalize() + "Options"},
    }
    if sub:
        req["subResource"] = sub
        req["requestSubResource"] = sub
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def workload(kind, name, spec_wrap):
    tpl = {
        "metadata": {"labels": {"app": name}, "annotations": {"vouch.dev/model-digest": MODEL}},
        "spec": pod_spec(),
    }
    return {
        "apiVersion": "apps/v1" if kind != "CronJob" else "batch/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "models"},
        "spec": spec_wrap(tpl),
    }


cases = {}
cases["pod-allowed"] = review("11111111-0000-0000-0000-000000000001", pod("tiny-llm"))
cases["pod-tag-not-digest"] = review(
    "11111111-0000-0000-0000-000000000002", pod("tiny-llm", server=SERVER + ":1.0.0"))
cases["pod-no-attestation"] = review(
    "11111111-0000-0000-0000-000000000003", pod("tiny-llm", server=digest("f6")))
cases["pod-untrusted-key"] = review(
    "11111111-0000-0000-0000-000000000004", pod("tiny-llm", server=digest("e5")))
cases["pod-attestation-for-another-image"] = review(
    "11111111-0000-0000-0000-000000000005", pod("tiny-llm", server=digest("b2")))
cases["pod-pin-mismatch"] = review(
    "11111111-0000-0000-0000-000000000006", pod("tiny-llm", pin=OTHER_MODEL))
cases["pod-missing-init-container"] = review(
    "11111111-0000-0000-0000-000000000007", pod("tiny-llm", with_init=False))
cases["pod-init-not-pinned"] = review(
    "11111111-0000-0000-0000-000000000008",
    pod("tiny-llm", init="registry.example.com/vouch/vouch-init:1.0.0"))
cases["pod-writable-model-mount"] = review(
    "11111111-0000-0000-0000-000000000009", pod("tiny-llm", server_ro=False))
init_pin = pod("tiny-llm")
init_pin["spec"]["initContainers"][1]["args"][-1] = OTHER_MODEL
cases["pod-init-checks-another-pin"] = review("11111111-0000-0000-0000-000000000010", init_pin)
cases["deployment-allowed"] = review(
    "22222222-0000-0000-0000-000000000001",
    workload("Deployment", "tiny-llm", lambda t: {"replicas": 2, "selector": {"matchLabels": {"app": "tiny-llm"}}, "template": t}),
    kind=("apps", "v1", "Deployment"), resource="deployments")
dep_tag = workload("Deployment", "tiny-llm", lambda t: {"replicas": 2, "selector": {"matchLabels": {"app": "tiny-llm"}}, "template": t})
dep_tag["spec"]["template"]["spec"]["containers"][0]["image"] = SERVER + ":latest"
cases["deployment-tag-not-digest"] = review(
    "22222222-0000-0000-0000-000000000002", dep_tag, kind=("apps", "v1", "Deployment"),
    resource="deployments")
cases["cronjob-allowed"] = review(
    "22222222-0000-0000-0000-000000000003",
    workload("CronJob", "nightly-eval", lambda t: {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": t}}}),
    kind=("batch", "v1", "CronJob"), resource="cronjobs")
old = pod("tiny-llm")
new = copy.deepcopy(old)
new["spec"]["ephemeralContainers"] = [
    {"name": "debugger", "image": "busybox:1.36", "stdin": True, "tty": True,
     "targetContainerName": "server"}
]
cases["pod-update-ephemeral-container"] = review(
    "33333333-0000-0000-0000-000000000001", new, operation="UPDATE", old=old, sub="ephemeralcontainers")
cases["pod-delete"] = review(
    "33333333-0000-0000-0000-000000000002", None, operation="DELETE", old=pod("tiny-llm"), name="tiny-llm")
cases["configmap-create"] = review(
    "33333333-0000-0000-0000-000000000003",
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "models"}, "data": {"a": "b"}},
    kind=("", "v1", "ConfigMap"), resource="configmaps")
cases["pod-exempt-namespace"] = review(
    "33333333-0000-0000-0000-000000000004", pod("coredns", namespace="kube-system", server=SERVER + ":1.0.0"),
    namespace="kube-system")
cases["pod-image-volume-by-tag"] = review("33333333-0000-0000-0000-000000000005", pod("tiny-llm"))
cases["pod-image-volume-by-tag"]["request"]["object"]["spec"]["volumes"].append(
    {"name": "weights", "image": {"reference": "registry.example.com/artifacts/weights:v1", "pullPolicy": "IfNotPresent"}})
# Models mounted as image volumes (`volumes[].image`): the artifact's attestation is stored
# next to the server image (fixtures: a7a7 is attested with artifact d7d7, e7e7 likewise
# but by other.key), no vouch-init.
ARTIFACT = "registry.example.com/models/tiny-llm-weights"


def artifact(h):
    return ARTIFACT + "@sha256:" + h * 32


def iv_pod(name, server=digest("a7"), ref=artifact("d7"), pin=None, extra_containers=(),
           extra_volumes=(), mount=True):
    meta = {"name": name, "namespace": "models", "labels": {"app": "tiny-llm"}}
    if pin:
        meta["annotations"] = {"vouch.dev/model-digest": pin}
    server_c = {"name": "server", "image": server, "args": ["--model", "/models/tiny-llm"]}
    if mount:
        server_c["volumeMounts"] = [{"name": "model", "mountPath": "/models/tiny-llm", "readOnly": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "volumes": [{"name": "model", "image": {"reference": ref, "pullPolicy": "IfNotPresent"}}]
            + list(extra_volumes),
            "containers": [server_c] + list(extra_containers),
            "restartPolicy": "Always",
        },
    }


cases["pod-image-volume-allowed"] = review("55555555-0000-0000-0000-000000000001", iv_pod("tiny-llm"))
cases["pod-image-volume-pinned-allowed"] = review(
    "55555555-0000-0000-0000-000000000002", iv_pod("tiny-llm", pin=MODEL))
cases["pod-image-volume-other-artifact"] = review(
    "55555555-0000-0000-0000-000000000003", iv_pod("tiny-llm", ref=artifact("d8")))
cases["pod-image-volume-unattested-server"] = review(
    "55555555-0000-0000-0000-000000000004", iv_pod("tiny-llm", server=digest("f6")))
cases["pod-image-volume-artifact-by-tag"] = review(
    "55555555-0000-0000-0000-000000000005", iv_pod("tiny-llm", ref=ARTIFACT + ":1.0.0"))
cases["pod-image-volume-unmounted"] = review(
    "55555555-0000-0000-0000-000000000006",
    iv_pod("tiny-llm", extra_volumes=[{"name": "spare", "image": {"reference": artifact("d8")}}]))
cases["pod-image-volume-unmounted-attested"] = review(
    "55555555-0000-0000-0000-000000000007",
    iv_pod("tiny-llm", extra_volumes=[{"name": "spare", "image": {"reference": artifact("d7")}}]))
cases["pod-image-volume-second-container-unattested"] = review(
    "55555555-0000-0000-0000-000000000008",
    iv_pod("tiny-llm", extra_containers=[{
        "name": "exporter", "image": FETCHER, "args": ["--serve", "/models/tiny-llm"],
        "volumeMounts": [{"name": "model", "mountPath": "/models/tiny-llm", "readOnly": True}]}]))
cases["pod-image-volume-untrusted-key"] = review(
    "55555555-0000-0000-0000-000000000009", iv_pod("tiny-llm", server=digest("e7")))
cases["pod-image-volume-directory-attestation"] = review(
    "55555555-0000-0000-0000-000000000010", iv_pod("tiny-llm", server=digest("a1")))
cases["pod-image-volume-pin-mismatch"] = review(
    "55555555-0000-0000-0000-000000000011", iv_pod("tiny-llm", pin=OTHER_MODEL))
cases["pod-pvc-model-without-vouch-init"] = review(
    "55555555-0000-0000-0000-000000000012",
    iv_pod("tiny-llm", pin=MODEL, extra_containers=[{
        "name": "reranker", "image": digest("a1"), "args": ["--model", "/models/reranker"],
        "volumeMounts": [{"name": "weights", "mountPath": "/models", "readOnly": True}]}],
        extra_volumes=[{"name": "weights", "persistentVolumeClaim": {"claimName": "reranker-weights"}}]))
cases["pod-image-volume-other-artifact-two-attestations"] = review(
    "55555555-0000-0000-0000-000000000014", iv_pod("tiny-llm", server=digest("a8"), ref=artifact("d8")))
iv_old = iv_pod("tiny-llm")
iv_new = copy.deepcopy(iv_old)
iv_new["spec"]["ephemeralContainers"] = [
    {"name": "debugger", "image": digest("f6"), "targetContainerName": "server",
     "volumeMounts": [{"name": "model", "mountPath": "/models/tiny-llm", "readOnly": True}]}
]
cases["pod-image-volume-update-ephemeral-mounts-model"] = review(
    "55555555-0000-0000-0000-000000000015", iv_new, operation="UPDATE", old=iv_old, sub="ephemeralcontainers")
iv_init = iv_pod("tiny-llm")
iv_init["spec"]["initContainers"] = [
    {"name": "convert", "image": FETCHER, "args": ["--in", "/models/tiny-llm"],
     "volumeMounts": [{"name": "model", "mountPath": "/models/tiny-llm", "readOnly": True}]}
]
cases["pod-image-volume-init-container-mounts-model"] = review("55555555-0000-0000-0000-000000000016", iv_init)
iv_dep = iv_pod("tiny-llm")
cases["deployment-image-volume-allowed"] = review(
    "55555555-0000-0000-0000-000000000013",
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tiny-llm", "namespace": "models"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "tiny-llm"}},
              "template": {"metadata": {"labels": {"app": "tiny-llm"}}, "spec": iv_dep["spec"]}}},
    kind=("apps", "v1", "Deployment"), resource="deployments")
cases["empty-object"] = review("44444444-0000-0000-0000-000000000001", {})
wrong = review("44444444-0000-0000-0000-000000000002", pod("tiny-llm"))
wrong["apiVersion"] = "admission.k8s.io/v1beta1"
cases["wrong-api-version"] = wrong

for name, body in cases.items():
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(body, f, indent=2, sort_keys=False)
        f.write("\n")

with open(os.path.join(HERE, "malformed.json"), "w") as f:
    f.write('{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "44444444-0000-0000-0000-000000000003", "object": {"kind": "Pod",\n')
print(f"wrote {len(cases) + 1} files")

# Manifests for `vouch policy check` (testdata/policy/manifests/), as YAML.
try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None
if yaml:
    out = os.path.join(HERE, "..", "policy", "manifests")
    os.makedirs(out, exist_ok=True)
    good = [cases["pod-allowed"]["request"]["object"], cases["deployment-allowed"]["request"]["object"],
            cases["cronjob-allowed"]["request"]["object"], cases["configmap-create"]["request"]["object"]]
    bad = [cases["deployment-tag-not-digest"]["request"]["object"], cases["pod-writable-model-mount"]["request"]["object"]]
    for name, docs in (("allowed.yaml", good), ("denied.yaml", good[:1] + bad)):
        with open(os.path.join(out, name), "w") as f:
            f.write("# Generated by testdata/admission/generate.py\n")
            yaml.safe_dump_all(docs, f, sort_keys=False)
    print("wrote testdata/policy/manifests/{allowed,denied}.yaml")
