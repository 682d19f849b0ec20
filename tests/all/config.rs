//! Malformed pipeline files: every problem reported at once, with file, key
//! path and a hint; never a panic.

use crate::support::root;
use weir::config::Pipeline;

fn problems(name: &str) -> (String, Vec<(String, String, String)>) {
    let file = root().join("tests/fixtures/pipelines").join(name);
    let err = Pipeline::load(&file).expect_err("the file is malformed");
    assert_eq!(err.file, file);
    let text = err.to_string();
    (
        text,
        err.problems
            .into_iter()
            .map(|p| (p.key, p.message, p.hint))
            .collect(),
    )
}

fn has(problems: &[(String, String, String)], key: &str, message: &str) -> bool {
    problems
        .iter()
        .any(|(k, m, _)| k == key && m.contains(message))
}

#[test]
fn every_problem_is_reported_together() {
    let (text, p) = problems("many_problems.toml");
    for (key, message) in [
        ("name", "is not a valid name"),
        ("colour", "unknown key"),
        ("source.type", "unknown type \"kafak\""),
        ("batch.max_events", "0 is out of range"),
        ("batch.linger", "not a duration"),
        ("stage[1].plugin", "does not exist"),
        ("stage[1].memory", "unknown size unit"),
        ("stage[1].fuel_per_evnt", "unknown key"),
        ("stage[2].name", "already exists"),
        (
            "stage[2].config.nested",
            "expected a string, number or boolean",
        ),
        ("stage[2].grants.env", "expected a list of strings"),
        ("sink", "missing"),
    ] {
        assert!(
            has(&p, key, message),
            "missing problem {key}: {message} in\n{text}"
        );
    }
    assert!(
        p.iter()
            .any(|(k, _, _)| k.starts_with("stage[2].grants.read_dirs")),
        "{text}"
    );
    // Hints say how to fix it.
    let typo = p
        .iter()
        .find(|(k, _, _)| k == "stage[1].fuel_per_evnt")
        .unwrap();
    assert!(
        typo.2.contains("did you mean `fuel_per_event`?"),
        "{}",
        typo.2
    );
    let source = p.iter().find(|(k, _, _)| k == "source.type").unwrap();
    assert!(source.2.contains("file, stdin"), "{}", source.2);
    // The report names the file on every line.
    assert!(
        text.lines()
            .skip(1)
            .filter(|l| !l.trim_start().starts_with("hint:"))
            .all(|l| l.contains("many_problems.toml")),
        "{text}"
    );
}

#[test]
fn invalid_toml_names_line_and_column() {
    let (_, p) = problems("not_toml.toml");
    assert_eq!(p.len(), 1);
    assert!(p[0].0.contains("line 2"), "{:?}", p[0]);
    assert!(p[0].1.starts_with("not valid TOML"), "{:?}", p[0]);
}

#[test]
fn missing_tables_and_wrong_types() {
    let (_, p) = problems("no_source.toml");
    assert!(has(&p, "source", "missing"), "{p:?}");
    let (text, p) = problems("wrong_types.toml");
    assert!(
        has(&p, "source", "expected a table, found string"),
        "{text}"
    );
    assert!(
        has(&p, "sink.type", "expected a string, found integer"),
        "{text}"
    );
    assert!(
        has(&p, "workers.threads", "expected an integer, found string"),
        "{text}"
    );
    assert!(
        has(&p, "metrics.listen", "invalid socket address"),
        "{text}"
    );
}

#[test]
fn the_demo_pipeline_is_valid() {
    let p = Pipeline::load(&root().join("pipelines/demo.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.stages.len(), 4);
    assert_eq!(
        p.stages[0].config,
        [
            ("field".to_string(), "amount".to_string()),
            ("min".to_string(), "10".to_string())
        ]
    );
    assert_eq!(p.stages[0].limits.memory, 16 << 20);
}

#[test]
fn every_pipeline_in_the_repository_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Pipeline::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2, "the demo and the deployment pipeline");
}

#[test]
fn smoke_checks_need_readable_samples_and_a_known_comparison() {
    let (text, p) = problems("bad_smoke.toml");
    assert!(has(&p, "stage[1].smoke.events", "cannot read"), "{text}");
    assert!(
        has(
            &p,
            "stage[2].smoke.events",
            "line 2: unknown field \"colour\""
        ),
        "{text}"
    );
    assert!(
        has(
            &p,
            "stage[2].smoke.compare",
            "\"exact\" is not a comparison"
        ),
        "{text}"
    );
}

#[test]
fn checkpoints_need_a_resumable_source_and_at_least_once_delivery() {
    let (text, p) = problems("checkpoint_jetstream.toml");
    assert!(
        has(&p, "checkpoint", "need a source that can resume"),
        "{text}"
    );
    assert!(text.contains("use a file or Kafka source"), "{text}");
    let (text, p) = problems("checkpoint_exactly_once.toml");
    assert!(
        has(&p, "checkpoint", "not part of a Kafka transaction"),
        "{text}"
    );
    assert_eq!(p.len(), 1, "nothing else is wrong: {text}");
}

/// A pipeline file with a JetStream source: `extra` adds source keys,
/// `batch` keys of the `[batch]` table.
fn jetstream_pipeline(extra: &str, batch: &str) -> String {
    format!(
        "name = \"js\"\n[source]\ntype = \"jetstream\"\nurl = \"nats://127.0.0.1:4222\"\n\
         stream = \"IN\"\n{extra}\n[batch]\n{batch}\n[[stage]]\nname = \"id\"\n\
         plugin = \"identity.wasm\"\n[sink]\ntype = \"file\"\npath = \"out.jsonl\"\n"
    )
}

