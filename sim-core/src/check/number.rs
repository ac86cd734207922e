//! Exact numbers in histories. JSON has one number type, and a history's values must
//! compare as the numbers they denote: `1`, `1.0` and `1.00` are one number, `6e23` and
//! `6.0E23` are one number, `-0` is `0`, and `2^64 + 1` is not `2^64`. A float reader
//! rounds (and without care, misrounds) and collapses integers beyond 64 bits, so history
//! values are read here from their text: an integer that fits 64 bits becomes a JSON
//! integer, and any other number a canonical decimal (`{"$number": "6e23"}`: its
//! significant digits without leading or trailing zeros, and a power of ten), so that
//! equal numbers are equal values and different numbers never are.
//!
//! This module only reads JSON text that serde_json already accepted; it never decides
//! anything about a history.

use serde_json::{Map, Value};

/// The key of the one-member object that holds a number no 64-bit integer can.
pub const NUMBER_TAG: &str = "$number";

/// Reads JSON text (already known to be valid) with exact numbers.
pub fn exact(text: &str) -> Result<Value, String> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    reader.value()
}

/// The canonical value of a JSON number literal.
pub fn number(literal: &str) -> Result<Value, String> {
    let (negative, rest) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, "0"),
    };
    let exponent: i64 = exponent
        .trim_start_matches('+')
        .parse()
        .map_err(|_| format!("the exponent of {literal} is out of range"))?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{whole}{fraction}")
        .trim_start_matches('0')
        .to_string();
    if digits.is_empty() {
        return Ok(Value::from(0)); // Every zero, -0 and 0.000e5 among them.
    }
    let mut power = exponent
        .checked_sub(fraction.len() as i64)
        .ok_or_else(|| format!("the exponent of {literal} is out of range"))?;
    while digits.ends_with('0') {
        digits.pop();
        power += 1;
    }
    if (0..=19).contains(&power) && digits.len() as i64 + power <= 20 {
        let integer = format!("{digits}{}", "0".repeat(power as usize));
        if negative {
            if let Ok(value) = format!("-{integer}").parse::<i64>() {
                return Ok(Value::from(value));
            }
        } else if let Ok(value) = integer.parse::<u64>() {
            return Ok(Value::from(value));
        }
    }
    let sign = if negative { "-" } else { "" };
    let mut tagged = Map::new();
    tagged.insert(
        NUMBER_TAG.to_string(),
        Value::String(format!("{sign}{digits}e{power}")),
    );
    Ok(Value::Object(tagged))
}

/// `value` for people to read: canonical numbers shown as their decimal text (a JSON
/// string, since no JSON reader would keep them exact as numbers).
pub fn shown(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let (1, Some(Value::String(text))) = (map.len(), map.get(NUMBER_TAG)) {
                return Value::String(decimal(text));
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shown(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(shown).collect()),
        other => other.clone(),
    }
}

