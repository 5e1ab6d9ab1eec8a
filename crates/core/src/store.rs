//! Where measured results are kept between runs, and how they are written: whole or not at all.
//!
//! Results live in `$VIRTLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/virtlab`, else `~/.cache/virtlab`.
//! Later chapters read what earlier ones measured (chapter 0's CPU peak, for one).

use crate::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The folder for saved measurements; it is created on first write.
pub fn cache_dir() -> Result<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = from_env("VIRTLAB_CACHE_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return Ok(dir.join("virtlab"));
    }
    from_env("HOME")
        .map(|home| home.join(".cache").join("virtlab"))
        .ok_or_else(|| {
            Error::new(
                "no folder to keep measurements in (HOME is not set)",
                "set VIRTLAB_CACHE_DIR to a writable folder",
            )
        })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half a
/// file (the display layer's writer, which figures use too).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(virtlab_display::write_atomically(path, bytes)?)
}

/// Saves `value` as pretty JSON under the cache folder, returning the file's path.
pub fn save<T: Serialize>(name: &str, value: &T) -> Result<PathBuf> {
    let path = cache_dir()?.join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(value).map_err(|e| {
        Error::new(
            format!("could not encode {name} as JSON: {e}"),
            "report this as a bug in virtlab",
        )
    })?;
    write_atomically(&path, &json)?;
    Ok(path)
}

/// Loads what [`save`] wrote; `Ok(None)` when nothing was saved yet.
pub fn load<T: DeserializeOwned>(name: &str) -> Result<Option<T>> {
    let path = cache_dir()?.join(format!("{name}.json"));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::new(
            format!("the saved file {} is not readable ({e})", path.display()),
            "delete it; the next run measures again",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtlab_testkit::temp_cache;

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = temp_cache();
        let path = save("round-trip", &vec![1, 2, 3]).unwrap();
        assert_eq!(load::<Vec<i32>>("round-trip").unwrap(), Some(vec![1, 2, 3]));
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        assert!(path.starts_with(&dir));
    }
    #[test]
    fn missing_is_none_and_corrupt_is_a_clear_error() {
        let dir = temp_cache();
        assert_eq!(load::<Vec<i32>>("never-saved").unwrap(), None);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("corrupt.json"), b"{not json").unwrap();
        let err = load::<Vec<i32>>("corrupt").unwrap_err();
        assert!(err.problem().contains("not readable"));
        assert!(err.fix().contains("delete it"));
    }
    #[test]
    fn writing_under_a_file_fails_cleanly() {
        let dir = temp_cache();
        std::fs::create_dir_all(&dir).unwrap();
        let blocker = dir.join("blocker");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomically(&blocker.join("inner.json"), b"{}").unwrap_err();
        assert!(err.problem().contains("creating"), "{err}");
    }
}
