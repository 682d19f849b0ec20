//! Adds `currency` (from the stage config) and `amount_cents` to JSON
//! objects. Values that are not JSON objects go to the dead-letter sink.

mod transform;

use weir_plugin::json;

use weir_plugin::{Config, Event, EventError, Output, Stage};

struct Enrich {
    currency: String,
}

impl Stage for Enrich {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(Enrich {
            currency: config.get("currency").unwrap_or("EUR").to_owned(),
        })
    }

    fn process(&mut self, batch: Vec<Event>) -> Output {
        let mut out = Output {
            events: Vec::with_capacity(batch.len()),
            errors: vec![],
        };
        for (i, mut e) in batch.into_iter().enumerate() {
            match transform::enrich(&e.value, &self.currency) {
                Ok(v) => {
                    e.value = v;
                    out.events.push(e);
                }
                Err(message) => out.errors.push(EventError {
                    index: i as u32,
                    message,
                }),
            }
        }
        out
    }
}

weir_plugin::export_stage!(Enrich);