/// `value` as text for people: canonical numbers bare, as they were written, so a number
/// beyond 64 bits never reads like a string.
pub fn text(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            if let (1, Some(Value::String(text))) = (map.len(), map.get(NUMBER_TAG)) {
                return decimal(text);
            }
            let members: Vec<String> = map
                .iter()
                .map(|(key, member)| format!("{}:{}", Value::String(key.clone()), text(member)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(text).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// `digits e power` as people write it: `18446744073709551617`, `0.25`, or `6e23`.
fn decimal(canonical: &str) -> String {
    let Some((mantissa, power)) = canonical.split_once('e') else {
        return canonical.to_string();
    };
    let Ok(power) = power.parse::<i64>() else {
        return canonical.to_string();
    };
    let (sign, digits) = match mantissa.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", mantissa),
    };
    if (0..=20).contains(&power) {
        return format!("{sign}{digits}{}", "0".repeat(power as usize));
    }
    if power < 0 && -power <= 20 {
        let point = digits.len() as i64 + power;
        return if point > 0 {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{sign}{whole}.{fraction}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat(-point as usize))
        };
    }
    canonical.to_string()
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        let Some(&byte) = self.bytes.get(self.at) else {
            return Err("unexpected end of JSON".into());
        };
        match byte {
            b'{' => {
                self.at += 1;
                let mut map = Map::new();
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        return Ok(Value::Object(map));
                    }
                    let key = self.string()?;
                    self.skip_space();
                    self.expect(b':')?;
                    let value = self.value()?;
                    map.insert(key, value);
                    self.skip_space();
                    if self.bytes.get(self.at) == Some(&b',') {
                        self.at += 1;
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at) == Some(&b']') {
                        self.at += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.skip_space();
                    if self.bytes.get(self.at) == Some(&b',') {
                        self.at += 1;
                    }
                }
            }
            b'"' => self.string().map(Value::String),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            _ => {
                let start = self.at;
                while self.at < self.bytes.len()
                    && matches!(
                        self.bytes[self.at],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.at += 1;
                }
                if start == self.at {
                    return Err(format!("unexpected `{}`", byte as char));
                }
                number(&self.text[start..self.at])
            }
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.bytes.get(self.at) != Some(&byte) {
            return Err(format!("expected `{}`", byte as char));
        }
        self.at += 1;
        Ok(())
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
        if !self.text[self.at..].starts_with(word) {
            return Err(format!("expected `{word}`"));
        }
        self.at += word.len();
        Ok(value)
    }

    /// A string token, unescaped by serde_json.
    fn string(&mut self) -> Result<String, String> {
        let start = self.at;
        self.expect(b'"')?;
        while let Some(&byte) = self.bytes.get(self.at) {
            self.at += 1;
            match byte {
                b'\\' => self.at += 1,
                b'"' => {
                    return serde_json::from_str(&self.text[start..self.at])
                        .map_err(|e| e.to_string())
                }
                _ => {}
            }
        }
        Err("unterminated string".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        number(a).unwrap() == number(b).unwrap()
    }

    #[test]
    fn spellings_of_one_number_are_one_value() {
        for (a, b) in [
            ("6e23", "6.0E23"),
            ("3e-22", "3.0E-22"),
            ("1", "1.0"),
            ("1", "1.00"),
            ("1.0", "1.00"),
            ("-0", "0"),
            ("0.000e5", "0"),
            ("10e-1", "1"),
            ("1.5", "15e-1"),
            (
                "123456789012345678901234567890",
                "1.23456789012345678901234567890e29",
            ),
        ] {
            assert!(same(a, b), "{a} and {b}");
        }
        assert_eq!(number("1.0").unwrap(), Value::from(1));
        assert_eq!(number("-42e0").unwrap(), Value::from(-42));
        assert_eq!(
            number("18446744073709551615").unwrap(),
            Value::from(u64::MAX)
        );
    }

    #[test]
    fn different_numbers_stay_different() {
        for (a, b) in [
            ("18446744073709551616", "18446744073709551617"),
            ("9223372036854775808", "9223372036854775809"),
            ("-9223372036854775809", "-9223372036854775810"),
            ("0.1", "0.1000000000000000055511151231257827"),
            ("1", "-1"),
            ("6e23", "6e22"),
        ] {
            assert!(!same(a, b), "{a} and {b}");
        }
        assert!(number("1e99999999999999999999").is_err());
    }

    #[test]
    fn whole_values_are_read_exactly_and_shown_as_decimals() {
        let value = exact(r#"{"a": [1.0, 6.0E23, "x\"y"], "b": null, "c": true}"#).unwrap();
        let expected = exact(r#"{"c": true, "b": null, "a": [1, 6e23, "x\"y"]}"#).unwrap();
        assert_eq!(value, expected);
        assert_eq!(
            shown(&value),
            serde_json::json!({"a": [1, "6e23", "x\"y"], "b": null, "c": true})
        );
        let shown_number = |literal: &str| shown(&number(literal).unwrap());
        assert_eq!(shown_number("18446744073709551617"), "18446744073709551617");
        assert_eq!(shown_number("0.0025"), "0.0025");
        assert_eq!(shown_number("-12.5"), "-12.5");
        assert_eq!(shown_number("3e-22"), "3e-22");
        assert_eq!(shown_number("3e-7"), "0.0000003");
        assert_eq!(shown_number("6e99"), "6e99");
    }
}
