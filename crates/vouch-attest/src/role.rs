//! What a model file is for, from its name.

use std::fmt;

/// The role of a file in a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Weights: tensors and the indexes that map them.
    Weights,
    /// Tokenizer: vocabularies, merges, tokenizer models and their settings.
    Tokenizer,
    /// Configuration: architecture, generation settings, chat templates.
    Config,
    /// Anything else (README, licence, code).
    Other,
}

impl Role {
    /// The name recorded in attestations.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weights => "weights",
            Self::Tokenizer => "tokenizer",
            Self::Config => "config",
            Self::Other => "other",
        }
    }

    /// Parse a recorded role name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "weights" => Self::Weights,
            "tokenizer" => Self::Tokenizer,
            "config" => Self::Config,
            "other" => Self::Other,
            _ => return None,
        })
    }

    /// Classify a file by its name (the last path component), case-insensitively.
    pub fn classify(path: &str) -> Self {
        let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        const TOKENIZER_NAMES: [&str; 9] = [
            "tokenizer.json",
            "tokenizer.model",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "added_tokens.json",
            "merges.txt",
            "spiece.model",
            "sentencepiece.bpe.model",
            "tekken.json",
        ];
        const CONFIG_NAMES: [&str; 7] = [
            "config.json",
            "generation_config.json",
            "chat_template.json",
            "chat_template.jinja",
            "preprocessor_config.json",
            "processor_config.json",
            "params.json",
        ];
        const WEIGHT_EXTENSIONS: [&str; 14] = [
            ".safetensors",
            ".bin",
            ".gguf",
            ".ggml",
            ".pt",
            ".pth",
            ".onnx",
            ".h5",
            ".msgpack",
            ".ckpt",
            ".tflite",
            ".npz",
            ".pdparams",
            ".mlmodel",
        ];
        if TOKENIZER_NAMES.contains(&name.as_str()) || name.starts_with("vocab.") {
            Self::Tokenizer
        } else if CONFIG_NAMES.contains(&name.as_str()) || name.ends_with(".jinja") {
            Self::Config
        } else if WEIGHT_EXTENSIONS.iter().any(|e| name.ends_with(e))
            || name.ends_with(".safetensors.index.json")
            || name.ends_with(".bin.index.json")
        {
            Self::Weights
        } else {
            Self::Other
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn classifies_common_model_files() {
        let cases = [
            ("model.safetensors", Role::Weights),
            ("model-00001-of-00002.safetensors", Role::Weights),
            ("model.safetensors.index.json", Role::Weights),
            ("pytorch_model.bin", Role::Weights),
            ("gguf/Q4_K_M.GGUF", Role::Weights),
            ("onnx/model.onnx", Role::Weights),
            ("tokenizer.json", Role::Tokenizer),
            ("tokenizer.model", Role::Tokenizer),
            ("vocab.txt", Role::Tokenizer),
            ("vocab.json", Role::Tokenizer),
            ("merges.txt", Role::Tokenizer),
            ("special_tokens_map.json", Role::Tokenizer),
            ("tokenizer_config.json", Role::Tokenizer),
            ("config.json", Role::Config),
            ("generation_config.json", Role::Config),
            ("chat_template.jinja", Role::Config),
            ("templates/tool_use.jinja", Role::Config),
            ("README.md", Role::Other),
            ("LICENSE", Role::Other),
        ];
        for (path, role) in cases {
            assert_eq!(Role::classify(path), role, "{path}");
        }
    }
}
