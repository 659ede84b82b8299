//! The trust policy YAML (`vouch_policy::Policy::parse`, strict): nothing panics, and
//! parsing is a function of the text (the same text gives the same policy).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Key files named by the policy resolve against testdata/policy, as for the fixtures.
    let base = vouch_fuzz::testdata("policy");
    let first = vouch_policy::Policy::parse(text, Some(&base));
    let second = vouch_policy::Policy::parse(text, Some(&base));
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "two parses differ");
            // The questions the webhook asks of a policy.
            for repo in [
                "registry.example.com/models/tiny-llm-server",
                "docker.io/library/nginx",
                "",
            ] {
                let _ = a.covers(repo);
                let _ = a.signers_for(repo);
                let _ = a.authority_names_for(repo);
            }
            let _ = a.is_exempt("kube-system");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("parsing the same text succeeded once and failed once"),
    }
});
