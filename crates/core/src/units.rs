//! Human-readable quantities for tables and messages, and sizes typed by people.

use crate::{Error, Result};

/// Bytes in binary units: `1536` → `"1.5 KiB"`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses a size typed by a person: `64MiB`, `1.5 GiB`, `512k`, `1G`, `4096` (bytes).
/// Binary units (KiB, MiB, GiB, TiB; K, M, G, T with or without a B) count in 1024s, decimal ones
/// (kB, MB, GB, TB) in 1000s. `what` names the value in the error.
pub fn parse_bytes(what: &str, text: &str) -> Result<u64> {
    let bad = || {
        Error::invalid(
            what,
            format!("{text:?}"),
            "write a positive size such as 64MiB, 512KiB, 1.5GiB or 4096 (bytes)",
        )
    };
    let text_trimmed = text.trim();
    let split = text_trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text_trimmed.len());
    let (number, unit) = text_trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim() {
        "" | "B" | "b" => 1.0,
        "k" | "K" | "KiB" | "KB" | "Ki" => 1024.0,
        "M" | "m" | "MiB" | "Mi" => 1024.0 * 1024.0,
        "G" | "g" | "GiB" | "Gi" => 1024.0 * 1024.0 * 1024.0,
        "T" | "t" | "TiB" | "Ti" => 1024f64.powi(4),
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// Seconds since 1970-01-01 UTC now (0 if the clock is before it).
pub fn unix_now() -> u64 {
    unix_now_f64() as u64
}

/// Seconds since 1970-01-01 UTC now, with their fraction: the clock programs on other nodes
/// (MPI ranks) stamp their lines with.
pub fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A Unix time as `2026-12-07 14:02 UTC`.
pub fn utc(unix_s: u64) -> String {
    let (days, rest) = (unix_s / 86_400, unix_s % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        (rest % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_bytes_reads_units_and_refuses_nonsense() {
        use super::parse_bytes;
        assert_eq!(parse_bytes("m", "64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("m", "64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("m", "1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("m", "4096"), Ok(4096));
        assert_eq!(parse_bytes("m", "2MB"), Ok(2_000_000));
        for bad in [
            "",
            "-1MiB",
            "0",
            "0MiB",
            "12 parsecs",
            "MiB",
            "1..2M",
            "1e9",
        ] {
            let e = parse_bytes("the memory limit", bad).unwrap_err();
            assert!(e.problem().starts_with("the memory limit cannot be"), "{e}");
        }
    }

    #[test]
    fn bytes_picks_binary_units() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1023), "1023 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(24 << 30), "24.0 GiB");
    }

    #[test]
    fn times_read_as_people_write_them() {
        use super::utc;
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_796_652_120), "2026-12-07 14:02 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
