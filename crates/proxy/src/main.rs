#![forbid(unsafe_code)]
//! `picket`: the layer-7 DPI sidecar's command line.

use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use picket::admin::{self, AdminState};
use picket::blocklog::BlockLog;
use picket::gateway::{self, BlockResponse, Direction, GatewayConfig, Listener, Mode, Route};
use picket::http2::{GrpcRefusal, H2Settings};
use picket::mesh::{InboundPolicy, MeshFiles, MeshSettings};
use picket::metrics::Metrics;
use picket::packs::PackSource;
use picket::reload::{PackStore, PackWatcher};
use picket::scan::{scan_jsonl, scan_raw, write_report, InputError};
use picket_dpi::{InspectConfig, OverLimit};
use picket_signatures::{PackPolicy, PublicKey};

mod pack_tools;

mod pack_import;

mod init;

#[derive(Parser)]
#[command(
    name = "picket",
    version,
    about = "Layer-7 deep-packet-inspection sidecar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The sidecar. Transparent mode by default (outbound 15001, inbound 15006, each
    /// connection to its original destination); gateway mode with `--listen ADDR --upstream
    /// ADDR` (fixed upstream).
    Proxy(Box<ProxyArgs>),
    /// Inspect raw HTTP/1.1 requests offline, with the proxy's engine and decision.
    Scan {
        /// Signature pack (TOML); the built-in default pack when absent.
        #[arg(long)]
        pack: Option<PathBuf>,
        /// Exclusion overlay files applied on top of the pack.
        #[arg(long = "overlay")]
        overlays: Vec<PathBuf>,
        /// Inputs are JSON lines with the raw request in `raw` (or `raw_b64`) and an `id`.
        #[arg(long)]
        jsonl: bool,
        /// Body bytes inspected per request.
        #[arg(long, default_value_t = 1 << 20)]
        body_limit: usize,
        /// Files to scan (one request stream each); standard input when none.
        files: Vec<PathBuf>,
    },
    /// What the init container runs: install the redirect rules in the pod's network
    /// namespace (inbound to 15006, outbound to 15001, except picket's UID and exclusions).
    Init(init::InitArgs),
    /// Signature pack tooling.
    Pack {
        #[command(subcommand)]
        command: PackCommand,
    },
    /// Wait until a local picket is ready (its admin `/readyz` answers 200): the start-up hook
    /// that holds an application container until its sidecar serves.
    WaitReady {
        /// picket's admin endpoint.
        #[arg(long, default_value = "127.0.0.1:15090")]
        admin: SocketAddr,
        /// Give up after this long (`60s`, `2m`).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

#[derive(clap::Args)]
struct ProxyArgs {
    /// Address to accept clients on (gateway mode).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The one upstream every request goes to (gateway mode).
    #[arg(long)]
    upstream: Option<SocketAddr>,
    /// Transparent mode: where redirected outbound connections arrive (IPv4 and IPv6; an
    /// IPv6 address that cannot be bound, in a pod without IPv6, is skipped with a warning).
    #[arg(long, value_delimiter = ',', default_values_t = [SocketAddr::from(([0, 0, 0, 0], 15001)), SocketAddr::from(([0u16; 8], 15001))])]
    outbound_listen: Vec<SocketAddr>,
    /// Transparent mode: where redirected inbound connections arrive (IPv4 and IPv6).
    #[arg(long, value_delimiter = ',', default_values_t = [SocketAddr::from(([0, 0, 0, 0], 15006)), SocketAddr::from(([0u16; 8], 15006))])]
    inbound_listen: Vec<SocketAddr>,
    /// Signature pack (TOML); the built-in default pack when absent.
    #[arg(long)]
    pack: Option<PathBuf>,
    /// Exclusion overlay files applied on top of the pack.
    #[arg(long = "overlay")]
    overlays: Vec<PathBuf>,
    /// The pack's detached signature; `PACK.sig` beside the pack by default.
    #[arg(long)]
    pack_signature: Option<PathBuf>,
    /// A public key whose pack signatures are trusted (repeatable; `picket pack keygen`), or a
    /// directory whose `*.pub` files all are (a mounted ConfigMap of keys).
    #[arg(long = "pack-pubkey")]
    pack_pubkeys: Vec<PathBuf>,
    /// Refuse a pack without a valid signature from a trusted key.
    #[arg(long)]
    require_signed_pack: bool,
    /// Accept a reloaded pack whose version is older than the one in force.
    #[arg(long)]
    allow_pack_rollback: bool,
    /// Milliseconds between checks of the pack files (and the mesh certificate files) for
    /// changes (SIGHUP reloads the pack at once).
    #[arg(long, default_value_t = 1000)]
    pack_poll_ms: u64,
    /// protect: refuse blocked requests; monitor: forward them and log an alert.
    #[arg(long, value_enum, default_value = "protect")]
    mode: ModeArg,
    /// Admin endpoint address (/healthz, /readyz, /metrics, /pack); 0.0.0.0:15090 in
    /// transparent mode, none in gateway mode unless given.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Body bytes inspected per request.
    #[arg(long, default_value_t = 1 << 20)]
    body_limit: usize,
    /// Past the body limit: fail-open (forward, alert) or fail-closed (refuse).
    #[arg(long, value_enum, default_value = "fail-open")]
    over_limit: OverLimitArg,
    /// Seconds a client may stay idle between requests.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Seconds a client has to send a whole request from its first byte (slowloris cut-off).
    #[arg(long, default_value_t = 10)]
    request_timeout: u64,
    /// Seconds to connect to the upstream.
    #[arg(long, default_value_t = 5)]
    connect_timeout: u64,
    /// Milliseconds an idle HTTP/1 upstream connection stays in the pool (below common server
    /// keep-alive timeouts: Node's is 5 s).
    #[arg(long, default_value_t = 4000)]
    upstream_idle_timeout_ms: u64,
    /// Idle pooled upstream connections per destination; 0 turns pooling off.
    #[arg(long, default_value_t = 16)]
    upstream_pool_max_per_destination: usize,
    /// Idle pooled upstream connections in all.
    #[arg(long, default_value_t = 1024)]
    upstream_pool_max_idle: usize,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Threads serving connections; 0 (the default) takes the CPUs this process may use (its
    /// affinity and cgroup CPU quota). With one, the single-threaded runtime is used.
    #[arg(long, default_value_t = 0)]
    worker_threads: usize,
    /// Seconds in-flight connections may finish after SIGTERM.
    #[arg(long, default_value_t = 10)]
    drain_grace: u64,
    /// Milliseconds of client silence after which a connection is counted as server-first
    /// (detection keeps waiting: it never falls back to uninspected on a timer).
    #[arg(long, default_value_t = 500)]
    detect_timeout_ms: u64,
    /// Upstream ports relayed as opaque TCP without protocol detection (comma list).
    #[arg(long, value_delimiter = ',', default_values_t = [25u16, 110, 143, 3306, 5432, 6379, 11211, 27017, 9042, 2181, 4222, 5672])]
    opaque_ports: Vec<u16>,
    /// HTTP/2: concurrent streams a client connection may open.
    #[arg(long, default_value_t = 100)]
    h2_max_concurrent_streams: u32,
    /// HTTP/2: largest decoded request header list, in bytes (also bounds CONTINUATION).
    #[arg(long, default_value_t = 64 << 10)]
    h2_max_header_list_size: u32,
    /// How a blocked HTTP request is refused: `reset` (HTTP/1: TCP RST; HTTP/2: RST_STREAM)
    /// or `http-403` (a 403 Forbidden response, then HTTP/1 closes the connection).
    #[arg(long, value_enum, default_value = "reset")]
    block_response: BlockResponseArg,
    /// How a blocked gRPC call is refused: `status` (grpc-status 7, PERMISSION_DENIED) or
    /// `reset` (RST_STREAM).
    #[arg(long, value_enum, default_value = "status")]
    grpc_refusal: GrpcRefusalArg,
    /// Operational log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Mesh mTLS: this workload's certificate chain (PEM, leaf first). With --mesh-key and
    /// --mesh-trust-bundle; inbound ClientHellos are then terminated as mesh tunnels.
    #[arg(long, requires_all = ["mesh_key", "mesh_trust_bundle"])]
    mesh_cert: Option<PathBuf>,
    /// Mesh mTLS: the private key of --mesh-cert (PEM).
    #[arg(long, requires_all = ["mesh_cert", "mesh_trust_bundle"])]
    mesh_key: Option<PathBuf>,
    /// Mesh mTLS: the trusted mesh roots (PEM).
    #[arg(long, requires_all = ["mesh_cert", "mesh_key"])]
    mesh_trust_bundle: Option<PathBuf>,
    /// Inbound connections that are not mesh mTLS: `permissive` serves them as plaintext,
    /// `strict` resets them (needs mesh certificates: files or the identity service).
    #[arg(long, value_enum, default_value = "permissive")]
    mesh_inbound: MeshInboundArg,
    /// Gateway mode: the upstream is a picket peer; originate mesh mTLS to it, accepting this
    /// SPIFFE id, or `trust-domain:TD` for any workload of trust domain TD. The listener is
    /// then an outbound one. Needs mesh certificates (files or the identity service).
    #[arg(long, requires = "upstream")]
    mesh_upstream: Option<String>,
    /// Mesh certificates from the identity service at HOST:PORT (env PICKET_IDENTITY_ADDRESS),
    /// renewed at about 70 % of their lifetime; instead of --mesh-cert/--mesh-key/
    /// --mesh-trust-bundle. /readyz stays 503 and no connection is served until the first
    /// certificate is installed.
    #[arg(long, conflicts_with_all = ["mesh_cert", "mesh_key", "mesh_trust_bundle"])]
    identity_address: Option<String>,
    /// The ServiceAccount token presented to the identity service, re-read on every request
    /// (env PICKET_IDENTITY_TOKEN; default /var/run/secrets/picket/token).
    #[arg(long)]
    identity_token: Option<PathBuf>,
    /// PEM file of the root(s) that verify the identity service's serving certificate (or env
    /// PICKET_IDENTITY_CA with the PEM text itself, as the injector sets it).
    #[arg(long)]
    identity_ca: Option<PathBuf>,
    /// The trust domain the issued identity must belong to (env PICKET_TRUST_DOMAIN; default
    /// cluster.local).
    #[arg(long)]
    trust_domain: Option<String>,
    /// Inbound authorization: `PORT=PATTERN[,PATTERN...]` (repeatable; PORT may be `*`):
    /// only mesh peers whose SPIFFE id matches a pattern (`ns/<glob>/sa/<glob>` in the own
    /// trust domain, or a `spiffe://...` glob) may connect to PORT; others and plaintext
    /// clients are reset and logged (`event: "deny"`). Needs mesh certificates.
    #[arg(long = "inbound-allow")]
    inbound_allow: Vec<String>,
    /// Mesh mTLS: where to answer other sidecars' mesh probes (comma list); 0.0.0.0:15443 and
    /// [::]:15443 in transparent mode, none in gateway mode unless given. Transparent mode
    /// probes each destination's 15443 and opens mesh mTLS to those that answer.
    /// Needs mesh certificates (files or the identity service).
    #[arg(long, value_delimiter = ',')]
    mesh_listen: Vec<SocketAddr>,
    /// The inbound ports `picket init` leaves uncaptured (the same comma list as its
    /// --exclude-inbound-ports): announced on the mesh port, so that peers send to them in
    /// plaintext.
    #[arg(long, default_value = "", value_parser = init::parse_port_list)]
    exclude_inbound_ports: init::PortList,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MeshInboundArg {
    Permissive,
    Strict,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Protect,
    Monitor,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BlockResponseArg {
    Reset,
    #[value(name = "http-403")]
    Http403,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GrpcRefusalArg {
    Status,
    Reset,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OverLimitArg {
    FailOpen,
    FailClosed,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum PackCommand {
    /// Parse, validate and compile a pack (and overlays); print a summary or every problem.
    Validate {
        pack: PathBuf,
        #[arg(long = "overlay")]
        overlays: Vec<PathBuf>,
    },
    #[command(flatten)]
    Tool(pack_tools::PackTool),
    /// Convert Suricata/Snort HTTP rules or ModSecurity phrase files into a pack; the pack on
    /// stdout (or --out), a per-rule report on stderr.
    Import(pack_import::ImportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Proxy(args) => proxy(*args),
        Command::WaitReady { admin, timeout } => wait_ready(admin, timeout),
        Command::Init(args) => init::run(args),
        Command::Scan {
            pack,
            overlays,
            jsonl,
            body_limit,
            files,
        } => scan(pack, overlays, jsonl, body_limit, files),
        Command::Pack {
            command: PackCommand::Import(args),
        } => pack_import::run(args),
        Command::Pack {
            command: PackCommand::Validate { pack, overlays },
        } => match picket::packs::load_engine(Some(&pack), &overlays) {
            Ok(engine) => {
                let info = engine.info();
                println!(
                    "{}: pack {} version {}: {} signatures, {} exclusions: ok",
                    pack.display(),
                    info.name,
                    info.version,
                    info.signatures,
                    info.exclusions
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Pack {
            command: PackCommand::Tool(tool),
        } => pack_tools::run(tool),
    }
}

fn scan(
    pack: Option<PathBuf>,
    overlays: Vec<PathBuf>,
    jsonl: bool,
    body_limit: usize,
    files: Vec<PathBuf>,
) -> ExitCode {
    let engine = match picket::packs::load_engine(pack.as_deref(), &overlays) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("picket scan: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = InspectConfig {
        body_limit,
        ..InspectConfig::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut errors: Vec<InputError> = Vec::new();
    let result = (|| -> std::io::Result<()> {
        if files.is_empty() {
            let stdin = std::io::stdin();
            if jsonl {
                errors.extend(scan_jsonl(
                    &engine,
                    &cfg,
                    "<stdin>",
                    stdin.lock(),
                    &mut out,
                )?);
            } else {
                let mut raw = Vec::new();
                stdin.lock().read_to_end(&mut raw)?;
                write_report(&mut out, &scan_raw(&engine, &cfg, "<stdin>".into(), &raw))?;
            }
        }
        for f in &files {
            let name = f.display().to_string();
            let read_err = |source| InputError::Read {
                path: name.clone(),
                source,
            };
            if jsonl {
                match std::fs::File::open(f) {
                    Ok(file) => errors.extend(scan_jsonl(
                        &engine,
                        &cfg,
                        &name,
                        BufReader::new(file),
                        &mut out,
                    )?),
                    Err(e) => errors.push(read_err(e)),
                }
            } else {
                match std::fs::read(f) {
                    Ok(raw) => write_report(
                        &mut out,
                        &scan_raw(&engine, &cfg, name.clone().into(), &raw),
                    )?,
                    Err(e) => errors.push(read_err(e)),
                }
            }
        }
        out.flush()
    })();
    if let Err(e) = result {
        eprintln!("picket scan: writing output: {e}");
        return ExitCode::from(2);
    }
    for e in &errors {
        eprintln!("picket scan: {e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn proxy(args: ProxyArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // Gateway mode needs both addresses; transparent mode neither.
    let plan: Vec<(SocketAddr, Route, Direction)> = match (args.listen, args.upstream) {
        // A gateway in front of a mesh upstream is the outbound side of the mesh.
        (Some(listen), Some(upstream)) if args.mesh_upstream.is_some() => {
            vec![(listen, Route::Fixed(upstream), Direction::outbound)]
        }
        (Some(listen), Some(upstream)) => {
            vec![(listen, Route::Fixed(upstream), Direction::inbound)]
        }
        (None, None) => args
            .outbound_listen
            .iter()
            .map(|&a| (a, Route::OriginalDst, Direction::outbound))
            .chain(
                args.inbound_listen
                    .iter()
                    .map(|&a| (a, Route::OriginalDst, Direction::inbound)),
            )
            .collect(),
        _ => {
            eprintln!("picket proxy: --listen and --upstream go together (gateway mode); give neither for transparent mode");
            return ExitCode::from(2);
        }
    };
    let transparent = args.listen.is_none();
    let admin_listen = args.admin_listen.or(if transparent {
        Some(SocketAddr::from(([0, 0, 0, 0], 15090)))
    } else {
        None
    });
    let policy = match pack_policy(&args) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("picket proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let source = args.pack.as_ref().map(|pack| PackSource {
        pack: pack.clone(),
        signature: args.pack_signature.clone(),
        overlays: args.overlays.clone(),
    });
    // The first pack passes the same policy as every reload (no version in force yet).
    let loaded = match &source {
        Some(src) => src.read().map_err(|e| e.to_string()).and_then(|bytes| {
            policy
                .check(&bytes.pack, bytes.signature.as_deref(), None)
                .map_err(|e| format!("{}: refused: {e}", src.pack.display()))?;
            src.compile(&bytes).map_err(|e| e.to_string())
        }),
        None => picket::packs::load_engine(None, &args.overlays).map_err(|e| e.to_string()),
    };
    let packs = match loaded {
        Ok(e) => Arc::new(PackStore::new(e)),
        Err(e) => {
            eprintln!("picket proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let engine = packs.engine();
    let mesh_policy = match mesh_policy(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("picket proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let mesh = match mesh_settings(&args, &mesh_policy) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("picket proxy: {e}");
            return ExitCode::from(2);
        }
    };
    // Mesh certificates from the identity service (instead of files).
    let identity = match identity_source(&args, mesh.is_some()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("picket proxy: {e}");
            return ExitCode::from(2);
        }
    };
    if mesh.is_none() && identity.is_none() && mesh_policy.needs_certificates() {
        eprintln!("picket proxy: --mesh-upstream, --mesh-inbound strict and --inbound-allow need mesh certificates (--mesh-cert/--mesh-key/--mesh-trust-bundle or --identity-address)");
        return ExitCode::from(2);
    }
    let mesh_id = mesh.as_ref().map(|(_, m)| m.tls.spiffe_id().to_string());
    let mesh_watch = mesh
        .as_ref()
        .map(|(files, m)| (files.clone(), m.tls.clone()));
    let mesh = mesh.map(|(_, m)| m);
    let cfg = GatewayConfig {
        mode: match args.mode {
            ModeArg::Protect => Mode::Protect,
            ModeArg::Monitor => Mode::Monitor,
        },
        inspect: InspectConfig {
            body_limit: args.body_limit,
            over_limit: match args.over_limit {
                OverLimitArg::FailOpen => OverLimit::FailOpen,
                OverLimitArg::FailClosed => OverLimit::FailClosed,
            },
            ..InspectConfig::default()
        },
        idle_timeout: Duration::from_secs(args.idle_timeout),
        request_timeout: Duration::from_secs(args.request_timeout),
        connect_timeout: Duration::from_secs(args.connect_timeout),
        max_connections: args.max_connections.max(1),
        drain_grace: Duration::from_secs(args.drain_grace),
        detect_timeout: Duration::from_millis(args.detect_timeout_ms),
        opaque_ports: args.opaque_ports,
        h2: H2Settings {
            max_concurrent_streams: args.h2_max_concurrent_streams.max(1),
            max_header_list_size: args.h2_max_header_list_size,
            grpc_refusal: match args.grpc_refusal {
                GrpcRefusalArg::Status => GrpcRefusal::Status,
                GrpcRefusalArg::Reset => GrpcRefusal::Reset,
            },
            ..H2Settings::default()
        },
        block_response: match args.block_response {
            BlockResponseArg::Reset => BlockResponse::Reset,
            BlockResponseArg::Http403 => BlockResponse::Forbidden,
        },
        mesh,
        mesh_probe: None,
        pool: picket::pool::PoolConfig {
            max_per_destination: args.upstream_pool_max_per_destination,
            max_total: args.upstream_pool_max_idle,
            idle_timeout: Duration::from_millis(args.upstream_idle_timeout_ms),
        },
    };
    // The mesh port: in transparent mode on 15443 unless given; with certificates from files
    // or from the identity service.
    let mesh_enabled = cfg.mesh.is_some() || identity.is_some();
    if !mesh_enabled && !args.mesh_listen.is_empty() {
        eprintln!("picket proxy: --mesh-listen needs mesh certificates (--mesh-cert/--mesh-key/--mesh-trust-bundle or --identity-address)");
        return ExitCode::from(2);
    }
    let mesh_listen = match (mesh_enabled, args.mesh_listen.is_empty()) {
        (false, _) => Vec::new(),
        (true, false) => args.mesh_listen.clone(),
        (true, true) if transparent => vec![
            SocketAddr::from(([0, 0, 0, 0], picket::mesh_probe::MESH_PORT)),
            SocketAddr::from(([0u16; 8], picket::mesh_probe::MESH_PORT)),
        ],
        (true, true) => Vec::new(),
    };
    let plain_ports: Arc<[u16]> = args.exclude_inbound_ports.0.clone().into();
    let pack_poll = Duration::from_millis(args.pack_poll_ms.max(10));
    let app_probes = match std::env::var(picket::probes::ENV) {
        Ok(json) => match picket::probes::AppProbes::parse(&json) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("picket proxy: {e}");
                return ExitCode::from(2);
            }
        },
        Err(_) => picket::probes::AppProbes::default(),
    };
    let workers = match args.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // One CPU (a sidecar's usual CPU limit): the single-threaded scheduler. The multi-threaded
    // one with a single worker runs a task woken by the running task next (its LIFO slot), which
    // with 1,000 connections let some wait far longer than others: p99 115-120 ms against
    // 27 ms single-threaded, same p50 (benches/README.md, "Threads").
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("picket proxy: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let metrics = Arc::new(Metrics::new());
        metrics.set_pack(engine.info());
        let mut cfg = cfg;
        let admin_state = Arc::new(AdminState {
            metrics: metrics.clone(),
            packs: packs.clone(),
            ready: std::sync::atomic::AtomicBool::new(false),
            app_probes,
        });
        let mut admin_bound = String::new();
        if let Some(addr) = admin_listen {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    admin_bound = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    tokio::spawn(admin::serve(l, admin_state.clone(), rx.clone()));
                }
                Err(e) => {
                    eprintln!("picket proxy: cannot listen on {addr} (admin): {e}");
                    return ExitCode::from(1);
                }
            }
        }
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for (addr, route, direction) in plan {
            let listener = match bind_listener(addr, transparent, "") {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(code) => return code,
            };
            bound.push(
                listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            );
            listeners.push(Listener {
                listener,
                route,
                direction,
            });
        }
        // The mesh port is bound now and served once the certificates are there.
        let mut mesh_listeners = Vec::new();
        for &addr in &mesh_listen {
            let listener = match bind_listener(addr, transparent, " (mesh port)") {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(code) => return code,
            };
            bound.push(
                listener
                    .local_addr()
                    .map(|a| format!("{a} (mesh)"))
                    .unwrap_or_default(),
            );
            mesh_listeners.push(listener);
        }
        // Watching starts before the start-up line, so a change made after it is seen.
        if let Some(source) = source {
            let watcher = PackWatcher::new(source, packs.clone(), metrics.clone(), policy);
            tokio::spawn(watcher.run(pack_poll, rx.clone()));
        }
        // The mesh files are watched like the pack (same poll interval).
        if let Some((files, tls)) = mesh_watch {
            tokio::spawn(picket::mesh::watch(
                files,
                tls,
                metrics.clone(),
                pack_poll,
                rx.clone(),
            ));
        }
        // The pack is loaded and the listeners bound: ready (with the identity service, once
        // the first certificate is installed, below).
        let waits_for_identity = identity.is_some();
        if !waits_for_identity {
            admin_state
                .ready
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let info = engine.info();
        let upstream = match args.upstream {
            Some(u) => u.to_string(),
            None => "original destination".to_string(),
        };
        tracing::info!(
            listen = %bound.join(","),
            upstream = %upstream,
            mode = cfg.mode.as_str(),
            pack = %info.name,
            pack_version = %info.version,
            signatures = info.signatures,
            admin = %admin_bound,
            mesh_identity = mesh_id.as_deref().unwrap_or(""),
            worker_threads = workers,
            "picket proxy started ({}{})",
            if transparent { "transparent mode" } else { "gateway mode" },
            if waits_for_identity { ", waiting for the mesh certificate" } else { "" }
        );
        let readiness = admin_state.clone();
        tokio::spawn(async move {
            wait_for_shutdown_signal().await;
            tracing::info!("shutdown signal received");
            // Draining: no longer ready for new traffic.
            readiness
                .ready
                .store(false, std::sync::atomic::Ordering::Release);
            let _ = tx.send(true);
        });
        if let Some(source) = identity {
            // Nothing is accepted before the first certificate: the listeners are bound, so
            // connections wait in the backlog (see picket::identity).
            let mut stop = rx.clone();
            let Some((tls, received)) =
                picket::identity::obtain_first(&source, &metrics, &mut stop).await
            else {
                tracing::info!("shut down before the first mesh certificate");
                return ExitCode::SUCCESS;
            };
            let tls = Arc::new(tls);
            tokio::spawn(picket::identity::renew(
                Arc::new(source),
                tls.clone(),
                metrics.clone(),
                received,
                rx.clone(),
            ));
            cfg.mesh = Some(mesh_policy.settings(tls));
        }
        if let Some(m) = cfg.mesh.as_ref() {
            // Transparent mode: outbound mesh mTLS to the destinations that answer on their
            // mesh port; and this sidecar answers on its own.
            if transparent {
                cfg.mesh_probe = Some(Arc::new(picket::mesh_probe::MeshProbe::new(
                    m.tls.clone(),
                    metrics.mesh_probe.clone(),
                )));
            }
            for listener in mesh_listeners {
                tokio::spawn(picket::mesh_probe::serve_mesh_port(
                    listener,
                    m.tls.clone(),
                    plain_ports.clone(),
                    rx.clone(),
                ));
            }
        }
        if waits_for_identity && !*rx.borrow() {
            admin_state
                .ready
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let log = BlockLog::stdout(metrics.block_log_dropped.clone());
        gateway::run(cfg, packs, log.clone(), metrics, listeners, rx).await;
        // Give the block log writer a moment to flush what is queued.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tracing::info!(
            block_lines = log.written(),
            dropped = log.dropped(),
            "picket proxy stopped"
        );
        ExitCode::SUCCESS
    })
}

/// `picket wait-ready`: polls `/readyz` until it answers 200 or the time is up.
fn wait_ready(admin: SocketAddr, timeout: Duration) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("picket wait-ready: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let ready = || async {
        let Ok(Ok(tcp)) = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(admin),
        )
        .await
        else {
            return false;
        };
        let Ok(request) = hyper::Request::get("/readyz")
            .header(hyper::header::HOST, "picket")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
        else {
            return false;
        };
        let answer = tokio::time::timeout(
            Duration::from_secs(1),
            picket::http_client::exchange(tcp, request, 1024),
        )
        .await;
        matches!(answer, Ok(Ok(a)) if a.status == hyper::StatusCode::OK)
    };
    runtime.block_on(async {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if ready().await {
                return ExitCode::SUCCESS;
            }
            if tokio::time::Instant::now() >= until {
                eprintln!("picket wait-ready: {admin}/readyz not ready after {timeout:?}");
                return ExitCode::from(1);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// The mesh policy of the command line, whatever the certificates come from.
struct MeshPolicy {
    inbound: InboundPolicy,
    upstream: Option<picket_mtls::AcceptedPeers>,
    inbound_allow: Option<Arc<picket::authz::InboundAllow>>,
}

impl MeshPolicy {
    fn needs_certificates(&self) -> bool {
        self.inbound == InboundPolicy::Strict
            || self.upstream.is_some()
            || self.inbound_allow.is_some()
    }

    fn settings(&self, tls: Arc<picket_mtls::MeshTls>) -> MeshSettings {
        MeshSettings {
            tls,
            inbound: self.inbound,
            upstream: self.upstream.clone(),
            inbound_allow: self.inbound_allow.clone(),
        }
    }
}

fn mesh_policy(args: &ProxyArgs) -> Result<MeshPolicy, String> {
    let mut allow = picket::authz::InboundAllow::default();
    for spec in &args.inbound_allow {
        allow.add(spec)?;
    }
    Ok(MeshPolicy {
        inbound_allow: (!allow.is_empty()).then(|| Arc::new(allow)),
        inbound: match args.mesh_inbound {
            MeshInboundArg::Permissive => InboundPolicy::Permissive,
            MeshInboundArg::Strict => InboundPolicy::Strict,
        },
        upstream: args
            .mesh_upstream
            .as_deref()
            .map(picket::mesh::parse_upstream_peers)
            .transpose()?,
    })
}

/// The mesh mTLS material and policy from the command line, loaded and checked (`None`
/// without `--mesh-cert`).
fn mesh_settings(
    args: &ProxyArgs,
    policy: &MeshPolicy,
) -> Result<Option<(MeshFiles, MeshSettings)>, String> {
    let (Some(cert), Some(key), Some(bundle)) =
        (&args.mesh_cert, &args.mesh_key, &args.mesh_trust_bundle)
    else {
        return Ok(None);
    };
    let files = MeshFiles {
        cert: cert.clone(),
        key: key.clone(),
        bundle: bundle.clone(),
    };
    let tls = files.load().map_err(|e| e.to_string())?;
    Ok(Some((files, policy.settings(Arc::new(tls)))))
}

/// A non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The identity service client, when `--identity-address` (or `PICKET_IDENTITY_ADDRESS`) is
/// set and the mesh files are not given. An address from the environment alone, without a
/// CA to verify the service, leaves mesh mTLS off with a warning (an injector that has no
/// mesh CA configured); the same on the command line is an error.
fn identity_source(
    args: &ProxyArgs,
    have_files: bool,
) -> Result<Option<picket::identity::CertificateSource>, String> {
    let (address, explicit) = match (&args.identity_address, env_var("PICKET_IDENTITY_ADDRESS")) {
        (Some(a), _) => (a.clone(), true),
        (None, Some(a)) => (a, false),
        (None, None) => return Ok(None),
    };
    if have_files {
        tracing::info!(identity_address = %address, "mesh certificate files given; PICKET_IDENTITY_ADDRESS ignored");
        return Ok(None);
    }
    let roots_pem = match (&args.identity_ca, env_var("PICKET_IDENTITY_CA")) {
        (Some(path), _) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        (None, Some(pem)) => pem.into_bytes(),
        (None, None) if explicit => {
            return Err(
                "--identity-address needs --identity-ca FILE or PICKET_IDENTITY_CA (PEM)".into(),
            )
        }
        (None, None) => {
            tracing::warn!(identity_address = %address, "PICKET_IDENTITY_ADDRESS is set but no PICKET_IDENTITY_CA: mesh mTLS stays off");
            return Ok(None);
        }
    };
    let token = args
        .identity_token
        .clone()
        .or_else(|| env_var("PICKET_IDENTITY_TOKEN").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/secrets/picket/token"));
    let trust_domain = args
        .trust_domain
        .clone()
        .or_else(|| env_var("PICKET_TRUST_DOMAIN"))
        .unwrap_or_else(|| picket_mtls::DEFAULT_TRUST_DOMAIN.to_string());
    let trust_domain = picket_mtls::TrustDomain::new(&trust_domain)
        .map_err(|e| format!("--trust-domain {trust_domain}: {e}"))?;
    picket::identity::CertificateSource::new(picket::identity::IdentitySettings {
        address,
        token,
        roots_pem,
        trust_domain,
    })
    .map(Some)
    .map_err(|e| e.to_string())
}

/// The policy every pack (the first and each reload) must pass.
fn pack_policy(args: &ProxyArgs) -> Result<PackPolicy, String> {
    // A directory stands for every `*.pub` file in it: a mounted ConfigMap of public keys.
    let mut files = Vec::new();
    for path in &args.pack_pubkeys {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut keys: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pub"))
                .collect();
            if keys.is_empty() {
                return Err(format!("{}: no *.pub key files", path.display()));
            }
            keys.sort();
            files.extend(keys);
        } else {
            files.push(path.clone());
        }
    }
    let mut trusted = Vec::new();
    for path in &files {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        trusted.push(PublicKey::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    if args.require_signed_pack && trusted.is_empty() {
        return Err("--require-signed-pack needs at least one --pack-pubkey".into());
    }
    if args.require_signed_pack && args.pack.is_none() {
        return Err("--require-signed-pack needs --pack (the built-in pack is not signed)".into());
    }
    Ok(PackPolicy {
        trusted,
        require_signature: args.require_signed_pack,
        allow_rollback: args.allow_pack_rollback,
    })
}

/// Binds one listener. `Ok(None)`: an IPv6 address in a pod without IPv6 (transparent mode),
/// where the IPv4 listeners serve alone; `Err`: the exit code after saying why.
fn bind_listener(
    addr: SocketAddr,
    transparent: bool,
    what: &str,
) -> Result<Option<tokio::net::TcpListener>, ExitCode> {
    match gateway::bind(addr) {
        Ok(l) => Ok(Some(l)),
        Err(e) if transparent && addr.is_ipv6() && ipv6_unavailable(&e) => {
            tracing::warn!(%addr, error = %e, "IPv6 not available; not listening there{what}");
            Ok(None)
        }
        Err(e) => {
            eprintln!("picket proxy: cannot listen on {addr}{what}: {e}");
            Err(ExitCode::from(1))
        }
    }
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    // EAFNOSUPPORT (97) and EADDRNOTAVAIL (99) on Linux.
    matches!(e.raw_os_error(), Some(97) | Some(99))
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
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
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
