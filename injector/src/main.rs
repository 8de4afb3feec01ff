#![forbid(unsafe_code)]
//! `picket-injector serve …` and `picket-injector inject …`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use picket_injector::server::{serve, ServeOptions};
use picket_injector::{manifest, Config, StaticNamespaces};

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
        } => {
            init_logging();
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start");
                    return ExitCode::from(2);
                }
            };
            let lookup = Arc::new(StaticNamespaces::new(config.namespaces.clone()));
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the runtime");
                    return ExitCode::from(2);
                }
            };
            let options = ServeOptions {
                listen,
                health_listen,
                tls_cert,
                tls_key,
                tls_poll: std::time::Duration::from_millis(tls_poll_ms),
            };
            match runtime.block_on(serve(options, Arc::new(config), lookup)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve");
                    ExitCode::from(2)
                }
            }
        }
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
