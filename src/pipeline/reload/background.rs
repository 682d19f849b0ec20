//! Verifying and compiling a new version off the worker threads: in Linux's
//! `SCHED_IDLE` class first, so the stream keeps the cores; and, when the
//! workers keep every core so busy that the idle-class threads get no CPU at
//! all, a second attempt at normal priority on one core, so that the swap
//! still happens. Whichever attempt ends first gives the result.

use super::priority::{lower_this_thread, lowered_cpu, on_idle_cores, on_one_core};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// When an idle-class compile counts as starved.
#[derive(Clone, Copy, Debug)]
pub(super) struct Starvation {
    /// How often the compile threads' CPU time is read.
    pub window: Duration,
    /// Starved: less than this share of one core in each of
    /// [`Starvation::windows`] windows in a row.
    pub share: f64,
    /// Windows in a row.
    pub windows: u32,
}

/// A compile that got less than 2% of a core in each of three seconds in a
/// row (a compile on an idle core gets close to 100%).
pub(super) const STARVATION: Starvation = Starvation {
    window: Duration::from_secs(1),
    share: 0.02,
    windows: 3,
};

/// The attempt the result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Attempt {
    /// The idle-class one.
    Idle,
    /// The normal-priority one, started because the first starved.
    Normal,
}

/// Runs `f` (verifying and compiling a new version) on a thread of its own
/// in the `SCHED_IDLE` class, so that the worker threads keep the cores
/// while it compiles; if it starves, runs it again at normal priority on
/// one core.
pub(super) async fn in_background<T: Send + 'static>(
    f: impl Fn() -> T + Send + Sync + 'static,
) -> Result<T, oneshot::error::RecvError> {
    watched(f, STARVATION).await.map(|(t, _)| t)
}

/// [`in_background`], saying which attempt gave the result.
pub(super) async fn watched<T: Send + 'static>(
    f: impl Fn() -> T + Send + Sync + 'static,
    starvation: Starvation,
) -> Result<(T, Attempt), oneshot::error::RecvError> {
    let f = Arc::new(f);
    let mut idle = spawn("weir-compile", {
        let f = f.clone();
        move || {
            lower_this_thread();
            on_idle_cores(|| f())
        }
    });
    let mut starved = 0;
    let mut last = lowered_cpu();
    while starved < starvation.windows {
        tokio::select! {
            r = &mut idle => return r.map(|t| (t, Attempt::Idle)),
            () = tokio::time::sleep(starvation.window) => {
                let now = lowered_cpu();
                let got = now.since(&last) / starvation.window.as_secs_f64();
                last = now;
                starved = if got < starvation.share { starved + 1 } else { 0 };
            }
        }
    }
    tracing::warn!(
        "a new version's compile got no CPU in the idle class (the workers keep every core busy); \
         compiling it again at normal priority on one core"
    );
    let normal = spawn("weir-compile-again", move || on_one_core(|| f()));
    tokio::select! {
        r = idle => r.map(|t| (t, Attempt::Idle)),
        r = normal => r.map(|t| (t, Attempt::Normal)),
    }
}

/// Runs `f` on a new thread; its result arrives on the receiver (which
/// fails if the thread cannot start).
fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> oneshot::Receiver<T> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        tracing::warn!("cannot start a compile thread");
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    /// About `ms` milliseconds of the calling thread's CPU.
    fn work(ms: u64) -> u64 {
        let start = cpu_now();
        let mut x = 0u64;
        while cpu_now() - start < Duration::from_millis(ms) {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        x
    }

    fn cpu_now() -> Duration {
        // SAFETY: clock_gettime fills the struct it is given.
        let t = unsafe {
            let mut t: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t);
            t
        };
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    /// The two tests below must not overlap: one keeps every core busy.
    static CORES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    const QUICK: Starvation = Starvation {
        window: Duration::from_millis(200),
        share: 0.02,
        windows: 2,
    };

    #[tokio::test]
    async fn a_compile_on_idle_cores_stays_in_the_idle_class() {
        let _cores = CORES.lock().await;
        let (_, attempt) = watched(|| work(50), QUICK).await.unwrap();
        assert_eq!(attempt, Attempt::Idle);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_compile_that_starves_is_done_again_at_normal_priority() {
        let _cores = CORES.lock().await;
        // Normal-priority threads keep every core busy, as saturated
        // workers would.
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let busy: Vec<_> = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
            })
            .collect();
        let start = Instant::now();
        // 500 ms of CPU: in the idle class, behind busy cores, that would
        // take minutes.
        let result = watched(|| work(500), QUICK).await;
        let took = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        for b in busy {
            b.join().unwrap();
        }
        let (_, attempt) = result.unwrap();
        assert_eq!(attempt, Attempt::Normal, "took {took:?}");
        assert!(took < Duration::from_secs(60), "took {took:?}");
    }
}
