#![forbid(unsafe_code)]
//! `picket-injector serve …`, `identity …`, `ca generate …` and `inject …`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use picket_injector::identity::{
    write_ca_dir, IdentityServer, IdentityServerOptions, StaticTokens, TokenReviewValidator,
    TokenValidator,
};
use picket_injector::metrics::Metrics;
use picket_injector::server::{serve, serve_health, shutdown_signal, ServeOptions};
use picket_injector::{manifest, Config, KubeNamespaces, NamespaceLookup, StaticNamespaces};
use picket_mtls::issuance::IDENTITY_PORT;

#[derive(Parser)]
#[command(name = "picket-injector", version, about = "picket's sidecar injector")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The mutating admission webhook: HTTPS POST /mutate (AdmissionReview v1).
    Serve {
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: SocketAddr,
        /// PEM certificate chain of the serving certificate.
        #[arg(long)]
        tls_cert: PathBuf,
        /// PEM private key of the serving certificate.
        #[arg(long)]
        tls_key: PathBuf,
        /// The injector configuration (JSON).
        #[arg(long)]
        config: PathBuf,
        /// Plain HTTP /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:8080")]
        health_listen: SocketAddr,
        /// How often (milliseconds) the certificate files are checked for a change.
        #[arg(long, default_value_t = 10_000)]
        tls_poll_ms: u64,
        /// The mesh CA directory (the Secret's layout: root.crt, intermediate.crt,
        /// intermediate.key, optional root.key and extra-roots.crt). With it, the identity
        /// service runs beside the webhook and sidecars get PICKET_IDENTITY_CA.
        #[arg(long)]
        mesh_ca_dir: Option<PathBuf>,
        /// Where the identity service listens (with --mesh-ca-dir).
        #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], IDENTITY_PORT)))]
        identity_listen: SocketAddr,
        /// A DNS name of the identity service's serving certificate (repeatable; at least one
        /// with --mesh-ca-dir), e.g. picket-injector.picket-system.svc.
        #[arg(long = "identity-dns-name")]
        identity_dns_names: Vec<String>,
        /// How the identity service checks ServiceAccount tokens.
        #[arg(long, value_enum, default_value_t = TokenReview::Kubernetes)]
        token_review: TokenReview,
        /// Check tokens against a JSON file {"<token>": "<namespace>/<serviceaccount>"}
        /// instead (tests, no Kubernetes).
        #[arg(long)]
        identity_tokens: Option<PathBuf>,
        /// Lifetime of the workload certificates the identity service issues.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        workload_cert_ttl: Duration,
        /// How often the mesh CA directory is checked for a change.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        ca_poll: Duration,
        /// Where namespace annotations come from: the API server (cached 30 s), or the
        /// configuration's `namespaces`. Default: kubernetes in a cluster
        /// (KUBERNETES_SERVICE_HOST set), config elsewhere.
        #[arg(long, value_enum)]
        namespace_source: Option<NamespaceSource>,
    },
    /// Only the mesh identity service: HTTPS POST /v1/certificate (see the README).
    Identity(IdentityArgs),
    /// Mesh CA tooling.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Injects the manifests of a multi-document YAML file (or `-` for standard input) and
    /// prints them.
    Inject {
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// The injector configuration (JSON); without it, images `picket:<version>`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The namespace of documents that name none.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TokenReview {
    /// TokenReview against the Kubernetes API server (in-cluster or kubeconfig).
    Kubernetes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NamespaceSource {
    /// GET /api/v1/namespaces/NAME, cached.
    Kubernetes,
    /// The configuration file's `namespaces`.
    Config,
}

#[derive(Args)]
struct IdentityArgs {
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], IDENTITY_PORT)))]
    listen: SocketAddr,
    /// The mesh CA directory (root.crt, intermediate.crt, intermediate.key, optional root.key
    /// and extra-roots.crt), as `ca generate` writes it or the chart's Secret is mounted.
    #[arg(long)]
    mesh_ca_dir: PathBuf,
    /// Tokens from a JSON file {"<token>": "<namespace>/<serviceaccount>", …} (tests, no
    /// Kubernetes).
    #[arg(
        long,
        conflicts_with = "token_review",
        required_unless_present = "token_review"
    )]
    tokens: Option<PathBuf>,
    /// Check tokens with the Kubernetes API (TokenReview).
    #[arg(long, value_enum)]
    token_review: Option<TokenReview>,
    /// A DNS name of the serving certificate (repeatable, at least one).
    #[arg(long = "dns-name", required = true)]
    dns_names: Vec<String>,
    /// Lifetime of the workload certificates issued (humantime: 24h, 10s, …).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    workload_cert_ttl: Duration,
    /// Plain HTTP /healthz, /readyz and /metrics.
    #[arg(long)]
    health_listen: Option<SocketAddr>,
    /// How often the CA directory is checked for a change.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ca_poll: Duration,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Writes a new root and intermediate (ECDSA P-256) to a new directory, in the layout of
    /// the chart's Secret: root.crt, root.key, intermediate.crt, intermediate.key (keys 0600).
    /// Refuses to overwrite.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = picket_mtls::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
    },
}

