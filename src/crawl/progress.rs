//! Progress: what the crawl is doing, for the person watching it.
//!
//! On a terminal, one indicatif bar per stage (domains, MX hosts, SMTP sessions) with counts,
//! rates and an ETA, and a live tally of verdicts; without a terminal (a batch job's log) or
//! with `--no-progress`, a one-line summary every interval instead.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::verdict::DomainVerdict;

/// Counters every stage bumps; read by the progress display and the final summary.
///
/// Exists so the stages never wait on the display: they only touch atomics.
#[derive(Debug, Default)]
pub struct Tally {
    /// Names read from the inputs (after de-duplication), including skipped parts.
    pub names: AtomicU64,
    /// Names skipped because their part was already written (resume).
    pub resumed: AtomicU64,
    /// Domains skipped by the opt-out list.
    pub opted_out: AtomicU64,
    /// Domains finished this run.
    pub domains: AtomicU64,
    /// MX hosts resolved this run.
    pub hosts: AtomicU64,
    /// SMTP sessions run this run.
    pub probes: AtomicU64,
    /// SMTP sessions open now.
    pub sessions_active: AtomicU64,
    /// Parts written this run.
    pub parts: AtomicU64,
    /// Names in the inputs as counted by the spill (repeats across sources included; grows
    /// while the inputs are read).
    pub estimate: AtomicU64,
    verdicts: [AtomicU64; 32],
}

impl Tally {
    /// Counts one domain verdict.
    pub fn verdict(&self, v: DomainVerdict) {
        if let Some(i) = DomainVerdict::ALL.iter().position(|x| *x == v) {
            self.verdicts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.domains.fetch_add(1, Ordering::Relaxed);
    }

    /// The verdict counts so far, most frequent first.
    pub fn verdicts(&self) -> Vec<(DomainVerdict, u64)> {
        let mut v: Vec<(DomainVerdict, u64)> = DomainVerdict::ALL
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, self.verdicts[i].load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    fn verdict_line(&self) -> String {
        self.verdicts()
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect::<Vec<_>>()
            .join(" · ")
    }

    /// One line for logs.
    pub fn summary_line(&self, elapsed: Duration) -> String {
        let done = self.domains.load(Ordering::Relaxed);
        let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
        let est = self.estimate.load(Ordering::Relaxed);
        let of = if est > 0 {
            format!("/~{est}")
        } else {
            String::new()
        };
        format!(
            "[{:>6.0}s] domains {done}{of} ({rate:.0}/s) · hosts {} · SMTP sessions {} ({} open) · parts {} · {}",
            elapsed.as_secs_f64(),
            self.hosts.load(Ordering::Relaxed),
            self.probes.load(Ordering::Relaxed),
            self.sessions_active.load(Ordering::Relaxed),
            self.parts.load(Ordering::Relaxed),
            self.verdict_line()
        )
    }
}

/// The running display; dropped (or [`Progress::finish`]ed) when the crawl ends.
pub struct Progress {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Starts the display: bars when stderr is a terminal and `bars` is set, otherwise a
    /// summary line every `interval`.
    pub fn start(tally: Arc<Tally>, bars: bool, interval: Duration) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let started = Instant::now();
        if bars && std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let style = |t: &str| {
                ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar())
            };
            let domains = multi.add(ProgressBar::new(0));
            domains.set_style(style("domains {bar:30} {pos}/{len} {per_sec} eta {eta}"));
            let hosts = multi.add(ProgressBar::new_spinner());
            hosts.set_style(style("MX hosts {pos} resolved {per_sec}"));
            let probes = multi.add(ProgressBar::new_spinner());
            probes.set_style(style("SMTP sessions {pos} {per_sec} {msg}"));
            let verdicts = multi.add(ProgressBar::new_spinner());
            verdicts.set_style(style("{msg}"));
            let (t, s) = (tally.clone(), stop.clone());
            let thread = std::thread::spawn(move || loop {
                // One last update after the stop, so the bars end on the final counts.
                let stopping = s.load(Ordering::Relaxed);
                let est = t.estimate.load(Ordering::Relaxed);
                let done = t.domains.load(Ordering::Relaxed);
                domains.set_length(est.max(done));
                domains.set_position(done);
                hosts.set_position(t.hosts.load(Ordering::Relaxed));
                probes.set_position(t.probes.load(Ordering::Relaxed));
                probes.set_message(format!(
                    "({} open)",
                    t.sessions_active.load(Ordering::Relaxed)
                ));
                verdicts.set_message(t.verdict_line());
                if stopping {
                    for b in [&domains, &hosts, &probes, &verdicts] {
                        b.abandon();
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            });
            return Progress {
                stop,
                thread: Some(thread),
                multi: Some(multi),
            };
        }
        let (t, s) = (tally, stop.clone());
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now() + interval;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if Instant::now() >= next {
                    eprintln!("{}", t.summary_line(started.elapsed()));
                    next += interval;
                }
            }
        });
        Progress {
            stop,
            thread: Some(thread),
            multi: None,
        }
    }

    /// Prints a line above the bars (warnings), or plainly without bars.
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Stops the display.
    pub fn finish(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_verdicts() {
        let t = Tally::default();
        t.verdict(DomainVerdict::Insecure);
        t.verdict(DomainVerdict::Insecure);
        t.verdict(DomainVerdict::DaneValid);
        assert_eq!(
            t.verdicts(),
            vec![(DomainVerdict::Insecure, 2), (DomainVerdict::DaneValid, 1)]
        );
        let line = t.summary_line(Duration::from_secs(1));
        assert!(line.contains("domains 3 (3/s)"), "{line}");
        assert!(line.contains("insecure 2 · dane_valid 1"), "{line}");
    }
}
