//! Keeps JSON events whose numeric field `field` (default `amount`) is at
//! least `min` (default 0). Events that are not JSON objects, or lack the
//! field, go to the dead-letter sink.

use weir_plugin::{Config, Event, EventError, Output, Stage};

struct Filter {
    field: String,
    min: f64,
}

impl Stage for Filter {
    fn init(config: &Config) -> Result<Self, String> {
        let min = match config.get("min") {
            Some(m) => m
                .parse()
                .map_err(|_| format!("min must be a number, got {m:?}"))?,
            None => 0.0,
        };
        Ok(Filter {
            field: config.get("field").unwrap_or("amount").to_owned(),
            min,
        })
    }

    fn process(&mut self, batch: Vec<Event>) -> Output {
        let mut out = Output::default();
        for (i, e) in batch.into_iter().enumerate() {
            let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&e.value);
            let amount = match &parsed {
                Ok(serde_json::Value::Object(o)) => o.get(&self.field).and_then(|v| v.as_f64()),
                _ => {
                    out.errors.push(EventError {
                        index: i as u32,
                        message: "value is not a JSON object".into(),
                    });
                    continue;
                }
            };
            match amount {
                Some(a) if a >= self.min => out.events.push(e),
                Some(_) => {}
                None => out.errors.push(EventError {
                    index: i as u32,
                    message: format!("field {:?} is missing or not a number", self.field),
                }),
            }
        }
        out
    }
}

weir_plugin::export_stage!(Filter);