async fn validator(
    tokens: Option<&std::path::Path>,
    review: Option<TokenReview>,
) -> Result<Arc<dyn TokenValidator>, String> {
    match (tokens, review) {
        (Some(path), _) => Ok(Arc::new(
            StaticTokens::load(path).map_err(|e| e.to_string())?,
        )),
        (None, Some(TokenReview::Kubernetes)) => {
            let client = picket_injector::kubernetes::client()
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(TokenReviewValidator::new(client)))
        }
        (None, None) => Err("give --tokens FILE or --token-review kubernetes".into()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            tracing::error!(error = %e, "cannot start the runtime");
            ExitCode::from(2)
        })
}

fn run_identity(args: IdentityArgs) -> ExitCode {
    init_logging();
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let validator = match validator(args.tokens.as_deref(), args.token_review).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::from(2);
            }
        };
        let metrics = Arc::new(Metrics::new());
        let options = IdentityServerOptions {
            listen: args.listen,
            mesh_ca_dir: args.mesh_ca_dir,
            dns_names: args.dns_names,
            workload_ttl: args.workload_cert_ttl,
            ca_poll: args.ca_poll,
        };
        let server = match IdentityServer::bind(options, validator, metrics.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::from(2);
            }
        };
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let health = match args.health_listen {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some(tokio::spawn(serve_health(l, ready.clone(), metrics))),
                Err(e) => {
                    tracing::error!(error = %e, %addr, "cannot listen");
                    return ExitCode::from(2);
                }
            },
            None => None,
        };
        tracing::info!(
            listen = %server.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            trust_domain = %server.trust_domain(),
            workload_cert_ttl = %humantime::format_duration(args.workload_cert_ttl),
            "identity service serving"
        );
        let task = tokio::spawn(server.run());
        shutdown_signal().await;
        tracing::info!("identity service stopping");
        task.abort();
        if let Some(h) = health {
            h.abort();
        }
        ExitCode::SUCCESS
    })
}

