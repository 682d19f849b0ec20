//! Passes every event through unchanged: the cheapest possible stage.

use weir_plugin::{Config, Event, Output, Stage};

struct Identity;

impl Stage for Identity {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Identity)
    }

    fn process(&mut self, batch: Vec<Event>) -> Output {
        Output {
            events: batch,
            errors: vec![],
        }
    }
}

weir_plugin::export_stage!(Identity);
