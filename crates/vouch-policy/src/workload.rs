//! The pod template inside a Pod or a workload object, read from its JSON form.
//!
//! Only the fields the decision needs are read, leniently (unknown fields ignored: this is
//! Kubernetes' schema, not ours), but a field of the wrong type is an error, because a
//! Pod we cannot read is a Pod we cannot allow.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Which list a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// `initContainers`.
    Init,
    /// `containers`.
    Regular,
    /// `ephemeralContainers` (`kubectl debug`).
    Ephemeral,
}

impl ContainerKind {
    /// How messages name a container of this kind.
    pub fn label(self) -> &'static str {
        match self {
            Self::Init => "init container",
            Self::Regular => "container",
            Self::Ephemeral => "ephemeral container",
        }
    }
}

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A container (the fields vouch reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Its name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The image reference.
    #[serde(default)]
    pub image: Option<String>,
    /// `command`.
    #[serde(default, deserialize_with = "nullable")]
    pub command: Vec<String>,
    /// `args`.
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<String>,
    /// `env`.
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<EnvVar>,
    /// `volumeMounts`.
    #[serde(default, deserialize_with = "nullable")]
    pub volume_mounts: Vec<VolumeMount>,
    /// `restartPolicy` (init containers: `Always` makes a sidecar).
    #[serde(default)]
    pub restart_policy: Option<String>,
}

/// An environment variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// A literal value.
    #[serde(default)]
    pub value: Option<String>,
    /// A value from elsewhere (not known at admission).
    #[serde(default)]
    pub value_from: Option<Value>,
}

/// A volume mount.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume's name.
    pub name: String,
    /// Where it is mounted.
    #[serde(default, deserialize_with = "nullable")]
    pub mount_path: String,
    /// Read-only.
    #[serde(default, deserialize_with = "nullable")]
    pub read_only: bool,
    /// Mount only this path of the volume.
    #[serde(default, deserialize_with = "nullable")]
    pub sub_path: String,
}

/// A volume (only the image volume source is read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Name.
    pub name: String,
    /// An OCI image or artifact mounted as a volume.
    #[serde(default)]
    pub image: Option<ImageVolume>,
}

/// `volumes[].image`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageVolume {
    /// The image reference.
    #[serde(default)]
    pub reference: Option<String>,
}

/// A pod spec (the fields vouch reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// `initContainers`, in order.
    #[serde(default, deserialize_with = "nullable")]
    pub init_containers: Vec<Container>,
    /// `containers`.
    #[serde(default, deserialize_with = "nullable")]
    pub containers: Vec<Container>,
    /// `ephemeralContainers`.
    #[serde(default, deserialize_with = "nullable")]
    pub ephemeral_containers: Vec<Container>,
    /// `volumes`.
    #[serde(default, deserialize_with = "nullable")]
    pub volumes: Vec<Volume>,
}

impl PodSpec {
    /// Every container with its kind and its index within its list.
    pub fn all_containers(&self) -> impl Iterator<Item = (ContainerKind, usize, &Container)> {
        let init = self
            .init_containers
            .iter()
            .enumerate()
            .map(|(i, c)| (ContainerKind::Init, i, c));
        let regular = self
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (ContainerKind::Regular, i, c));
        let ephemeral = self
            .ephemeral_containers
            .iter()
            .enumerate()
            .map(|(i, c)| (ContainerKind::Ephemeral, i, c));
        init.chain(regular).chain(ephemeral)
    }
}

/// The pod template found in an object.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    /// The object's kind.
    pub kind: String,
    /// The object's name (`metadata.name` or `generateName`).
    pub name: String,
    /// Where the template is, for messages (`spec.template`).
    pub path: &'static str,
    /// The template's (for a Pod: the Pod's) annotations.
    pub annotations: BTreeMap<String, String>,
    /// The spec.
    pub spec: PodSpec,
}

/// Why an object's pod template could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {kind} cannot be read: `{path}`: {message}")]
pub struct ExtractError {
    /// The kind.
    pub kind: String,
    /// Where.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Where the pod template of each kind is, or `None` for a kind that has none.
pub fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &[],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &["spec", "template"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        _ => return None,
    })
}

