//! Periodic stretches of the seed (one unit repeated many times: a pattern, a repeated line,
//! filler) are passed over at memory speed instead of being rolled byte by byte.
//!
//! A window gives the same answer as the window `p` bytes before it when the bytes of both
//! (with the next block's, for seq = 2) are the same: blocks only ever become known, so what
//! did not match there does not match here. Once a whole period was examined without a
//! result, the rest of the stretch needs no look at all.

/// Periods looked for are multiples of 8 up to this (so any period whose multiple of 8 is at
/// most this: every period up to 2 KiB, and longer ones that are multiples of 8).
pub(super) const MAX_PERIOD: usize = 16 << 10;

/// Bytes rolled between two looks for a period, so that data without one pays almost
/// nothing (a look compares at most `MAX_PERIOD / 8` words).
pub(super) const LOOK_EVERY: usize = 256 << 10;

/// Where the scan may go on from `at` when the bytes from there on repeat with some period:
/// the first position whose window (`ctx` bytes) is not entirely periodic, at most `end`.
/// Positions `[lo, at)` must have been examined without a result (so a period of at most
/// `at - lo` can be used), and `buf` must hold `end + ctx` bytes. Returns `at` when there is
/// no period to use.
pub(super) fn skip(buf: &[u8], lo: usize, at: usize, end: usize, ctx: usize) -> usize {
    let max = MAX_PERIOD.min(at - lo.min(at));
    if at + 8 > buf.len() || at >= end {
        return at;
    }
    let Some(p) = find(buf, at, max, ctx.min(buf.len() - at)) else {
        return at;
    };
    // [at, e) repeats with period p: the windows at [at, e - ctx] are all periodic.
    let e = extent(buf, at, p, end + ctx);
    if e < at + ctx {
        return at;
    }
    let to = (e - ctx + 1).min(end);
    #[cfg(test)]
    SKIPPED.fetch_add(to - at, std::sync::atomic::Ordering::Relaxed);
    to
}

/// Positions passed over so far (tests check that the skip is really taken).
#[cfg(test)]
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[cfg(test)]
pub(super) fn skipped() -> usize {
    SKIPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A period of the bytes at `at`: the least multiple `p` of 8, at most `max`, with
/// `buf[at..at + len] == buf[at - p..at - p + len]`.
fn find(buf: &[u8], at: usize, max: usize, len: usize) -> Option<usize> {
    let word = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().unwrap());
    let needle = word(at);
    (8..=max.min(at))
        .step_by(8)
        .find(|&p| word(at - p) == needle && buf[at..at + len] == buf[at - p..at - p + len])
}

/// The first `x` in `[at, limit)` with `buf[x] != buf[x - p]`, else `limit`.
fn extent(buf: &[u8], at: usize, p: usize, limit: usize) -> usize {
    const STEP: usize = 4096;
    let mut x = at;
    while x < limit {
        let n = STEP.min(limit - x);
        if buf[x..x + n] != buf[x - p..x - p + n] {
            let k = (0..n).find(|&k| buf[x + k] != buf[x + k - p]).unwrap();
            return x + k;
        }
        x += n;
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The skip lands exactly on the first window that is not periodic, never uses a period
    /// longer than what was examined, and checks every byte it relies on.
    #[test]
    fn skip_stops_at_the_first_window_that_is_not_periodic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut skipped = 0;
        for case in 0..300 {
            let unit: Vec<u8> = (0..1 + rand(3000)).map(|_| rand(256) as u8).collect();
            let head = rand(500);
            let reps = rand(40_000);
            let mut buf: Vec<u8> = (0..head).map(|_| rand(256) as u8).collect();
            buf.extend(unit.iter().cycle().take(reps));
            // Sometimes a changed byte in the repeats.
            if rand(2) == 0 && reps > 0 {
                let k = head + rand(reps);
                buf[k] ^= 1 + rand(255) as u8;
            }
            buf.extend((0..rand(3000)).map(|_| rand(256) as u8));
            let ctx = 1 + rand(4096);
            if buf.len() < ctx + 2 {
                continue;
            }
            let end = rand(buf.len() - ctx) + 1;
            let lo = rand(end);
            let at = lo + rand(end - lo);
            let got = skip(&buf, lo, at, end, ctx);
            assert!(got >= at && got <= end, "case {case}");
            // Plainly: the least multiple of 8 that the examined stretch allows and whose
            // first window (and word) repeats, then every periodic window after it.
            let max = MAX_PERIOD.min(at - lo);
            let len = ctx.min(buf.len() - at);
            let p = (8..=max).step_by(8).find(|&p| {
                at + 8 <= buf.len() && buf[at..at + len.max(8)] == buf[at - p..at - p + len.max(8)]
            });
            let want = match p {
                Some(p) if at + 8 <= buf.len() => {
                    // The first byte that differs from the one p before; the windows that
                    // end before it are periodic.
                    let mut e = at;
                    while e < end + ctx && buf[e] == buf[e - p] {
                        e += 1;
                    }
                    if e < at + ctx {
                        at
                    } else {
                        (e - ctx + 1).min(end)
                    }
                }
                _ => at,
            };
            assert_eq!(
                got, want,
                "case {case}: lo {lo} at {at} end {end} ctx {ctx} p {p:?}"
            );
            if got > at {
                // Sound: the period is at most what was examined, and every byte of every
                // skipped window repeats the one p before.
                let p = p.unwrap();
                assert!(p <= at - lo);
                assert!(
                    (at..got - 1 + ctx).all(|x| buf[x] == buf[x - p]),
                    "case {case}"
                );
                skipped += 1;
            }
        }
        assert!(skipped > 50, "only {skipped} cases skipped anything");
    }

    /// A long repeat of a short unit is found and passed over whole.
    #[test]
    fn a_repeated_line_is_passed_over() {
        let line = b"The quick brown fox jumps over the lazy dog; 0123456789.\n";
        let buf: Vec<u8> = line.iter().cycle().take(1 << 20).copied().collect();
        let ctx = 4096;
        let end = buf.len() - ctx;
        // 57 bytes per line: the multiple of 8 found is 456.
        assert_eq!(skip(&buf, 0, 10_000, end, ctx), end);
        // Not enough examined for that period yet.
        assert_eq!(skip(&buf, 10_000 - 400, 10_000, end, ctx), 10_000);
    }
}
