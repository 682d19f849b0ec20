// The filter itself, free of any plugin API, so that a benchmark can
// compile the very same function into the host as its native baseline.

/// Whether the JSON object `value` has its numeric field `field` at least
/// `min`; why not, when it is not such an object.
pub fn keep(value: &[u8], field: &str, min: f64) -> Result<bool, String> {
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(value);
    let amount = match &parsed {
        Ok(serde_json::Value::Object(o)) => o.get(field).and_then(|v| v.as_f64()),
        _ => return Err("value is not a JSON object".into()),
    };
    match amount {
        Some(a) => Ok(a >= min),
        None => Err(format!("field {field:?} is missing or not a number")),
    }
}
