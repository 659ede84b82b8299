//! How a command fails: a message, details, hints, and the exit code that tells a script
//! whether vouch checked and said no (1) or could not decide (2).
//!
//! With `--json` a failure is also one JSON document on stdout (the text stays on stderr),
//! the same shape for every command:
//!
//! ```json
//! {"verified": false, "outcome": "rejected", "exitCode": 1, "kind": "model-mismatch",
//!  "message": "...", "hints": ["..."],
//!  "errors": [{"kind": "content-differs", "file": "model.safetensors", "role": "weights",
//!              "expected": "sha256:...", "found": "sha256:...", "message": "...", "hint": "..."}]}
//! ```
//!
//! `outcome` is `rejected` (exit 1) or `undecided` (exit 2); `errors` always has at least one
//! entry, and every entry has all seven fields (`null` when they do not apply).

use std::fmt::Display;
use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Map, Value, json};

/// Whether a failure is a verdict or an inability to reach one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Checked, and the answer is no (exit 1).
    Rejected,
    /// Could not decide: usage, I/O, network (exit 2).
    Undecided,
}

/// One reason, as data: what it is about, what was expected and what was found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Reason {
    /// What kind of reason (`content-differs`, `signature`, `usage`, ...).
    pub kind: String,
    /// The file concerned (a model file, or an input file).
    pub file: Option<String>,
    /// The model file's role (`weights`, `tokenizer`, `config`, `other`).
    pub role: Option<String>,
    /// What was signed or asked for.
    pub expected: Option<Value>,
    /// What is there instead.
    pub found: Option<Value>,
    /// The reason, for a person.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Reason {
    /// A reason with only a kind and a message.
    pub fn new(kind: impl Display, message: impl Display) -> Self {
        Self {
            kind: kind.to_string(),
            message: message.to_string(),
            ..Self::default()
        }
    }

    /// A difference between a model on disk and what was signed.
    pub fn difference(d: &vouch_model::Difference, role: Option<&str>) -> Self {
        use vouch_model::Difference as D;
        let (expected, found) = match d {
            D::Missing { path } => (Some(json!(path.as_str())), None),
            D::Extra { path } => (None, Some(json!(path.as_str()))),
            D::Renamed { from, to } => (Some(json!(from.as_str())), Some(json!(to.as_str()))),
            D::Size {
                expected, actual, ..
            } => (Some(json!(expected)), Some(json!(actual))),
            D::Content {
                expected, actual, ..
            } => (
                Some(json!(expected.to_string())),
                Some(json!(actual.to_string())),
            ),
            _ => (None, None),
        };
        let message = match role {
            Some(r) => format!("[{r}] {d}"),
            None => d.to_string(),
        };
        Self {
            kind: d.kind().to_owned(),
            file: Some(d.path().as_str().to_owned()),
            role: role.map(str::to_owned),
            expected,
            found,
            message,
            hint: None,
        }
    }

    /// With what was expected and what was found.
    pub fn expected_found(mut self, expected: impl Serialize, found: impl Serialize) -> Self {
        self.expected = serde_json::to_value(expected).ok();
        self.found = serde_json::to_value(found).ok();
        self
    }

    /// With the file it is about.
    pub fn file(mut self, file: impl Display) -> Self {
        self.file = Some(file.to_string());
        self
    }

    /// With a hint of its own.
    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hint = Some(hint.to_string());
        self
    }
}

/// A failed command, ready to print.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    /// What kind of failure, for machines (`errors[].kind` when no reason says more).
    pub code: &'static str,
    pub message: String,
    pub details: Vec<String>,
    pub hints: Vec<String>,
    /// The reasons as data, and more fields of the JSON document (boxed: most failures
    /// have neither, and a `Result` should stay small).
    pub more: Box<More>,
}

/// What a failure carries for machines beyond its text.
#[derive(Debug, Default)]
pub struct More {
    /// The reasons as data (JSON `errors`); empty: the details, or the message itself.
    pub reasons: Vec<Reason>,
    /// More fields of the JSON document (e.g. the objects `vouch policy check` decided).
    pub data: Map<String, Value>,
}

impl Failure {
    fn new(kind: Kind, code: &'static str, message: impl Display) -> Self {
        Self {
            kind,
            code,
            message: message.to_string(),
            details: Vec::new(),
            hints: Vec::new(),
            more: Box::default(),
        }
    }

    pub fn rejected(message: impl Display) -> Self {
        Self::new(Kind::Rejected, "rejected", message)
    }

    pub fn undecided(message: impl Display) -> Self {
        Self::new(Kind::Undecided, "undecided", message)
    }

    /// A usage error: the command line cannot work as given (exit 2).
    pub fn usage(message: impl Display) -> Self {
        Self::new(Kind::Undecided, "usage", message)
    }

    /// The machine-readable kind of this failure.
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hints.push(hint.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Display) -> Self {
        self.details.push(detail.to_string());
        self
    }

    /// A reason as data (also shown as a detail line).
    pub fn reason(mut self, reason: Reason) -> Self {
        self.details.push(reason.message.clone());
        self.more.reasons.push(reason);
        self
    }

    /// A reason as data only (the text already says it).
    pub fn quiet_reason(mut self, reason: Reason) -> Self {
        self.more.reasons.push(reason);
        self
    }

