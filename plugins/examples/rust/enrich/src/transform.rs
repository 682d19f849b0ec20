// The enrich transform itself, free of any plugin API, so that the benchmark
// can compile the very same function into the host as its native baseline.

/// Parses a JSON object, adds `currency` and `amount_cents`, serializes it.
pub fn enrich(value: &[u8], currency: &str) -> Result<Vec<u8>, String> {
    let mut v: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
    let obj = v.as_object_mut().ok_or("value is not a JSON object")?;
    let cents = obj
        .get("amount")
        .and_then(|a| a.as_f64())
        .map(|a| (a * 100.0).round() as i64);
    obj.insert("currency".into(), currency.into());
    obj.insert("amount_cents".into(), cents.into());
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}
