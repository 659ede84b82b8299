//! The model path rules (`vouch_model::ModelPath`), which every name from an untrusted
//! manifest goes through before anything touches the disk: a path that parses is relative,
//! has no empty, `.` or `..` component, prints back to itself, and stays below any root.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use vouch_model::{IgnoreSet, ModelPath};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One path per line: the first is checked, the others are ignore entries.
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let Ok(p) = ModelPath::parse(first) else {
        return;
    };
    assert_eq!(
        ModelPath::parse(p.as_str()).ok().as_ref(),
        Some(&p),
        "reparse differs"
    );
    assert_eq!(p.to_string(), p.as_str());
    if !p.is_single_file() {
        for c in p.components() {
            assert!(
                !c.is_empty() && c != "." && c != ".." && !c.contains('/'),
                "{c:?}"
            );
        }
    }
    let root = Path::new("/model-root");
    let on_disk = p.to_path(root);
    assert!(
        on_disk.starts_with(root),
        "{} leaves the root",
        on_disk.display()
    );
    assert!(
        on_disk
            .strip_prefix(root)
            .map(|rel| rel
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)))
            .unwrap_or(false),
        "{} has a non-normal component",
        on_disk.display()
    );
    if !p.is_single_file() {
        let rel =
            ModelPath::from_relative(Path::new(p.as_str())).expect("from_relative of a model path");
        assert_eq!(rel, p);
    }
    let mut ignore = IgnoreSet::new();
    for line in lines {
        if let Ok(q) = ModelPath::parse(line) {
            ignore.insert(q);
        }
    }
    if ignore.matches(&p) {
        assert!(ignore.paths().iter().any(|q| p.starts_with(q)));
    }
    ignore.insert(p.clone());
    assert!(ignore.matches(&p));
});