#[test]
fn a_jetstream_consumer_lets_enough_messages_wait_for_their_acks() {
    use weir::config::SourceConfig;
    let toml = |extra: &str| jetstream_pipeline(extra, "");
    let file = root().join("plugins/dist/js.toml");
    let pending = |extra: &str| match Pipeline::parse(&file, &toml(extra)).unwrap().source {
        SourceConfig::JetStream(js) => js.max_ack_pending,
        other => panic!("not a jetstream source: {other:?}"),
    };
    // The server's own default (1000) would hold two batches of 512.
    assert_eq!(pending(""), 20_000);
    assert_eq!(pending("max_ack_pending = 50000"), 50_000);
    let err = Pipeline::parse(&file, &toml("max_ack_pending = 0")).unwrap_err();
    assert!(
        err.problems
            .iter()
            .any(|p| p.key == "source.max_ack_pending"),
        "{err}"
    );
}

#[test]
fn a_jetstream_pull_asks_for_two_batches_unless_the_file_says() {
    use weir::config::SourceConfig;
    let file = root().join("plugins/dist/js.toml");
    let pull =
        |extra: &str, batch: &str| match Pipeline::parse(&file, &jetstream_pipeline(extra, batch))
            .unwrap()
            .source
        {
            SourceConfig::JetStream(js) => js.pull_batch,
            other => panic!("not a jetstream source: {other:?}"),
        };
    assert_eq!(pull("", ""), 1000, "batches of 512: capped at 1000");
    assert_eq!(pull("", "max_events = 200"), 400);
    assert_eq!(pull("", "max_events = 1"), 100, "at least 100");
    assert_eq!(pull("pull_batch = 50", "max_events = 200"), 50);
    let err = Pipeline::parse(&file, &jetstream_pipeline("pull_batch = 0", "")).unwrap_err();
    assert!(
        err.problems.iter().any(|p| p.key == "source.pull_batch"),
        "{err}"
    );
}

#[test]
fn a_core_nats_source_buffers_what_the_file_says() {
    use weir::config::SourceConfig;
    let toml = |extra: &str| {
        format!(
            "name = \"core\"\n[source]\ntype = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\n\
             subject = \"in.>\"\n{extra}\n[[stage]]\nname = \"id\"\nplugin = \"identity.wasm\"\n\
             [sink]\ntype = \"file\"\npath = \"out.jsonl\"\n"
        )
    };
    let file = root().join("plugins/dist/core.toml");
    let pending = |extra: &str| match Pipeline::parse(&file, &toml(extra)).unwrap().source {
        SourceConfig::Nats(n) => n.max_pending,
        other => panic!("not a core NATS source: {other:?}"),
    };
    assert_eq!(pending(""), 65_536, "async-nats' own default");
    assert_eq!(pending("max_pending = 500000"), 500_000);
    let err = Pipeline::parse(&file, &toml("max_pending = 0")).unwrap_err();
    let problem = err
        .problems
        .iter()
        .find(|p| p.key == "source.max_pending")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(err.to_string().contains("core.toml"), "{err}");
    assert!(!problem.hint.is_empty(), "a hint says what fits: {err}");
}

#[test]
fn limits_of_zero_are_refused_with_the_key_and_the_fix() {
    let (text, p) = problems("zero_limits.toml");
    for (key, message) in [
        ("batch.max_events", ""),
        ("batch.max_bytes", "zero"),
        ("checkpoint.interval", "zero"),
        ("stage[1].timeout", "zero"),
        ("stage[1].fuel_per_event", ""),
        ("stage[1].memory", ""),
        ("stage[2].fuel", "replaced by `fuel_per_event`"),
    ] {
        assert!(
            has(&p, key, message),
            "missing problem {key}: {message} in\n{text}"
        );
    }
    assert!(
        p.iter().all(|(_, _, hint)| !hint.is_empty()),
        "every problem says how to fix it:\n{text}"
    );
}

#[test]
fn a_kafka_worker_names_itself_with_a_string_or_an_environment_variable() {
    use weir::config::SourceConfig;
    let file = root().join("plugins/dist/kafka.toml");
    let toml = |instance: &str| {
        format!(
            "name = \"k\"\n[source]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\n\
             group = \"g\"\ntopics = [\"in\"]\n{instance}\n[[stage]]\nname = \"id\"\n\
             plugin = \"identity.wasm\"\n[sink]\ntype = \"file\"\npath = \"out.jsonl\"\n"
        )
    };
    let instance = |line: &str| match Pipeline::parse(&file, &toml(line)).unwrap().source {
        SourceConfig::Kafka(k) => k.instance,
        other => panic!("not a kafka source: {other:?}"),
    };
    assert_eq!(instance(""), None);
    assert_eq!(instance("instance = \"worker-0\""), Some("worker-0".into()));
    std::env::set_var("WEIR_TEST_INSTANCE", "pod-3");
    assert_eq!(
        instance("instance = \"${WEIR_TEST_INSTANCE}\""),
        Some("pod-3".into())
    );
    for (line, message) in [
        ("instance = 3", "expected a string, found integer"),
        ("instance = \"\"", "empty"),
        (
            "instance = \"${WEIR_TEST_NOT_SET}\"",
            "WEIR_TEST_NOT_SET is not set",
        ),
    ] {
        let err = Pipeline::parse(&file, &toml(line)).unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.key == "source.instance" && p.message.contains(message)),
            "{line}: {err}"
        );
    }
}
