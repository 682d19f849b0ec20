//! Every language's version of an example gives the Rust one's output,
//! byte for byte, over the edge cases of `plugins/examples/cases/` and the
//! demo's orders, and dead-letters the same events (each with its own
//! parser's words). The reference is the Rust example; the specification
//! they all follow is `plugins/examples/README.md`.

use crate::support::*;
use weir::runtime::StageInstance;
use weir::Event;

const LANGUAGES: [&str; 4] = ["go", "js", "ts", "python"];

/// The events of a JSON Lines file. A line that is no event never reaches
/// a stage (the file source dead-letters it), so it is left out; a cases
/// file has none.
fn read_cases(path: &str) -> Vec<Event> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let events: Vec<Event> = lines
        .iter()
        .filter_map(|l| weir::jsonl::parse_event(l).ok())
        .collect();
    if path.contains("/cases/") {
        assert_eq!(events.len(), lines.len(), "{path}: every line is an event");
    }
    events
}

/// What a case is called: its `case` header, or its place in the file.
fn case_name(e: &Event, i: usize) -> String {
    e.header("case")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| format!("line {}", i + 1))
}

/// The output events (as weir writes them) and the indexes dead-lettered,
/// in one call per event so that each case stands alone, and in one call
/// for the whole file.
fn run(s: &mut StageInstance, cases: &[Event]) -> (Vec<String>, Vec<usize>, Vec<String>) {
    let mut each = Vec::new();
    let mut dead = Vec::new();
    for (i, e) in cases.iter().enumerate() {
        let out = s.process(&mut vec![e.clone()]).unwrap();
        if !out.errors.is_empty() {
            dead.push(i);
        }
        for o in &out.events {
            each.push(format!(
                "{}: {}",
                case_name(e, i),
                weir::jsonl::write_event(o)
            ));
        }
    }
    let whole = s.process(&mut cases.to_vec()).unwrap();
    let all = whole.events.iter().map(weir::jsonl::write_event).collect();
    (each, dead, all)
}

/// Runs `example` with `config` in every language over `file` and compares
/// each with Rust's.
fn conforms(example: &str, config: &[(&str, &str)], file: &str) {
    let cases = read_cases(file);
    let mut rust = instance(&load(&format!("{example}.wasm")), &settings(config));
    let (want, want_dead, want_all) = run(&mut rust, &cases);
    for language in LANGUAGES {
        let plugin = load(&format!("{language}/{example}.wasm"));
        let mut s = instance(&plugin, &settings(config));
        let (got, dead, all) = run(&mut s, &cases);
        let names =
            |d: &[usize]| -> Vec<String> { d.iter().map(|&i| case_name(&cases[i], i)).collect() };
        assert_eq!(
            names(&dead),
            names(&want_dead),
            "{language} {example} over {file}: the dead-lettered cases"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{language} {example} over {file}");
        }
        assert_eq!(
            got.len(),
            want.len(),
            "{language} {example} over {file}: outputs"
        );
        assert_eq!(
            all, want_all,
            "{language} {example} over {file}: in one call"
        );
    }
}

#[test]
fn the_filter_is_the_same_in_every_language() {
    conforms(
        "filter",
        &[("min", "10")],
        "plugins/examples/cases/filter.jsonl",
    );
    conforms("filter", &[], "plugins/examples/cases/filter.jsonl");
    conforms("filter", &[("min", "10")], "pipelines/data/orders.jsonl");
}

#[test]
fn the_enrich_is_the_same_in_every_language() {
    let euro = [("currency", "EUR")];
    conforms("enrich", &euro, "plugins/examples/cases/enrich.jsonl");
    conforms("enrich", &[], "plugins/examples/cases/enrich.jsonl");
    // A currency that needs escaping is written the same way everywhere.
    conforms(
        "enrich",
        &[("currency", "€ \"x\" \\ \t")],
        "plugins/examples/cases/enrich.jsonl",
    );
    conforms("enrich", &euro, "pipelines/data/orders.jsonl");
}

#[test]
fn the_router_is_the_same_in_every_language() {
    let routed = [("prefix", "orders."), ("fallback", "orders.other")];
    conforms("router", &routed, "plugins/examples/cases/router.jsonl");
    conforms("router", &[], "plugins/examples/cases/router.jsonl");
    conforms("router", &routed, "pipelines/data/orders.jsonl");
}

#[test]
fn the_counter_is_the_same_in_every_language() {
    conforms("counter", &[], "plugins/examples/cases/counter.jsonl");
    conforms("counter", &[], "pipelines/data/orders.jsonl");
}

#[test]
fn a_filter_refuses_a_min_that_is_not_a_number_in_every_language() {
    for language in ["", "go/", "js/", "python/"] {
        let plugin = load(&format!("{language}filter.wasm"));
        let err = StageInstance::new(&runtime(), &plugin, &settings(&[("min", "ten")]))
            .err()
            .unwrap_or_else(|| panic!("{language}filter took min = ten"));
        assert!(
            err.to_string()
                .contains(r#"min must be a number, got "ten""#),
            "{language}filter: {err}"
        );
    }
}
