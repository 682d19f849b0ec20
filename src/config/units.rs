//! Values with units: sizes (`"64MiB"`) and durations (`"200ms"`).

use std::time::Duration;

/// Splits `"64MiB"` into `64` and `"MiB"`; `_` may group digits.
fn number_and_unit<'a>(s: &'a str, what: &str) -> Result<(u64, &'a str), String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a {what}"))?;
    Ok((num, unit.trim()))
}

/// Parses a size: a bare integer is bytes; suffixes `B`, `KB`, `MB`, `GB`
/// (powers of 1000) and `KiB`, `MiB`, `GiB` (powers of 1024).
///
/// # Errors
/// A message saying what the accepted forms are.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, unit) = number_and_unit(s, "size")?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    num.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration: an integer followed by `us`, `ms`, `s`, `m` or `h`.
///
/// # Errors
/// A message saying what the accepted forms are.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = number_and_unit(s, "duration")?;
    Ok(match unit {
        "us" => Duration::from_micros(num),
        "ms" => Duration::from_millis(num),
        "s" => Duration::from_secs(num),
        "m" => Duration::from_secs(num.saturating_mul(60)),
        "h" => Duration::from_secs(num.saturating_mul(3600)),
        "" => return Err(format!("{s:?} has no unit (us, ms, s, m or h)")),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use us, ms, s, m or h)"
            ))
        }
    })
}

/// Parses a duration that must be more than zero (a timeout, an interval).
///
/// # Errors
/// As [`parse_duration`], and when the duration is zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?} is zero, which leaves no time at all"));
    }
    Ok(d)
}

/// Parses a size that must be more than zero.
///
/// # Errors
/// As [`parse_size`], and when the size is zero.
pub fn parse_positive_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n == 0 {
        return Err(format!("{s:?} is zero, which leaves no room at all"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1_024 KiB"), Ok(1 << 20));
        assert!(parse_size("64 furlongs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("200").is_err());
        assert!(parse_duration("2 fortnights").is_err());
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0ms").is_err());
        assert!(parse_positive_size("0MiB").is_err());
    }
}
