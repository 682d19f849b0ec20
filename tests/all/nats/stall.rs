//! A JetStream worker whose sink stalls for many times `ack_wait`: weir asks
//! the server for no more than it has room for and holds what it read, in
//! progress, so nothing is delivered again, nothing is published twice and
//! nothing healthy reaches the dead-letter stream on its last delivery.

use crate::support::nats::{consumer_info, count, publish, server_with_streams};
use crate::support::stdout_worker::{assert_each_once, StdoutWorker};
use crate::support::wait_until;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn a_sink_stalled_past_ack_wait_neither_duplicates_nor_dead_letters() {
    const N: usize = 3000;
    let (_nats, url, rt) = server_with_streams();
    rt.block_on(publish(
        &url,
        (0..N).map(|i| (format!("in.{}", i % 3), format!("e{i}"))),
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut w = StdoutWorker::start(
        dir.path(),
        "stall",
        &format!(
            "source = {{ type = \"jetstream\", url = \"{url}\", stream = \"IN\", consumer = \"weir\", \
             ack_wait = \"2s\", max_deliver = 3 }}\n\
             dead_letter = {{ type = \"jetstream\", url = \"{url}\", subject = \"dlq\" }}"
        ),
    );
    // Nobody reads the output for fifteen times ack_wait: the pipe fills up,
    // then the pipeline behind it, then weir's read-ahead behind that.
    std::thread::sleep(Duration::from_secs(30));
    let (tx, lines) = mpsc::channel();
    let reader = w.read_into(tx);
    wait_until("every message acknowledged", 60, || {
        let info = rt.block_on(consumer_info(&url));
        info.num_pending == 0 && info.num_ack_pending == 0
    });
    let log = w.stop();
    reader.join().unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for v in lines.try_iter() {
        *seen.entry(v).or_default() += 1;
    }
    let info = rt.block_on(consumer_info(&url));
    eprintln!(
        "a sink stalled for 30 s, ack_wait 2 s: {} deliveries of {N} messages",
        info.delivered.consumer_sequence
    );
    // When the client pulled ahead of weir, the messages that waited unread
    // in it were delivered again: 100 of 3000 here reached the dead-letter
    // stream before weir dropped second copies.
    assert_eq!(
        info.delivered.consumer_sequence, N as u64,
        "one delivery per message"
    );
    assert_eq!(
        rt.block_on(count(&url, "DLQ")),
        0,
        "healthy events went to the dead-letter stream:\n{log}"
    );
    assert_each_once(&seen, N);
}
