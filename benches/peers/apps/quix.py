"""Quix Streams: the transform as a streaming dataframe."""

import os

from quixstreams import Application

from common import transform

app = Application(
    broker_address=os.environ["BROKERS"],
    consumer_group=os.environ["GROUP"],
    auto_offset_reset="earliest",
    use_changelog_topics=False,
    consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
)
source = app.topic("in", value_deserializer="bytes", key_deserializer="bytes")
sink = app.topic(os.environ["OUT"], value_serializer="bytes", key_serializer="bytes")
sdf = app.dataframe(source)
sdf = sdf.apply(transform).filter(lambda v: v is not None)
sdf.to_topic(sink)
app.run()
