//! Routes JSON events by a field: the output topic becomes `prefix` +
//! the value of `field` (default `type`). Events without the field as a
//! non-empty string go to `fallback` when it is set, else to the sink's
//! topic.

mod transform;

use weir_plugin::{Config, Event, Output, Stage};

struct Router {
    field: String,
    prefix: String,
    fallback: Option<String>,
}

impl Stage for Router {
    fn init(config: &Config) -> Result<Self, String> {
        Ok(Router {
            field: config.get("field").unwrap_or("type").to_owned(),
            prefix: config.get("prefix").unwrap_or("").to_owned(),
            fallback: config.get("fallback").map(str::to_owned),
        })
    }

    fn process(&mut self, batch: Vec<Event>) -> Output {
        let events = batch
            .into_iter()
            .map(|mut e| {
                e.topic = match transform::route(&e.value, &self.field) {
                    Some(r) => Some(format!("{}{}", self.prefix, r)),
                    None => self.fallback.clone(),
                };
                e
            })
            .collect();
        Output {
            events,
            errors: vec![],
        }
    }
}

weir_plugin::export_stage!(Router);
