//! Starting a new version's instances ahead of a swap, off the worker
//! threads. The first instance tells whether the version starts at all: one
//! whose `init` fails never reaches the worker threads. When it took long to
//! start (a Python or JavaScript component), as many more are started as the
//! threads hold, so that at the swap a thread only moves the state; a fast
//! one (Rust: well under a millisecond) is cheaper started by each thread
//! than competing with the threads for a core here.

use crate::pipeline::{Spares, StageSpec};
use crate::runtime::{CallError, Runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many instances of a new version are started ahead of a
/// swap; threads start any more they need themselves.
const MAX_SPARES: u64 = 64;

/// A version whose first instance took this long to start has all its
/// instances started ahead of a swap.
const SLOW_START: Duration = Duration::from_millis(1);

/// Starts `spec`'s instances for a swap of `pipeline`'s stage.
///
/// # Errors
/// Why the first instance did not start.
pub(super) async fn start_ahead(
    runtime: &Arc<Runtime>,
    pipeline: &str,
    spec: &Arc<StageSpec>,
) -> Result<Spares, String> {
    let wanted = crate::metrics::stage_tally(pipeline, &spec.config.name)
        .slots
        .load(std::sync::atomic::Ordering::Relaxed)
        .clamp(1, MAX_SPARES);
    let (runtime, s) = (runtime.clone(), spec.clone());
    // At normal priority: instantiating is short, and an idle-class thread
    // would wait for a free core as long as the workers are busy.
    let started = tokio::task::spawn_blocking(move || {
        let began = Instant::now();
        let first = s.instantiate(&runtime)?;
        let slow = began.elapsed() >= SLOW_START;
        let mut spares = vec![first];
        while slow && (spares.len() as u64) < wanted {
            match s.instantiate(&runtime) {
                Ok(inst) => spares.push(inst),
                // The threads start what is missing (and report why).
                Err(_) => break,
            }
        }
        Ok::<_, CallError>(spares)
    })
    .await
    .map_err(|e| e.to_string())?;
    started
        .map(Spares::new)
        .map_err(|e| format!("the new version does not start: {e}"))
}
