//! A batch too big for its stage's budget is a setting, not a poison event:
//! nothing is dead-lettered, and the stage is called with pieces that fit.

use crate::support::*;
use weir::pipeline::{prepare_stages, StartOptions};
use weir::runtime::{StageLimits, CALL_FUEL_EVENTS};
use weir::source::MemorySource;
use weir::Event;

fn batch(n: usize) -> Vec<Event> {
    (0..n).map(|_| Event::from_value(vec![b'x'; 100])).collect()
}

#[test]
fn a_batch_that_outgrows_its_fuel_is_split_once_and_nothing_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("square.wasm");
    std::fs::write(
        &wasm,
        wat::parse_file(root().join("tests/fixtures/square.wat")).unwrap(),
    )
    .unwrap();
    // What calls of 32 and 64 events cost, with fuel to spare.
    let plugin = load_wat("square");
    let mut s = instance(
        &plugin,
        &weir::runtime::InstanceSettings {
            limits: StageLimits {
                fuel_per_event: 1 << 40,
                ..StageLimits::default()
            },
            ..settings(&[])
        },
    );
    let mut cost = |n| {
        s.process(&mut batch(n)).unwrap();
        s.last_fuel()
    };
    let (c32, c64) = (cost(32), cost(64));
    // A budget per event that 32 events fit and 64 do not.
    let fits = |n: u64, c: u64| c / (n + CALL_FUEL_EVENTS);
    let (need32, need64) = (fits(32, c32), fits(64, c64));
    assert!(need64 > need32 + 2, "{c32} {c64}");
    let per_event = (need32 + need64) / 2;

    let p = pipeline(&format!(
        "name = \"square\"\nsource = {{ type = \"stdin\" }}\nsink = {{ type = \"stdout\" }}\n\
         batch = {{ max_events = 64, linger = \"1s\" }}\nworkers = {{ threads = 1 }}\n\
         [[stage]]\nname = \"square\"\nplugin = \"{}\"\nfuel_per_event = {per_event}\n",
        wasm.display()
    ));
    let stages = prepare_stages(&runtime(), &p).unwrap();
    let spec = stages[0].clone();
    let source = MemorySource::from_events(batch(640).into_iter().map(|e| (0, e)).collect());
    let commits = source.commits();
    let (endpoints, _, dead) = harness::memory(source);
    let options = StartOptions {
        stages: Some(stages),
        ..harness::with_endpoints(endpoints)
    };
    let report = tokio_rt()
        .block_on(async { harness::start(&p, options).await.finished().await })
        .unwrap();
    assert_eq!(report.events_in, 640);
    assert!(dead.events().is_empty(), "no event is to blame");
    assert_eq!(commits.snapshot()[&0], 640, "every event committed");
    assert_eq!(
        spec.budget.most_events(),
        32,
        "later batches are called in the pieces that fitted"
    );
}
