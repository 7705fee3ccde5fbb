//! A progress bar for terminals, used by the `zsync` binary.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::client::Progress;

/// Human-readable byte count (`1.5 MB`).
pub fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < U.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[u])
    }
}

/// Draws `[#####-----]  45.0%  reused 12.3 MB  downloaded 4.5 MB  3.2 MB/s  ETA 0:12` on
/// stderr, at most 10 times a second, and prints messages on their own lines.
pub struct Bar {
    start: Instant,
    last: Option<Instant>,
    drawn: bool,
    first_downloaded: Option<(Instant, u64)>,
}

impl Default for Bar {
    fn default() -> Self {
        Bar {
            start: Instant::now(),
            last: None,
            drawn: false,
            first_downloaded: None,
        }
    }
}

impl Bar {
    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.drawn = false;
        }
    }
    /// Remove the bar from the screen.
    pub fn finish(&mut self) {
        self.clear();
        let _ = std::io::stderr().flush();
    }
}

impl Progress for Bar {
    fn message(&mut self, msg: &str) {
        self.clear();
        let _ = writeln!(std::io::stderr(), "{msg}");
    }

    fn update(&mut self, known: u64, downloaded: u64, total: u64) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now - t < Duration::from_millis(100))
            && known < total
        {
            return;
        }
        self.last = Some(now);
        let pct = if total == 0 {
            100.0
        } else {
            known as f64 * 100.0 / total as f64
        };
        let filled = ((pct / 5.0) as usize).min(20);
        let mut line = format!(
            "\r[{}{}] {pct:5.1}%  reused {}  downloaded {}",
            "#".repeat(filled),
            "-".repeat(20 - filled),
            human(known.saturating_sub(downloaded)),
            human(downloaded)
        );
        if downloaded > 0 {
            let (t0, d0) = *self.first_downloaded.get_or_insert((now, downloaded));
            let secs = (now - t0).as_secs_f64();
            if secs > 0.5 {
                let rate = (downloaded - d0) as f64 / secs;
                line.push_str(&format!("  {}/s", human(rate as u64)));
                if rate > 0.0 && known < total {
                    let eta = ((total - known) as f64 / rate) as u64;
                    line.push_str(&format!("  ETA {}:{:02}", eta / 60, eta % 60));
                }
            }
        }
        let _ = self.start;
        let _ = write!(std::io::stderr(), "{line}\x1b[K");
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }
}
