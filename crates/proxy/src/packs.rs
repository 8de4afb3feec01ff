//! Loading packs for the command line: a file (plus optional overlays), or the built-in pack.

use std::path::Path;

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

/// Parses and validates a pack file and its overlays, without compiling.
pub fn load_pack(pack: Option<&Path>, overlays: &[impl AsRef<Path>]) -> Result<Pack, LoadError> {
    let mut p = match pack {
        Some(path) => Pack::parse(&read(path)?, &path.display().to_string())?,
        None => Pack::parse(picket_signatures::engine::DEFAULT_PACK, "<builtin>")?,
    };
    for o in overlays {
        let o = o.as_ref();
        p.apply_overlay(&read(o)?, &o.display().to_string())?;
    }
    Ok(p)
}

/// Loads and compiles: the engine `picket scan` and the proxy run.
pub fn load_engine(
    pack: Option<&Path>,
    overlays: &[impl AsRef<Path>],
) -> Result<Engine, LoadError> {
    Ok(Engine::compile(load_pack(pack, overlays)?)?)
}
