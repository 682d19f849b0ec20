// The routing itself, free of any plugin API, so that a benchmark can
// compile the very same function into the host as its native baseline.

/// The value of the JSON object `value`'s field `field`, when it is a
/// non-empty string.
pub fn route(value: &[u8], field: &str) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(value)
        .ok()
        .and_then(|v| {
            v.get(field)
                .and_then(|f| f.as_str())
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
        })
}
