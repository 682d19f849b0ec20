//! Watching plugin files of stages with `watch = true`. A change counts once
//! the file's size and modification time held still for one more look, so
//! a file still being written is not taken; the manager then refuses what
//! is not a complete, valid artifact, and waits for the next change.

use crate::pipeline::StageSpec;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

type Seen = Option<(SystemTime, u64)>;

struct Watched {
    stage: usize,
    path: PathBuf,
    /// What the last deploy attempt saw.
    taken: Seen,
    /// What the previous look saw.
    last: Seen,
}

/// The watched files of a pipeline.
pub struct Watcher {
    files: Vec<Watched>,
}

fn look(path: &PathBuf) -> Seen {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Watcher {
    /// Watches the plugin file of every stage with `watch = true`.
    pub fn new(stages: &[Arc<StageSpec>]) -> Self {
        let files = stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.config.swap.watch)
            .map(|(i, s)| {
                let seen = look(&s.config.plugin);
                Watched {
                    stage: i,
                    path: s.config.plugin.clone(),
                    taken: seen,
                    last: seen,
                }
            })
            .collect();
        Watcher { files }
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The stages whose file changed and then held still since the last
    /// look.
    pub fn changed(&mut self) -> Vec<(usize, PathBuf)> {
        let mut out = Vec::new();
        for f in &mut self.files {
            let now = look(&f.path);
            if now.is_some() && now == f.last && now != f.taken {
                f.taken = now;
                out.push((f.stage, f.path.clone()));
            }
            f.last = now;
        }
        out
    }
}