/// The pod template of `object` (of `kind`), `Ok(None)` when the kind has none.
pub fn extract(kind: &str, object: &Value) -> Result<Option<PodTemplate>, ExtractError> {
    let Some(path) = template_path(kind) else {
        return Ok(None);
    };
    let err = |path: &str, message: String| ExtractError {
        kind: kind.to_owned(),
        path: path.to_owned(),
        message,
    };
    if !object.is_object() {
        return Err(err("", "the object is not a JSON object".into()));
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .or_else(|| {
            object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .to_owned();
    let mut template = object;
    for (i, p) in path.iter().enumerate() {
        template = template.get(p).ok_or_else(|| {
            err(
                &path.get(..=i).unwrap_or_default().join("."),
                "missing".into(),
            )
        })?;
    }
    let dotted = if path.is_empty() {
        String::new()
    } else {
        format!("{}.", path.join("."))
    };
    let annotations = match template.pointer("/metadata/annotations") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => BTreeMap::<String, String>::deserialize(v)
            .map_err(|e| err(&format!("{dotted}metadata.annotations"), e.to_string()))?,
    };
    let spec_value = template
        .get("spec")
        .ok_or_else(|| err(&format!("{dotted}spec"), "missing".into()))?;
    let spec = PodSpec::deserialize(spec_value)
        .map_err(|e| err(&format!("{dotted}spec"), e.to_string()))?;
    if spec.containers.is_empty() {
        return Err(err(
            &format!("{dotted}spec.containers"),
            "a pod needs at least one container".into(),
        ));
    }
    Ok(Some(PodTemplate {
        kind: kind.to_owned(),
        name,
        path: match kind {
            "Pod" => "spec",
            "CronJob" => "spec.jobTemplate.spec.template",
            _ => "spec.template",
        },
        annotations,
        spec,
    }))
}

/// The value of a `--flag` in `command` + `args`, in both `--flag=value` and `--flag value`
/// forms; the last occurrence wins (as with clap).
pub fn flag_value(c: &Container, flag: &str) -> Option<String> {
    let words: Vec<&String> = c.command.iter().chain(c.args.iter()).collect();
    let mut found = None;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_owned());
        } else if w.as_str() == flag
            && let Some(v) = words.get(i + 1)
        {
            found = Some((*v).clone());
            i += 1;
        }
        i += 1;
    }
    found
}

/// A setting read from `--flag` or, failing that, the environment variable `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// Not set.
    Unset,
    /// A literal value, and where it came from.
    Value(String, String),
    /// Set from a Secret, ConfigMap or field reference: not known at admission.
    Indirect(String),
}

/// The value a vouch binary would see for `flag` / `env`.
pub fn setting(c: &Container, flag: &str, env: &str) -> Setting {
    if let Some(v) = flag_value(c, flag) {
        return Setting::Value(v, format!("`{flag}`"));
    }
    match c.env.iter().rev().find(|e| e.name == env) {
        None => Setting::Unset,
        Some(e) if e.value_from.is_some() => Setting::Indirect(format!("env `{env}`")),
        Some(e) => Setting::Value(e.value.clone().unwrap_or_default(), format!("env `{env}`")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_workload_kind_has_its_template() {
        let pod_spec = json!({"containers": [{"name": "a", "image": "x"}]});
        let tpl = json!({"metadata": {"annotations": {"k": "v"}}, "spec": pod_spec});
        for (kind, obj) in [
            (
                "Pod",
                json!({"metadata": {"name": "p", "annotations": {"k": "v"}}, "spec": pod_spec}),
            ),
            (
                "Deployment",
                json!({"metadata": {"name": "p"}, "spec": {"template": tpl}}),
            ),
            (
                "Job",
                json!({"metadata": {"name": "p"}, "spec": {"template": tpl}}),
            ),
            (
                "CronJob",
                json!({"metadata": {"name": "p"}, "spec": {"jobTemplate": {"spec": {"template": tpl}}}}),
            ),
        ] {
            let t = extract(kind, &obj).unwrap().unwrap();
            assert_eq!(t.name, "p");
            assert_eq!(t.annotations.get("k").map(String::as_str), Some("v"));
            assert_eq!(t.spec.containers.len(), 1);
        }
        assert!(extract("ConfigMap", &json!({})).unwrap().is_none());
    }

    #[test]
    fn unreadable_objects_are_errors() {
        let e = extract("Pod", &json!({"spec": {"containers": "x"}})).unwrap_err();
        assert_eq!(e.path, "spec");
        let e = extract("Deployment", &json!({"spec": {}})).unwrap_err();
        assert_eq!(e.path, "spec.template");
        assert!(extract("Pod", &json!({})).is_err());
        assert!(extract("Pod", &json!([])).is_err());
        assert!(extract("Pod", &json!({"spec": {"containers": []}})).is_err());
    }

    #[test]
    fn flags_in_both_forms_and_env() {
        let c = Container {
            args: vec![
                "--model-dir".into(),
                "/m".into(),
                "--expect-model-digest=sha256:aa".into(),
            ],
            ..Default::default()
        };
        assert_eq!(flag_value(&c, "--model-dir").as_deref(), Some("/m"));
        assert_eq!(
            flag_value(&c, "--expect-model-digest").as_deref(),
            Some("sha256:aa")
        );
        let c = Container {
            env: vec![EnvVar {
                name: "VOUCH_MODEL_DIR".into(),
                value: Some("/x".into()),
                value_from: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            setting(&c, "--model-dir", "VOUCH_MODEL_DIR"),
            Setting::Value("/x".into(), "env `VOUCH_MODEL_DIR`".into())
        );
    }
}
