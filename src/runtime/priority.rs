//! Compiling a new plugin version must never take a core away from the
//! worker threads: every thread that compiles it runs at the lowest CPU
//! priority.

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs only on
/// a core nothing else wants, and any other thread that wakes up preempts it
/// at once (nice 19 alone let a compile delay a worker by several ms). Falls
/// back to nice 19 where `SCHED_IDLE` is refused. Only this thread: on Linux
/// a thread id names one thread. Failure leaves it as it is.
pub(crate) fn lower_this_thread() {
    // SAFETY: plain syscalls on the calling thread's own id, with a
    // zero-initialised parameter block as SCHED_IDLE requires.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        let param: libc::sched_param = std::mem::zeroed();
        if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
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
