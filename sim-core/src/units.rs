//! Durations as people write them ("250ms", "1.5s"), parsed into integer nanoseconds and
//! printed back exactly, and probabilities kept in parts per million printed as exact
//! decimals. Scenario files, fault specs, protocol parameters and every display share
//! these functions. This module knows nothing of any of them.

/// Parses "1.5s", "250ms", "10us", "100ns", "2m", with an optional leading '-', into
/// integer nanoseconds. At most nine decimals; no exponent.
pub fn parse_duration_ns(text: &str) -> Result<i128, String> {
    let expected =
        "expected a duration such as \"250ms\", \"1.5s\" or \"10us\" (units: ns, us, ms, s, m)";
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let split = body
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let unit_ns: i128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => return Err(format!("`{text}`: {expected}")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.len() > 9 || fraction.contains('.') {
        return Err(format!("`{text}`: {expected}"));
    }
    let whole: i128 = whole.parse().map_err(|_| format!("`{text}`: {expected}"))?;
    if whole > 1_000_000_000_000 {
        return Err(format!("`{text}`: too large"));
    }
    let mut fraction_digits: i128 = 0;
    for digit in fraction.chars() {
        let digit = digit
            .to_digit(10)
            .ok_or_else(|| format!("`{text}`: {expected}"))? as i128;
        fraction_digits = fraction_digits * 10 + digit;
    }
    let scale = 10i128.pow(fraction.len() as u32);
    if fraction_digits * unit_ns % scale != 0 {
        return Err(format!("`{text}`: finer than one nanosecond"));
    }
    let total = whole * unit_ns + fraction_digits * unit_ns / scale;
    Ok(if negative { -total } else { total })
}

/// Parts per million as the shortest exact decimal: `0.1`, `0.000001`, `0`, `1`; what
/// `probability * 1e6` rounded reads back.
pub fn format_ppm(ppm: u32) -> String {
    debug_assert!(ppm <= 1_000_000);
    match ppm {
        0 => "0".to_string(),
        1_000_000.. => "1".to_string(),
        _ => format!("0.{}", format!("{ppm:06}").trim_end_matches('0')),
    }
}

/// The shortest exact rendering: "1.5s", "250ms", "3ns".
pub fn format_duration(ns: u64) -> String {
    for (unit, size) in [("s", 1_000_000_000u64), ("ms", 1_000_000), ("us", 1_000)] {
        if ns >= size {
            let whole = ns / size;
            let rest = ns % size;
            if rest == 0 {
                return format!("{whole}{unit}");
            }
            let digits = size.ilog10() as usize;
            let fraction = format!("{rest:0digits$}");
            return format!("{whole}.{}{unit}", fraction.trim_end_matches('0'));
        }
    }
    format!("{ns}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_exactly() {
        assert_eq!(parse_duration_ns("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration_ns("10us"), Ok(10_000));
        assert_eq!(parse_duration_ns("-50ms"), Ok(-50_000_000));
        assert_eq!(parse_duration_ns("0.000000001s"), Ok(1));
        assert_eq!(parse_duration_ns("2m"), Ok(120_000_000_000));
    }

    #[test]
    fn bad_durations_say_what_is_expected() {
        for bad in [
            "",
            "5",
            "ms",
            "1.2.3s",
            "5 ms",
            "5h",
            "1e3ms",
            "0.0000000001s",
        ] {
            let error = parse_duration_ns(bad).unwrap_err();
            assert!(error.contains("expected a duration"), "{bad}: {error}");
        }
        assert!(parse_duration_ns("1.5ns")
            .unwrap_err()
            .contains("finer than one nanosecond"));
    }

    #[test]
    fn durations_format_back_to_what_parses() {
        for ns in [0u64, 3, 1_000, 1_500_000_000, 250_000_000, 1_234_567] {
            assert_eq!(
                parse_duration_ns(&format_duration(ns)),
                Ok(ns as i128),
                "{ns}"
            );
        }
        assert_eq!(format_duration(1_500_000_000), "1.5s");
    }
}
