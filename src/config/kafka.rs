//! Kafka keys of pipeline files.
//!
//! ```toml
//! [source]
//! type = "kafka"
//! brokers = "127.0.0.1:9092"
//! group = "orders-enrich"
//! topics = ["orders"]
//! properties = { "security.protocol" = "SASL_SSL", "sasl.password" = "${KAFKA_PASSWORD}" }
//! instance = "${HOSTNAME}"      # optional: this worker's stable name
//! ```
//!
//! `properties` pass through to librdkafka; a value `${NAME}` is read from
//! the environment (secrets stay out of pipeline files) and never printed.

use super::problems::{join, Walker};
use std::fmt;

/// librdkafka properties; values of secret-looking keys are redacted in
/// `Debug` output.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Properties(pub Vec<(String, String)>);

impl Properties {
    /// The value of property `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            let secret = ["password", "secret", "key", "token", "jaas"]
                .iter()
                .any(|s| k.contains(s));
            m.entry(k, &if secret { "<redacted>" } else { v.as_str() });
        }
        m.finish()
    }
}

/// A Kafka consumer-group source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSource {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The consumer group: workers with the same group share the partitions.
    pub group: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Extra librdkafka consumer properties.
    pub properties: Properties,
    /// A stable name of this worker in its group (`instance`), unique per
    /// worker: in exactly-once mode its transactional producer's id
    /// derives from it, so a restarted worker aborts the transaction it
    /// left open.
    pub instance: Option<String>,
}

/// A Kafka sink (an idempotent producer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSink {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic events go to unless a stage set one.
    pub topic: String,
    /// Extra librdkafka producer properties.
    pub properties: Properties,
}

/// Properties weir sets itself; a pipeline may not override them.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "transactional.id",
];

fn properties(w: &mut Walker, path: &str, t: &toml::Table) -> Properties {
    let mut out = Vec::new();
    let Some(table) = w.table(path, t, "properties") else {
        return Properties(out);
    };
    let path = join(path, "properties");
    for (k, v) in table {
        let key = format!("{path}.\"{k}\"");
        if RESERVED.contains(&k.as_str()) {
            w.problem(
                &key,
                "weir sets this property itself",
                "use brokers/group here, or remove it",
            );
            continue;
        }
        let value = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                w.problem(
                    &key,
                    format!("expected a string, found {}", other.type_str()),
                    "librdkafka properties are strings",
                );
                continue;
            }
        };
        if let Some(v) = expanded(w, &key, &value) {
            out.push((k.clone(), v));
        }
    }
    Properties(out)
}

/// `value` with a whole-value `${NAME}` read from the environment; a
/// problem at `key` when the variable is not set.
fn expanded(w: &mut Walker, key: &str, value: &str) -> Option<String> {
    match expand_env(value) {
        Ok(v) => Some(v),
        Err(name) => {
            w.problem(
                key,
                format!("environment variable {name} is not set"),
                format!("export {name} before starting weir"),
            );
            None
        }
    }
}

/// Replaces a whole-value `${NAME}` with the environment variable's value.
fn expand_env(value: &str) -> Result<String, String> {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(name) => std::env::var(name).map_err(|_| name.to_string()),
        None => Ok(value.to_string()),
    }
}

/// `source.instance`: a string, `${NAME}` read from the environment.
fn instance(w: &mut Walker, t: &toml::Table) -> Option<String> {
    let value = w.string("source", t, "instance")?;
    let value = expanded(w, "source.instance", &value)?;
    if value.is_empty() {
        w.problem(
            "source.instance",
            "empty",
            "instance = \"${HOSTNAME}\" (a name unique to this worker, the same across restarts)",
        );
        return None;
    }
    Some(value)
}

pub(super) fn kafka_source(w: &mut Walker, t: &toml::Table) -> Option<KafkaSource> {
    w.unknown_keys(
        "source",
        t,
        &[
            "type",
            "brokers",
            "group",
            "topics",
            "properties",
            "instance",
        ],
    );
    let brokers = w.required_string(
        "source",
        t,
        "brokers",
        "brokers = \"host1:9092,host2:9092\"",
    );
    let group = w.required_string(
        "source",
        t,
        "group",
        "the consumer group; workers with the same group share partitions",
    );
    let topics = if t.contains_key("topics") {
        w.strings("source", t, "topics")
    } else {
        w.problem("source.topics", "missing", "topics = [\"orders\"]");
        None
    };
    if topics.as_ref().is_some_and(Vec::is_empty) {
        w.problem("source.topics", "no topics", "name at least one topic");
    }
    let properties = properties(w, "source", t);
    let instance = instance(w, t);
    Some(KafkaSource {
        brokers: brokers?,
        group: group?,
        topics: topics?,
        properties,
        instance,
    })
}

pub(super) fn kafka_sink(w: &mut Walker, path: &str, t: &toml::Table) -> Option<KafkaSink> {
    w.unknown_keys(path, t, &["type", "brokers", "topic", "properties"]);
    let brokers = w.required_string(path, t, "brokers", "brokers = \"host1:9092,host2:9092\"");
    let topic = w.required_string(
        path,
        t,
        "topic",
        "the topic events go to unless a stage sets one",
    );
    let properties = properties(w, path, t);
    Some(KafkaSink {
        brokers: brokers?,
        topic: topic?,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_read_from_the_environment() {
        // SAFETY: a name no other test uses.
        unsafe { std::env::set_var("WEIR_TEST_KAFKA_SECRET", "hunter2") };
        assert_eq!(
            expand_env("${WEIR_TEST_KAFKA_SECRET}"),
            Ok("hunter2".into())
        );
        assert_eq!(
            expand_env("${WEIR_TEST_UNSET_VAR}"),
            Err("WEIR_TEST_UNSET_VAR".into())
        );
        let p = Properties(vec![
            ("sasl.password".into(), "hunter2".into()),
            ("acks".into(), "all".into()),
        ]);
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("all"),
            "{shown}"
        );
    }
}
