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
        let shown = format!("{c:?}");
        match &c {
            Credentials::Basic { username, password }
                if password.len() >= 8 && !username.contains(password.as_str()) =>
            {
                assert!(!shown.contains(password.as_str()), "password in {shown}");
            }
            Credentials::Bearer(t) if t.len() >= 8 => {
                assert!(!shown.contains(t.as_str()), "token in {shown}");
            }
            _ => {}
        }
    }
});
