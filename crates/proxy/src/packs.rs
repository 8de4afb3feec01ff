//! Loading packs for the command line: a file (plus optional overlays), or the built-in pack.

use std::path::{Path, PathBuf};

use picket_signatures::engine::CompileError;
use picket_signatures::{Engine, Pack};

/// Why a pack could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read pack {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("pack {0} is not UTF-8 text")]
    NotUtf8(String),
    #[error("{0}")]
    Invalid(#[from] picket_signatures::PackError),
    #[error("{0}")]
    Compile(#[from] CompileError),
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Parses and validates a pack and then its overlays (name, text), in order: the one way a
/// pack is put together, for the command line and for the watcher alike.
fn parse_with_overlays(
    text: &str,
    name: &str,
    overlays: impl IntoIterator<Item = Result<(String, String), LoadError>>,
) -> Result<Pack, LoadError> {
    let mut p = Pack::parse(text, name)?;
    for o in overlays {
        let (oname, otext) = o?;
        p.apply_overlay(&otext, &oname)?;
    }
    Ok(p)
}

/// Parses and validates a pack file and its overlays, without compiling.
pub fn load_pack(pack: Option<&Path>, overlays: &[impl AsRef<Path>]) -> Result<Pack, LoadError> {
    let overlays = overlays.iter().map(|o| {
        let o = o.as_ref();
        Ok((o.display().to_string(), read(o)?))
    });
    match pack {
        Some(path) => parse_with_overlays(&read(path)?, &path.display().to_string(), overlays),
        None => parse_with_overlays(
            picket_signatures::engine::DEFAULT_PACK,
            "<builtin>",
            overlays,
        ),
    }
}

/// Loads and compiles: the engine `picket scan` and the proxy run.
pub fn load_engine(
    pack: Option<&Path>,
    overlays: &[impl AsRef<Path>],
) -> Result<Engine, LoadError> {
    Ok(Engine::compile(load_pack(pack, overlays)?)?)
}

/// A pack on disk as the proxy watches it: the pack file, its detached signature (by default
/// `PACK.sig` beside it) and overlays.
#[derive(Debug, Clone)]
pub struct PackSource {
    pub pack: PathBuf,
    pub signature: Option<PathBuf>,
    pub overlays: Vec<PathBuf>,
}

/// The bytes of one reading of a [`PackSource`]: what is checked is what is compiled.
#[derive(Debug, Clone)]
pub struct PackBytes {
    pub pack: Vec<u8>,
    /// `None` when there is no signature file.
    pub signature: Option<Vec<u8>>,
    pub overlays: Vec<(String, String)>,
}

impl PackSource {
    pub fn signature_path(&self) -> PathBuf {
        self.signature.clone().unwrap_or_else(|| {
            let mut s = self.pack.clone().into_os_string();
            s.push(".sig");
            PathBuf::from(s)
        })
    }

    /// Reads the pack, its signature if present, and the overlays.
    pub fn read(&self) -> Result<PackBytes, LoadError> {
        let read_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| LoadError::Read { path, source }
        };
        let pack = std::fs::read(&self.pack).map_err(read_err(&self.pack))?;
        let sig_path = self.signature_path();
        let signature = match std::fs::read(&sig_path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(read_err(&sig_path)(e)),
        };
        let overlays = self
            .overlays
            .iter()
            .map(|o| Ok((o.display().to_string(), read(o)?)))
            .collect::<Result<_, LoadError>>()?;
        Ok(PackBytes {
            pack,
            signature,
            overlays,
        })
    }

    /// Parses, validates and compiles what [`read`](Self::read) returned.
    pub fn compile(&self, bytes: &PackBytes) -> Result<Engine, LoadError> {
        let name = self.pack.display().to_string();
        let text =
            std::str::from_utf8(&bytes.pack).map_err(|_| LoadError::NotUtf8(name.clone()))?;
        let overlays = bytes.overlays.iter().cloned().map(Ok);
        Ok(Engine::compile(parse_with_overlays(
            text, &name, overlays,
        )?)?)
    }
}