    /// One more top-level field of the JSON document.
    pub fn data(mut self, key: &str, value: Value) -> Self {
        self.more.data.insert(key.to_owned(), value);
        self
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code_number())
    }

    fn code_number(&self) -> u8 {
        match self.kind {
            Kind::Rejected => 1,
            Kind::Undecided => 2,
        }
    }

    pub fn outcome(&self) -> &'static str {
        match self.kind {
            Kind::Rejected => "rejected",
            Kind::Undecided => "undecided",
        }
    }

    /// The reasons: those given as data, else one per detail, else the message itself; each
    /// without a hint of its own gets the failure's first hint.
    pub fn errors(&self) -> Vec<Reason> {
        let mut out = if !self.more.reasons.is_empty() {
            self.more.reasons.clone()
        } else if !self.details.is_empty() {
            self.details
                .iter()
                .map(|d| Reason::new(self.code, d))
                .collect()
        } else {
            vec![Reason::new(self.code, &self.message)]
        };
        for r in &mut out {
            if r.hint.is_none() {
                r.hint = self.hints.first().cloned();
            }
        }
        out
    }

    /// The JSON document `--json` prints for this failure.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("verified".into(), json!(false));
        doc.insert("outcome".into(), json!(self.outcome()));
        doc.insert("exitCode".into(), json!(self.code_number()));
        doc.insert("kind".into(), json!(self.code));
        doc.insert("message".into(), json!(self.message));
        doc.insert("hints".into(), json!(self.hints));
        doc.insert("errors".into(), json!(self.errors()));
        for (k, v) in &self.more.data {
            doc.insert(k.clone(), v.clone());
        }
        Value::Object(doc)
    }

    pub fn print(&self) {
        let mut out = format!("error: {}\n", self.message);
        for d in &self.details {
            out.push_str(&format!("  - {d}\n"));
        }
        for h in &self.hints {
            out.push_str(&format!("hint: {h}\n"));
        }
        eprint!("{out}");
    }

    /// `--json`: the document on stdout (a closed stdout is not worth a panic here: the
    /// exit code still tells).
    pub fn print_json(&self) {
        use std::io::Write as _;
        let doc = self.to_json();
        let text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string());
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

pub type Result<T = ()> = std::result::Result<T, Failure>;

impl From<vouch_model::Error> for Failure {
    fn from(e: vouch_model::Error) -> Self {
        use vouch_model::Error as E;
        match &e {
            E::Symlink { .. } => Failure::rejected(&e)
                .code("model-file")
                .hint("replace the link with the file it points to, or leave it out with `--ignore-paths`"),
            E::SpecialFile { .. } | E::HardLink { .. } | E::NonUtf8Name { .. } | E::InvalidPath(_) => {
                Failure::rejected(&e).code("model-file")
            }
            E::Changed { .. } => Failure::rejected(&e).code("model-changed").hint("something is writing to the model; hash it once it is complete"),
            E::EmptyModel { .. } => Failure::rejected(&e).code("empty-model").hint("check the model directory, and what `--ignore-paths` leaves out"),
            _ => Failure::undecided(&e).code("io"),
        }
    }
}

impl From<vouch_bundle::Error> for Failure {
    fn from(e: vouch_bundle::Error) -> Self {
        Failure::rejected(format!("the signature file is unusable: {e}")).code("bundle")
    }
}

impl From<vouch_trust::Error> for Failure {
    fn from(e: vouch_trust::Error) -> Self {
        use vouch_trust::Error as E;
        match &e {
            E::KeyPem(_) | E::UnsupportedKey | E::CertificatePem(_) => {
                Failure::undecided(&e).code("trust-material")
            }
            E::KeyHintMismatch { bundle, given } => Failure::rejected(&e)
                .code("signature")
                .quiet_reason(Reason::new("wrong-key", &e).expected_found(given, bundle))
                .hint("check that `--key` is the public half of the key that signed this model"),
            E::BadSignature => Failure::rejected(&e)
                .code("signature")
                .hint("check that `--key` is the public half of the key that signed this model"),
            E::MaterialMismatch {
                found: "a certificate",
                ..
            } => Failure::rejected(&e)
                .code("signature")
                .hint("verify with `--certificate-chain CA.pem`"),
            E::MaterialMismatch { .. } => Failure::rejected(&e)
                .code("signature")
                .hint("verify with `--key PUBLIC.pem`"),
            E::CertificateExpired { .. } | E::CertificateNotYetValid { .. } => {
                Failure::rejected(&e)
                    .code("certificate")
                    .hint("re-sign the model with a certificate that is valid now")
            }
            _ => Failure::rejected(&e).code("signature"),
        }
    }
}

impl From<vouch_oms::Error> for Failure {
    fn from(e: vouch_oms::Error) -> Self {
        use vouch_oms::Error as E;
        match e {
            E::Model(m) => m.into(),
            E::Mismatch(diffs) => {
                let mut f = Failure::rejected(E::Mismatch(diffs.clone())).code("model-mismatch");
                for d in &diffs {
                    f = f.reason(Reason::difference(d, None));
                }
                f.hint("the files on disk are not the files that were signed: restore them, or sign the model again")
            }
            other => Failure::rejected(other).code("signature"),
        }
    }
}

impl From<vouch_sign::Error> for Failure {
    fn from(e: vouch_sign::Error) -> Self {
        Failure::undecided(e).code("signing")
    }
}
