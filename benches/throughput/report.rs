//! What a run of the broker throughput bench measures (rate, CPU, memory)
//! and the table it prints.

use crate::brokers::median;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Events per run (`WEIR_BENCH_EVENTS`, default 600,000: single runs of
/// 200,000 moved by ±20%).
pub(crate) fn events() -> usize {
    std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600_000)
}

/// Resets the process's peak resident set size (Linux: `clear_refs` 5).
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set size since the last reset, in MiB.
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// One run of one variant.
pub(crate) struct Run {
    /// Events per second, from the first event consumed to the last one
    /// confirmed.
    pub(crate) rate: f64,
    /// Events per second over the last two thirds of the events confirmed:
    /// the rate once start-up (fresh pages, fetch queues filling) is over.
    pub(crate) steady: f64,
    /// The peak resident set size while it ran (MiB).
    pub(crate) rss: f64,
    /// The bench process's CPU time per event (µs; the broker not included).
    pub(crate) cpu: f64,
    /// The broker process's CPU time per event (µs).
    pub(crate) broker: f64,
}

/// The clock of one run, started at the first event consumed.
pub(crate) struct Clock {
    start: Instant,
    cpu: f64,
    broker: f64,
    /// When a third of the events had been confirmed.
    third: Option<Instant>,
}

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock {
            start: Instant::now(),
            cpu: cpu_us(),
            broker: broker_cpu_us(),
            third: None,
        }
    }

    /// `n` events are confirmed so far.
    pub(crate) fn confirmed(&mut self, n: usize) {
        if self.third.is_none() && n >= events() / 3 {
            self.third = Some(Instant::now());
        }
    }

    /// The run, all events confirmed now.
    pub(crate) fn finish(&self) -> Run {
        let n = events() as f64;
        let third = self.third.unwrap_or(self.start);
        Run {
            rate: n / self.start.elapsed().as_secs_f64(),
            steady: (events() - events() / 3) as f64 / third.elapsed().as_secs_f64(),
            rss: peak_rss_mib(),
            cpu: (cpu_us() - self.cpu) / n,
            broker: (broker_cpu_us() - self.broker) / n,
        }
    }
}

/// The broker process of the part running now.
pub(crate) static BROKER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The broker process's CPU time so far (user + system), in µs.
pub(crate) fn broker_cpu_us() -> f64 {
    let pid = BROKER.load(Ordering::Relaxed);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields 14 and 15 (utime, stime), counted after the command's ")".
    let after = stat.rsplit_once(") ").map_or("", |(_, a)| a);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks * 1e6 / hz
}

/// The process's CPU time so far (user + system), in µs.
pub(crate) fn cpu_us() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// A variant and its runs, one per round.
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) runs: Vec<Run>,
}

/// How many rounds to run (`WEIR_BENCH_ROUNDS`), by default one per row,
/// so that every row runs once in every place of the order.
pub(crate) fn rounds(rows: usize) -> usize {
    std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(rows)
        .max(1)
}

/// Medians over the rounds; each run is compared with each baseline's run
/// of its round (the first `natives` rows are the baselines). Peak RSS is
/// the first round's: memory a variant leaves behind raises the later ones'.
pub(crate) fn table(title: &str, rows: &[Row], natives: usize) {
    let rounds = rows[0].runs.len();
    println!(
        "\n### {title}: {} events of 256 B, 3 partitions/subjects, {rounds} rounds\n",
        events()
    );
    let vs: Vec<String> = (1..=natives)
        .map(|n| format!("vs. baseline {n} (median)"))
        .collect();
    println!(
        "| variant | events/s (median) | {} | vs. baseline 1, each round | last two thirds: vs. baseline 1 (median), each round | CPU µs/event (median) | broker CPU µs/event (median) | peak RSS of the process, round 1 |",
        vs.join(" | ")
    );
    println!("|---|---|{}---|---|---|---|---|", "---|".repeat(natives));
    let ratios_of = |row: &Row, n: usize, rate: fn(&Run) -> f64| -> Vec<f64> {
        row.runs
            .iter()
            .zip(&rows[n].runs)
            .map(|(r, b)| 100.0 * rate(r) / rate(b))
            .collect()
    };
    let ratios = |row: &Row, n: usize| ratios_of(row, n, |r| r.rate);
    for (i, row) in rows.iter().enumerate() {
        let label = if i < natives {
            format!("baseline {}: {}", i + 1, row.label)
        } else {
            row.label.clone()
        };
        let medians: Vec<String> = (0..natives)
            .map(|n| format!("{:.0}%", median(ratios(row, n))))
            .collect();
        let percents = |v: Vec<f64>| -> String {
            let each: Vec<String> = v.iter().map(|r| format!("{r:.0}")).collect();
            each.join(" / ")
        };
        let steady = ratios_of(row, 0, |r| r.steady);
        println!(
            "| {label} | {:.0} k | {} | {} | {:.0}%: {} | {:.2} | {:.2} | {:.0} MiB |",
            median(row.runs.iter().map(|r| r.rate).collect()) / 1e3,
            medians.join(" | "),
            percents(ratios(row, 0)),
            median(steady.clone()),
            percents(steady),
            median(row.runs.iter().map(|r| r.cpu).collect()),
            median(row.runs.iter().map(|r| r.broker).collect()),
            row.runs[0].rss,
        );
    }
}
