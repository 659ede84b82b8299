//! `vouch-admission`: a validating admission webhook that denies Pods (and workload pod
//! templates) lacking a valid combined attestation.
//!
//! Thin by design: transport ([`server`]), AdmissionReview in/out ([`review`]), a cache of
//! verified results ([`cache`]) and metrics; the decision is `vouch_policy::decide`, a pure
//! function tested on recorded reviews. No signing code is linked.

#![forbid(unsafe_code)]

mod cache;
mod logs;
mod metrics;
mod policy;
mod review;
mod server;
mod source;
mod tls;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;

/// Every review parses JSON into trees and drops them again: allocation is a third of the
/// webhook's CPU with glibc's allocator under two busy threads (perf, warm cache), and
/// mimalloc's thread-local free lists halve that (`scripts/bench-admission`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Validating admission webhook: deny Pods whose images lack a valid combined attestation,
/// whose model pin does not match it, or that do not verify the model with vouch-init.
///
/// Exit status: 0 after a clean shutdown (SIGTERM), 2 when it cannot start.
#[derive(Debug, Parser)]
#[command(name = "vouch-admission", version, about, max_term_width = 100)]
struct Args {
    /// The trust policy (YAML, `vouch.dev/v1alpha1` `TrustPolicy`).
    #[arg(
        long,
        env = "VOUCH_POLICY",
        hide_env_values = true,
        value_name = "FILE"
    )]
    policy: PathBuf,
    /// Serving certificate chain (PEM); reloaded when it changes.
    #[arg(
        long,
        env = "VOUCH_TLS_CERT",
        hide_env_values = true,
        value_name = "FILE"
    )]
    tls_cert: PathBuf,
    /// Serving private key (PEM); reloaded when it changes.
    #[arg(
        long,
        env = "VOUCH_TLS_KEY",
        hide_env_values = true,
        value_name = "FILE"
    )]
    tls_key: PathBuf,
    /// Address to listen on.
    #[arg(
        long,
        env = "VOUCH_LISTEN",
        hide_env_values = true,
        default_value = "0.0.0.0:8443",
        value_name = "ADDR"
    )]
    listen: SocketAddr,
    /// Read attestations from this directory (`DIR/<image digest hex>/*.json`) instead of
    /// the registry: air-gapped clusters and tests.
    #[arg(
        long,
        env = "VOUCH_ATTESTATION_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    attestation_dir: Option<PathBuf>,
    /// Allow plain HTTP to registries that are not on the loopback interface.
    #[arg(long, env = "VOUCH_ALLOW_INSECURE_REGISTRY", hide_env_values = true)]
    allow_insecure_registry: bool,
    /// PEM file of CA certificates trusted for registries besides the system store;
    /// loopback registries are then spoken to over HTTPS too.
    #[arg(
        long,
        env = "VOUCH_REGISTRY_CA",
        hide_env_values = true,
        value_name = "FILE"
    )]
    registry_ca: Option<PathBuf>,
    /// Answer every review within this time (keep it below the webhook's timeoutSeconds).
    #[arg(long, default_value = "8s", value_parser = parse_duration, value_name = "DURATION")]
    deadline: Duration,
    /// How long a verified result is reused.
    #[arg(long, default_value = "300s", value_parser = parse_duration, value_name = "DURATION")]
    cache_ttl: Duration,
    /// How long a "could not verify" result is reused.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    failure_ttl: Duration,
    /// Most cached images.
    #[arg(long, default_value_t = 10_000)]
    cache_entries: usize,
    /// Most attestation lookups in flight to one registry; the rest wait their turn, first
    /// come first served (a burst of new images neither floods the registry nor leaves some
    /// reviews waiting far longer than others).
    #[arg(long, env = "VOUCH_REGISTRY_CONCURRENCY", hide_env_values = true, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    registry_concurrency: u16,
    /// How often to re-read the policy (and the keys it names) for changes; 0s: never. A
    /// changed policy that does not load is refused, and the one in force stays.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    policy_reload_interval: Duration,
    /// How often to check the certificate files for changes; 0s: never.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    tls_reload_interval: Duration,
    /// Log level: error, warn, info, debug.
    #[arg(
        long,
        env = "VOUCH_LOG",
        hide_env_values = true,
        default_value = "info"
    )]
    log: tracing::Level,
    /// Worker threads [default: one per core].
    #[arg(long, env = "VOUCH_WORKERS", hide_env_values = true)]
    workers: Option<usize>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like `8s` or `500ms`"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{s}`: use ms, s or m")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (lines, _flush_at_exit) = match logs::start(std::io::stderr()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot start the log writer: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_max_level(args.log)
        .with_writer(lines)
        .init();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(w) = args.workers {
        rt.worker_threads(w.max(1));
    }
    let rt = match rt.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let policy = vouch_policy::Policy::load(&args.policy).map_err(|e| e.to_string())?;
    tracing::info!(
        policy = %args.policy.display(),
        digest = %policy.digest,
        mode = %policy.mode,
        rules = policy.rules.len(),
        "policy loaded"
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = Arc::new(tls::Reloading::new(
        args.tls_cert.clone(),
        args.tls_key.clone(),
        provider.clone(),
    )?);
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let metrics = Arc::new(metrics::Metrics::default());
    certs.spawn_watch(metrics.clone(), args.tls_reload_interval);
    let with_hint = |e: vouch_oci::Error| {
        let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
        format!("{e}{hint}")
    };
    let registry_ca = match &args.registry_ca {
        Some(p) => Some(vouch_oci::RegistryCa::from_file(p).map_err(with_hint)?),
        None => None,
    };
    if args.attestation_dir.is_none() {
        // Fail at start, not at the first review, when no registry client can be set up.
        vouch_oci::Registry::check_system_roots().map_err(with_hint)?;
    }
    let source: Arc<dyn source::AttestationSource> = match &args.attestation_dir {
        Some(dir) => Arc::new(source::DirSource { dir: dir.clone() }),
        None => Arc::new(source::RegistrySource::new(
            vouch_oci::Options {
                allow_insecure: args.allow_insecure_registry,
                registry_ca,
                credentials: None,
                credential_helpers: vouch_oci::Helpers::Never,
                timeout: args.deadline,
            },
            usize::from(args.registry_concurrency),
            metrics.clone(),
        )),
    };
    let policy = Arc::new(policy::LivePolicy::new(
        args.policy.clone(),
        policy,
        &metrics,
    ));
    policy.spawn_watch(metrics.clone(), args.policy_reload_interval);
    let state = Arc::new(review::State {
        policy,
        cache: cache::Cache::new(
            cache::CacheConfig {
                ttl: args.cache_ttl,
                failure_ttl: args.failure_ttl,
                max_entries: args.cache_entries.max(1),
            },
            source,
            metrics.clone(),
        ),
        metrics,
        deadline: args.deadline,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(listen = %local, "serving https://{local}/validate");
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received");
        let _ = tx.send(true);
    });
    let server = server::Server {
        state,
        tls: Arc::new(tls),
        ready: Arc::new(AtomicBool::new(true)),
    };
    server
        .run(listener, rx, Duration::from_secs(20))
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
