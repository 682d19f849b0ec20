"""Bytewax: the transform as a dataflow between its Kafka connectors."""

import os

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow

from common import transform

brokers = [os.environ["BROKERS"]]
flow = Dataflow("peers")
messages = op.input("in", flow, KafkaSource(brokers, ["in"], tail=True))


def step(m):
    value = transform(m.value)
    return None if value is None else KafkaSinkMessage(m.key, value)


out = op.filter_map("transform", messages, step)
op.output("out", out, KafkaSink(brokers, os.environ["OUT"]))
