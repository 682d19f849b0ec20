"""Faust (faust-streaming): the transform as an agent."""

import os

import faust

from common import transform

app = faust.App(
    os.environ["GROUP"],
    broker="kafka://" + os.environ["BROKERS"],
    consumer_auto_offset_reset="earliest",
    topic_partitions=3,
    web_enabled=False,
)
source = app.topic("in", value_serializer="raw", key_serializer="raw")
sink = app.topic(os.environ["OUT"], value_serializer="raw", key_serializer="raw")


@app.agent(source)
async def run(stream):
    async for key, value in stream.items():
        out = transform(value)
        if out is not None:
            await sink.send(key=key, value=out)


if __name__ == "__main__":
    app.main()
