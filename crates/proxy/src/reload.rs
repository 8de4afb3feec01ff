//! The pack in force, and how it is replaced while picket runs.
//!
//! [`PackStore`] holds the compiled engine behind an [`ArcSwap`]: a request takes the current
//! engine once (an atomic load and a reference count) and keeps it until its verdict, so a
//! reload never changes the rules under a request being inspected; the next request takes the
//! new engine. An HTTP/1 connection takes it again between requests, an HTTP/2 connection per
//! stream. Nothing is dropped or restarted.
//!
//! [`PackWatcher`] decides when to reload. It polls: every interval it compares a fingerprint
//! (device, inode, size, modification time, following symlinks) of the pack, its signature and
//! its overlays with the last one, and reloads when it changed, or at once on SIGHUP. Polling
//! is deliberate: a Kubernetes ConfigMap volume is updated by building a new directory and
//! swapping the `..data` symlink, which a watch on the file itself never reports and a watch on
//! the directory reports as a burst of events to be debounced anyway; a `stat` per file per
//! second costs nothing beside the traffic. The fingerprint is taken *before* the bytes are
//! read, so a swap in the middle of a read changes the fingerprint and is read again at the
//! next poll.
//!
//! A reload reads the bytes once, checks them against the [`PackPolicy`] (signature from a
//! trusted key, no rollback), parses, validates and compiles them off the async workers; any
//! failure leaves the last good pack in force, and is logged and counted
//! (`picket_pack_reloads_total{result}`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use picket_signatures::{Engine, PackPolicy, PolicyError};

use crate::metrics::Metrics;
use crate::packs::{LoadError, PackSource};

/// A compiled pack and when it took effect.
pub struct LoadedPack {
    pub engine: Arc<Engine>,
    pub loaded_at: SystemTime,
}

/// The pack in force, swappable at run time.
pub struct PackStore {
    current: ArcSwap<LoadedPack>,
    generation: AtomicU64,
}

impl PackStore {
    pub fn new(engine: Engine) -> PackStore {
        PackStore {
            current: ArcSwap::from_pointee(LoadedPack {
                engine: Arc::new(engine),
                loaded_at: SystemTime::now(),
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// The pack in force now.
    pub fn current(&self) -> Arc<LoadedPack> {
        self.current.load_full()
    }

    /// The engine in force now; a request keeps the one it took until its verdict.
    pub fn engine(&self) -> Arc<Engine> {
        self.current.load().engine.clone()
    }

    /// Bumped by every successful reload: lets a connection see cheaply whether to take the
    /// engine again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn replace(&self, engine: Engine) {
        self.current.store(Arc::new(LoadedPack {
            engine: Arc::new(engine),
            loaded_at: SystemTime::now(),
        }));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Why a reload did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("pack refused: {0}")]
    Refused(#[from] PolicyError),
    #[error("pack compilation task failed: {0}")]
    Task(String),
}

impl ReloadError {
    fn result_label(&self) -> &'static str {
        match self {
            ReloadError::Load(LoadError::Read { .. }) => "unreadable",
            ReloadError::Load(_) => "invalid",
            ReloadError::Refused(_) => "refused",
            ReloadError::Task(_) => "error",
        }
    }
}

/// Identity of a file's current content, as cheaply as `stat` tells it (following symlinks,
/// so a kubelet `..data` swap of a mounted ConfigMap or Secret is a change). Shared by the
/// pack watcher and the mesh certificate watcher ([`crate::mesh::watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    /// `None` when the file cannot be read (missing, say): its appearance is a change too.
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}

/// Watches a pack file (with its signature and overlays) and reloads the store.
pub struct PackWatcher {
    pub source: PackSource,
    pub store: Arc<PackStore>,
    pub metrics: Arc<Metrics>,
    pub policy: Arc<PackPolicy>,
    last: Vec<Option<FileStamp>>,
}

impl PackWatcher {
    pub fn new(
        source: PackSource,
        store: Arc<PackStore>,
        metrics: Arc<Metrics>,
        policy: Arc<PackPolicy>,
    ) -> PackWatcher {
        let mut w = PackWatcher {
            source,
            store,
            metrics,
            policy,
            last: Vec::new(),
        };
        w.last = w.stamps();
        w
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.source.pack.clone(), self.source.signature_path()];
        files.extend(self.source.overlays.iter().cloned());
        files
    }

    fn stamps(&self) -> Vec<Option<FileStamp>> {
        self.files().iter().map(|f| FileStamp::of(f)).collect()
    }

    /// Polls every `interval` and reloads on change or SIGHUP, until `shutdown`.
    pub async fn run(
        mut self,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP handler not installed; pack reload by polling only");
                None
            }
        };
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => true,
                _ = shutdown.changed() => return,
            };
            let now = self.stamps();
            if !forced && now == self.last {
                continue;
            }
            self.last = now;
            // Reload outcomes are logged and counted inside; nothing more to do here.
            let _ = self.reload(if forced { "sighup" } else { "change" }).await;
        }
    }

    /// Reads, checks, compiles and swaps in the pack; on any failure the pack in force stays.
    pub async fn reload(&self, trigger: &'static str) -> Result<(), ReloadError> {
        let source = self.source.clone();
        let policy = self.policy.clone();
        let current = self.store.current();
        let current_version = current.engine.info().version.clone();
        let compiled = tokio::task::spawn_blocking(move || -> Result<_, ReloadError> {
            let bytes = source.read()?;
            let accepted = policy.check(
                &bytes.pack,
                bytes.signature.as_deref(),
                Some(&current_version),
            )?;
            Ok((source.compile(&bytes)?, accepted.signer))
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))
        .and_then(|r| r);
        match compiled {
            Ok((engine, signer)) => {
                let old = current.engine.info();
                let new = engine.info().clone();
                self.metrics.set_pack(&new);
                self.store.replace(engine);
                self.metrics.pack_reload("ok");
                tracing::info!(
                    trigger,
                    pack = %new.name,
                    version = %new.version,
                    previous_version = %old.version,
                    signatures = new.signatures,
                    signed_by = %signer.map_or_else(|| "unsigned".to_string(), |k| k.to_string()),
                    "signature pack reloaded"
                );
                Ok(())
            }
            Err(e) => {
                self.metrics.pack_reload(e.result_label());
                tracing::error!(trigger, error = %e, version_in_force = %current.engine.info().version, "signature pack not reloaded; the pack in force stays");
                Err(e)
            }
        }
    }
}
