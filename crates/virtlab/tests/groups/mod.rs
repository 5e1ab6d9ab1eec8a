//! The cgroup folders a virtlab process made for its containers, in every hierarchy this
//! machine offers: what the container and cloud tests check is gone after every exit path.

use std::path::PathBuf;
use virtlab::container::support::Support;

/// Cgroup folders named for `owner` (`virtlab-<owner>-…`), in every hierarchy.
pub fn group_dirs_of(owner: u32) -> Vec<PathBuf> {
    let prefix = format!("virtlab-{owner}-");
    Support::detect()
        .controllers
        .iter()
        .filter_map(|c| c.place.as_ref().ok().map(|(_, dir)| dir.clone()))
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}
