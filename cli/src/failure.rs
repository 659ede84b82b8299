//! How a command fails: a message, details, hints, and the exit code that tells a script
//! whether vouch checked and said no (1) or could not decide (2).

use std::fmt::Display;
use std::process::ExitCode;

/// Whether a failure is a verdict or an inability to reach one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Checked, and the answer is no (exit 1).
    Rejected,
    /// Could not decide: usage, I/O, network (exit 2).
    Undecided,
}

/// A failed command, ready to print.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub details: Vec<String>,
    pub hints: Vec<String>,
}

impl Failure {
    pub fn rejected(message: impl Display) -> Self {
        Self {
            kind: Kind::Rejected,
            message: message.to_string(),
            details: Vec::new(),
            hints: Vec::new(),
        }
    }

    pub fn undecided(message: impl Display) -> Self {
        Self {
            kind: Kind::Undecided,
            message: message.to_string(),
            details: Vec::new(),
            hints: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hints.push(hint.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Display) -> Self {
        self.details.push(detail.to_string());
        self
    }

    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            Kind::Rejected => ExitCode::from(1),
            Kind::Undecided => ExitCode::from(2),
        }
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
}

pub type Result<T = ()> = std::result::Result<T, Failure>;

impl From<vouch_model::Error> for Failure {
    fn from(e: vouch_model::Error) -> Self {
        use vouch_model::Error as E;
        match &e {
            E::Symlink { .. } => Failure::rejected(&e)
                .hint("replace the link with the file it points to, or leave it out with `--ignore-paths`"),
            E::SpecialFile { .. } | E::HardLink { .. } | E::NonUtf8Name { .. } | E::InvalidPath(_) => {
                Failure::rejected(&e)
            }
            E::Changed { .. } => Failure::rejected(&e).hint("something is writing to the model; hash it once it is complete"),
            E::EmptyModel { .. } => Failure::rejected(&e).hint("check the model directory, and what `--ignore-paths` leaves out"),
            _ => Failure::undecided(&e),
        }
    }
}

impl From<vouch_bundle::Error> for Failure {
    fn from(e: vouch_bundle::Error) -> Self {
        Failure::rejected(format!("the signature file is unusable: {e}"))
    }
}

impl From<vouch_trust::Error> for Failure {
    fn from(e: vouch_trust::Error) -> Self {
        use vouch_trust::Error as E;
        match &e {
            E::KeyPem(_) | E::UnsupportedKey | E::CertificatePem(_) => Failure::undecided(&e),
            E::KeyHintMismatch { .. } | E::BadSignature => Failure::rejected(&e)
                .hint("check that `--key` is the public half of the key that signed this model"),
            E::MaterialMismatch {
                found: "a certificate",
                ..
            } => Failure::rejected(&e).hint("verify with `--certificate-chain CA.pem`"),
            E::MaterialMismatch { .. } => {
                Failure::rejected(&e).hint("verify with `--key PUBLIC.pem`")
            }
            E::CertificateExpired { .. } | E::CertificateNotYetValid { .. } => {
                Failure::rejected(&e).hint("re-sign the model with a certificate that is valid now")
            }
            _ => Failure::rejected(&e),
        }
    }
}

impl From<vouch_oms::Error> for Failure {
    fn from(e: vouch_oms::Error) -> Self {
        use vouch_oms::Error as E;
        match e {
            E::Model(m) => m.into(),
            E::Mismatch(diffs) => {
                let mut f = Failure::rejected(E::Mismatch(diffs.clone()));
                for d in &diffs {
                    f = f.detail(d);
                }
                f.hint("the files on disk are not the files that were signed: restore them, or sign the model again")
            }
            other => Failure::rejected(other),
        }
    }
}

impl From<vouch_sign::Error> for Failure {
    fn from(e: vouch_sign::Error) -> Self {
        Failure::undecided(e)
    }
}
