//! The docker config (`config.json`: `auths`, `credHelpers`, `credsStore`) and a credential
//! helper's output, as vouch-oci reads them (no program is run: the bytes after the first
//! NUL stand for what the helper printed). Credentials never show in their Debug form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_oci::Credentials;

fuzz_target!(|data: &[u8]| {
    let (config, helper) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    for registry in ["registry.example.com", "docker.io", "127.0.0.1:5000"] {
        let Ok(c) = vouch_oci::fuzzing::docker_config_credentials(config, registry, helper) else {
            continue;
        };
        // Exactly the user name and placeholders (a secret may itself spell `<redacted>`).
        let shown = format!("{c:?}");
        let expected = match &c {
            Credentials::Basic { username, .. } => format!("Basic({username}, <redacted>)"),
            Credentials::Bearer(_) => "Bearer(<redacted>)".to_owned(),
            Credentials::Anonymous => "Anonymous".to_owned(),
        };
        assert_eq!(shown, expected, "credentials in their Debug form");
    }
});
