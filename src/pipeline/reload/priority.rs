//! Compiling a new plugin version must never take a core away from the
//! worker threads: every thread that compiles it runs at the lowest CPU
//! priority. Those threads are registered, so that a compile that gets no
//! CPU at all (the workers keep every core busy) can be noticed, and done
//! again at normal priority on one core ([`on_one_core`]).

use std::collections::HashMap;
use std::sync::Mutex;

/// The threads [`lower_this_thread`] lowered that still run.
static LOWERED: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

/// A lowered thread's entry in [`LOWERED`], removed when the thread ends
/// (before its id can be given to another thread).
struct Registered(libc::pid_t);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut lowered = LOWERED.lock().unwrap_or_else(|p| p.into_inner());
        lowered.retain(|&tid| tid != self.0);
    }
}

thread_local! {
    static REGISTERED: std::cell::OnceCell<Registered> = const { std::cell::OnceCell::new() };
}

fn this_thread_id() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs only on
/// a core nothing else wants, and any other thread that wakes up preempts it
/// at once (nice 19 alone let a compile delay a worker by several ms). Falls
/// back to nice 19 where `SCHED_IDLE` is refused. Only this thread: on Linux
/// a thread id names one thread. Failure leaves it as it is.
pub(crate) fn lower_this_thread() {
    // SAFETY: plain syscalls on the calling thread's own id, with a
    // zero-initialised parameter block as SCHED_IDLE requires.
    let tid = this_thread_id();
    unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
    }
    REGISTERED.with(|r| {
        // Once per thread (a refused second entry would unregister on drop).
        if r.get().is_none() {
            LOWERED.lock().unwrap_or_else(|p| p.into_inner()).push(tid);
            let _ = r.set(Registered(tid));
        }
    });
}

/// CPU time used so far by each lowered thread that still runs, in clock
/// ticks (user + system, from `/proc/self/task/<tid>/stat`).
pub(crate) fn lowered_cpu() -> LoweredCpu {
    let lowered = LOWERED.lock().unwrap_or_else(|p| p.into_inner());
    LoweredCpu(
        lowered
            .iter()
            .filter_map(|&tid| Some((tid, thread_ticks(tid)?)))
            .collect(),
    )
}

/// A reading of [`lowered_cpu`].
pub(crate) struct LoweredCpu(HashMap<libc::pid_t, u64>);

impl LoweredCpu {
    /// Seconds of CPU the lowered threads got since `earlier` (threads that
    /// ended in between are not counted).
    pub(crate) fn since(&self, earlier: &LoweredCpu) -> f64 {
        let ticks: u64 = self
            .0
            .iter()
            .map(|(tid, &t)| t.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0)))
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
        ticks as f64 / hz as f64
    }
}

/// Fields 14 and 15 of a thread's `stat`, counted after the command's ")".
fn thread_ticks(tid: libc::pid_t) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(") ")?;
    let mut fields = after.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Runs `f` at normal priority on a pool of one thread: a compile inside
/// `f` then takes one core's fair share and no more. For a compile that
/// starved in the idle class.
pub(crate) fn on_one_core<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "weir-compile-normal".into())
            .build()
            .map_err(|e| tracing::warn!("cannot start a normal-priority compile thread ({e})"))
            .ok()
    });
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Runs `f` with rayon's parallel iterators on a pool whose threads are all
/// lowered like [`lower_this_thread`]. wasmtime compiles a module's
/// functions in parallel on the current rayon pool, so a compile inside `f`
/// uses idle cores only. Compiles at start-up keep rayon's global pool, at
/// normal priority: nothing runs yet that they could delay.
pub(crate) fn on_idle_cores<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("weir-compile-{i}"))
            .start_handler(|_| lower_this_thread())
            .build()
            .map_err(|e| {
                tracing::warn!("cannot start the compile pool ({e}); compiling on one thread")
            })
            .ok()
    });
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_of_lowered_threads_is_counted() {
        let before = lowered_cpu();
        let got = std::thread::spawn(move || {
            lower_this_thread();
            // Spin until this thread had two clock ticks of CPU (it may
            // wait for idle CPU first: other tests share the cores).
            let tid = this_thread_id();
            let mut x = 0u64;
            while thread_ticks(tid).unwrap_or(0) < 2 {
                for _ in 0..100_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
            lowered_cpu().since(&before)
        })
        .join()
        .unwrap();
        assert!(got > 0.0, "the lowered thread's CPU was not counted: {got}");
    }

    #[test]
    fn a_lowered_thread_is_forgotten_when_it_ends() {
        let tid = std::thread::spawn(|| {
            lower_this_thread();
            lower_this_thread();
            let tid = this_thread_id();
            let entries = LOWERED
                .lock()
                .unwrap()
                .iter()
                .filter(|&&t| t == tid)
                .count();
            assert_eq!(entries, 1, "registered once");
            tid
        })
        .join()
        .unwrap();
        assert!(!LOWERED.lock().unwrap().contains(&tid));
    }

    #[test]
    fn a_lowered_thread_runs_in_the_idle_class() {
        let sched = std::thread::spawn(|| {
            lower_this_thread();
            std::fs::read_to_string("/proc/thread-self/sched").unwrap()
        })
        .join()
        .unwrap();
        let policy = sched
            .lines()
            .find(|l| l.starts_with("policy"))
            .and_then(|l| l.rsplit(':').next()?.trim().parse::<i32>().ok());
        assert_eq!(policy, Some(libc::SCHED_IDLE), "{sched}");
    }
}
