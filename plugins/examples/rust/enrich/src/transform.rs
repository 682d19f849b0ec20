// The enrich transform itself, free of any plugin API, so that the benchmark
// can compile the very same function into the host as its native baseline
// (`crate::json` is the SDK's `weir_plugin::json`, as the crate root names
// it).

use crate::json;

/// Validates the JSON object `value` and sets `currency` and `amount_cents`
/// in it as written (see `plugins/examples/README.md`).
pub fn enrich(value: &[u8], currency: &str) -> Result<Vec<u8>, String> {
    // Strict JSON: UTF-8, no byte-order mark, numbers within a double.
    let parsed: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
    if !parsed.is_object() {
        return Err("value is not a JSON object".into());
    }
    let members = json::members(value)?;
    // The last of duplicate keys counts, as in every JSON parser here.
    let cents = match members.iter().rev().find(|m| m.key == "amount") {
        Some(m) => cents(&value[m.value.clone()])?,
        None => None,
    };
    let cents = cents.map_or_else(|| "null".to_owned(), |c| c.to_string());
    Ok(json::set_members(
        value,
        &members,
        &[
            ("currency", &json::quote(currency)),
            ("amount_cents", &cents),
        ],
    ))
}

/// The JSON value `text` × 100, rounded half away from zero, from its
/// decimal digits: `None` when it is not a number, an error when the cents
/// are beyond a 64-bit integer.
pub fn cents(text: &[u8]) -> Result<Option<i64>, String> {
    let Ok(text) = std::str::from_utf8(text) else {
        return Ok(None);
    };
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if !body.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(None);
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, "0"),
    };
    // Far past any cents that fit: clamped, so that the arithmetic is small.
    let exponent: i64 = exponent
        .trim_start_matches('+')
        .parse::<i64>()
        .unwrap_or(if exponent.starts_with('-') {
            -100_000
        } else {
            100_000
        })
        .clamp(-100_000, 100_000);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = whole
        .bytes()
        .chain(fraction.bytes())
        .map(|b| b - b'0')
        .collect();
    // value = digits × 10^shift, and cents = value × 100.
    let shift = exponent - fraction.len() as i64 + 2;
    let too_big = || "amount_cents is beyond a 64-bit integer".to_string();
    let (kept, dropped) = if shift >= 0 {
        (digits.as_slice(), &[][..])
    } else {
        let keep = (digits.len() as i64 + shift).max(0) as usize;
        digits.split_at(keep)
    };
    let mut magnitude: u128 = 0;
    for &d in kept {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(d)))
            .filter(|&m| m <= 1 << 63)
            .ok_or_else(too_big)?;
    }
    for _ in 0..shift.max(0) {
        if magnitude == 0 {
            break;
        }
        magnitude = magnitude
            .checked_mul(10)
            .filter(|&m| m <= 1 << 63)
            .ok_or_else(too_big)?;
    }
    // Half away from zero: the first dropped digit decides.
    if dropped.first().is_some_and(|&d| d >= 5) {
        magnitude += 1;
    }
    let cents = if negative {
        0i64.checked_sub_unsigned(u64::try_from(magnitude).map_err(|_| too_big())?)
    } else {
        i64::try_from(magnitude).ok()
    };
    cents.map(Some).ok_or_else(too_big)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cents_come_from_the_decimal_digits() {
        let c = |t: &str| super::cents(t.as_bytes());
        assert_eq!(c("42.5"), Ok(Some(4250)));
        assert_eq!(c("0.005"), Ok(Some(1)));
        assert_eq!(c("-0.005"), Ok(Some(-1)));
        assert_eq!(c("0.004999"), Ok(Some(0)));
        assert_eq!(c("1.005"), Ok(Some(101)));
        assert_eq!(c("-0"), Ok(Some(0)));
        assert_eq!(c("1.5e3"), Ok(Some(150_000)));
        assert_eq!(c("15E-2"), Ok(Some(15)));
        assert_eq!(c("1e-400"), Ok(Some(0)));
        assert_eq!(c("92233720368547758.07"), Ok(Some(i64::MAX)));
        assert_eq!(c("-92233720368547758.08"), Ok(Some(i64::MIN)));
        assert!(c("92233720368547758.08").is_err());
        assert!(c("1e300").is_err());
        assert_eq!(c("\"12\""), Ok(None));
        assert_eq!(c("null"), Ok(None));
    }
}
