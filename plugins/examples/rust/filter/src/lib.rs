//! Keeps JSON events whose numeric field `field` (default `amount`) is at
//! least `min` (default 0). Events that are not JSON objects, or lack the
//! field, go to the dead-letter sink.

mod transform;

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
            match transform::keep(&e.value, &self.field, self.min) {
                Ok(true) => out.events.push(e),
                Ok(false) => {}
                Err(message) => out.errors.push(EventError {
                    index: i as u32,
                    message,
                }),
            }
        }
        out
    }
}

weir_plugin::export_stage!(Filter);