fn ca_generate(out: &std::path::Path, trust_domain: &str) -> ExitCode {
    let td = match picket_mtls::TrustDomain::new(trust_domain) {
        Ok(td) => td,
        Err(e) => {
            eprintln!("picket-injector: trust domain {trust_domain:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let ca = match picket_mtls::MeshCa::generate(td, &picket_mtls::CaOptions::default()) {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("picket-injector: cannot generate the CA: {e}");
            return ExitCode::from(1);
        }
    };
    match write_ca_dir(out, &ca) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "picket-injector: cannot write the CA to {}: {e}",
                out.display()
            );
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            config,
            health_listen,
            tls_poll_ms,
            mesh_ca_dir,
            identity_listen,
            identity_dns_names,
            token_review,
            ca_poll,
            identity_tokens,
            workload_cert_ttl,
            namespace_source,
        } => {
            init_logging();
            let mut config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start");
                    return ExitCode::from(2);
                }
            };
            let runtime = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            let namespace_source = namespace_source.unwrap_or(
                if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
                    NamespaceSource::Kubernetes
                } else {
                    NamespaceSource::Config
                },
            );
            let options = ServeOptions {
                listen,
                health_listen,
                tls_cert,
                tls_key,
                tls_poll: std::time::Duration::from_millis(tls_poll_ms),
            };
            let metrics = Arc::new(Metrics::new());
            runtime.block_on(async move {
                let lookup: Arc<dyn NamespaceLookup> = match namespace_source {
                    NamespaceSource::Config => {
                        Arc::new(StaticNamespaces::new(config.namespaces.clone()))
                    }
                    NamespaceSource::Kubernetes => match picket_injector::kubernetes::client().await
                    {
                        Ok(client) => {
                            Arc::new(KubeNamespaces::new(client).with_metrics(metrics.clone()))
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "--namespace-source kubernetes: cannot start");
                            return ExitCode::from(2);
                        }
                    },
                };
                tracing::info!(namespace_source = ?namespace_source, "namespace annotations source");
                let identity = match mesh_ca_dir {
                    Some(dir) => {
                        if identity_dns_names.is_empty() {
                            tracing::error!("--mesh-ca-dir needs at least one --identity-dns-name");
                            return ExitCode::from(2);
                        }
                        let v =
                            match validator(identity_tokens.as_deref(), Some(token_review)).await {
                                Ok(v) => v,
                                Err(e) => {
                                    tracing::error!(error = %e, "cannot start");
                                    return ExitCode::from(2);
                                }
                            };
                        let options = IdentityServerOptions {
                            listen: identity_listen,
                            mesh_ca_dir: dir,
                            dns_names: identity_dns_names,
                            workload_ttl: workload_cert_ttl,
                            ca_poll,
                        };
                        match IdentityServer::bind(options, v, metrics.clone()).await {
                            Ok(s) => Some(s),
                            Err(e) => {
                                tracing::error!(error = %e, "cannot start the identity service");
                                return ExitCode::from(2);
                            }
                        }
                    }
                    None => None,
                };
                if let Some(id) = &identity {
                    if id.trust_domain() != config.trust_domain {
                        tracing::error!(
                            ca_trust_domain = %id.trust_domain(),
                            config_trust_domain = %config.trust_domain,
                            "the mesh CA's trust domain is not the configuration's trustDomain"
                        );
                        return ExitCode::from(2);
                    }
                    config.identity_ca = Some(id.trust_bundle_pem());
                }
                match serve(options, Arc::new(config), lookup, metrics, identity).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serve");
                        ExitCode::from(2)
                    }
                }
            })
        }
        Command::Identity(args) => run_identity(args),
        Command::Ca {
            command: CaCommand::Generate { out, trust_domain },
        } => ca_generate(&out, &trust_domain),
        Command::Inject {
            file,
            config,
            namespace,
        } => {
            let config = match config {
                Some(path) => match Config::load(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("picket-injector: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => {
                    let image = format!("picket:{}", env!("CARGO_PKG_VERSION"));
                    Config::with_images(&image, &image)
                }
            };
            let mut text = String::new();
            let read = if file == "-" {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(&file).map(|t| text = t)
            };
            if let Err(e) = read {
                eprintln!("picket-injector: cannot read {file}: {e}");
                return ExitCode::from(2);
            }
            let namespaces = StaticNamespaces::new(config.namespaces.clone());
            match manifest::inject_yaml(&text, &config, &namespaces, &namespace) {
                Ok((out, notes)) => {
                    for n in notes {
                        eprintln!("{}: {}", n.what, n.outcome);
                    }
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e @ manifest::ManifestError::Denied { .. }) => {
                    eprintln!("picket-injector: {e}");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("picket-injector: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
