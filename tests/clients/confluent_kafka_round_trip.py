#!/usr/bin/env python3
"""confluent-kafka (librdkafka 2.16) through a topic's whole life, printed as JSON.

Usage: python3 tests/clients/confluent_kafka_round_trip.py BOOTSTRAP TOPIC [RECORDS] [TIMEOUT_S]

With the admin client: create TOPIC (2 partitions, retention.ms=86400000),
describe its configs, raise retention.ms incrementally to 3600000 and
describe again. With an idempotent, zstd-compressing producer: produce
RECORDS (default 200) keyed records with a header to partition 1. With a
consumer that assigns partition 1 and never commits (librdkafka wants a
group.id for that, but uses no group API): read from the beginning to the
end. Then delete the topic and list topics. Prints one JSON object on
stdout; exits 1 (with the error on stderr) on any failure or after
TIMEOUT_S (default 60).
"""
import json
import os
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                  NewTopic, ResourceType)

PARTITION = 1


def describe(admin, topic, timeout_s):
    """The topic's configs as {name: [value, source]}."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=timeout_s)[resource].result(timeout_s)
    return {name: [entry.value, ConfigSource(entry.source).name] for name, entry in entries.items()}


def main():
    if not 3 <= len(sys.argv) <= 5:
        print("usage: confluent_kafka_round_trip.py BOOTSTRAP TOPIC [RECORDS] [TIMEOUT_S]", file=sys.stderr)
        sys.exit(2)
    bootstrap, topic = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    timeout_s = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0

    # Hard deadline: the client's own timeouts cover each step, not the sum.
    def give_up():
        print(f"error: not done with {bootstrap} within {timeout_s:g}s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()
    step_s = timeout_s / 4
    common = {"bootstrap.servers": bootstrap, "client.id": "eddy-e2e-confluent-kafka"}
    out = {"client": "confluent-kafka", "client_version": confluent_kafka.version()[0],
           "librdkafka_version": confluent_kafka.libversion()[0]}

    admin = AdminClient(common)
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=2, replication_factor=1, config={"retention.ms": "86400000"})],
        request_timeout=step_s)
    out["created"] = [name for name, future in futures.items() if future.result(step_s) is None]
    metadata = admin.list_topics(topic=topic, timeout=step_s)
    out["partitions"] = sorted(metadata.topics[topic].partitions)
    out["configs_before"] = describe(admin, topic, step_s)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource], request_timeout=step_s).values():
        future.result(step_s)
    out["configs_after"] = describe(admin, topic, step_s)

    producer = Producer({**common, "enable.idempotence": True, "acks": "all", "compression.type": "zstd",
                         "linger.ms": 5})
    delivered, failed = {}, []

    def on_delivery(index):
        def report(error, message):
            if error is not None:
                failed.append(str(error))
            else:
                delivered[index] = message.offset()
        return report

    for i in range(count):
        producer.produce(topic, partition=PARTITION, key=f"key-{i}", value=f"confluent-kafka record {i}",
                         headers=[("index", str(i).encode())], on_delivery=on_delivery(i))
    remaining = producer.flush(step_s)
    if remaining or failed:
        raise RuntimeError(f"{remaining} records undelivered, failures: {failed[:3]}")
    out["produced_offsets"] = [delivered[i] for i in range(count)]

    consumer = Consumer({**common, "group.id": "eddy-e2e-assign-only", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, PARTITION, OFFSET_BEGINNING)])
    consumed = []
    deadline = time.monotonic() + step_s
    while time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                break
            raise RuntimeError(f"consuming: {message.error()}")
        consumed.append([message.offset(), message.key().decode(), message.value().decode(),
                         [[k, v.decode()] for k, v in message.headers() or []]])
    out["end_offset"] = consumer.get_watermark_offsets(TopicPartition(topic, PARTITION), timeout=step_s)[1]
    consumer.close()
    out["consumed"] = consumed

    futures = admin.delete_topics([topic], request_timeout=step_s)
    out["deleted"] = [name for name, future in futures.items() if future.result(step_s) is None]
    out["topics_after_delete"] = sorted(admin.list_topics(timeout=step_s).topics)

    json.dump(out, sys.stdout, separators=(",", ":"))
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line instead of a traceback
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
