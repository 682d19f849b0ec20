//! A JetStream worker whose sink stalls for many times `ack_wait`: the
//! messages that waited unread in the client are delivered again, and weir
//! drops those second copies instead of publishing them twice or, on their
//! last delivery, dead-lettering them.

use crate::nats::{consumer_info, count, publish, server_with_streams};
use crate::support::{root, wait_until, LogReader};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
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
    let file = dir.path().join("stall.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "stall"
source = {{ type = "jetstream", url = "{url}", stream = "IN", consumer = "weir", ack_wait = "2s", max_deliver = 3 }}
dead_letter = {{ type = "jetstream", url = "{url}", subject = "dlq" }}
[batch]
max_events = 50
linger = "5ms"
[[stage]]
name = "identity"
plugin = "{}"
[sink]
type = "stdout"
"#,
            root().join("plugins/dist/identity.core.wasm").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut log = LogReader::start(child.stderr.take().unwrap());
    // Nobody reads the output for fifteen times ack_wait: the pipe fills up,
    // the pipeline behind it, and the client's buffer behind that.
    std::thread::sleep(Duration::from_secs(30));
    let reader = std::thread::spawn(move || {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            *seen
                .entry(v["value"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        seen
    });
    wait_until("every message acknowledged", 60, || {
        let info = rt.block_on(consumer_info(&url));
        info.num_pending == 0 && info.num_ack_pending == 0
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let seen = reader.join().unwrap();
    let log = log.finish();
    assert!(status.success(), "weir stopped cleanly:\n{log}");
    let info = rt.block_on(consumer_info(&url));
    eprintln!(
        "a sink stalled for 30 s, ack_wait 2 s: {} deliveries of {N} messages",
        info.delivered.consumer_sequence
    );
    assert!(
        info.delivered.consumer_sequence > N as u64,
        "the server delivered messages again, or the test proves nothing"
    );
    // Before weir dropped second copies: 100 of 3000 here, each also
    // published once.
    assert_eq!(
        rt.block_on(count(&url, "DLQ")),
        0,
        "healthy events went to the dead-letter stream:\n{log}"
    );
    let duplicates: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "published twice: {} of {N}, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    assert_eq!(seen.len(), N, "every event came out");
}
