#!/usr/bin/env python3
"""kafka-python 3.x through a topic's whole life, printed as JSON.

Usage: python3 tests/clients/kafka_python_round_trip.py BOOTSTRAP TOPIC [RECORDS] [TIMEOUT_S]

With the admin client: create TOPIC (2 partitions, retention.ms=86400000),
describe its configs, raise retention.ms incrementally to 3600000 and
describe again. With an idempotent, gzip-compressing producer: produce
RECORDS (default 200) keyed records with a header to partition 1. With a
consumer that has no group: assign partition 1, read from the beginning.
Then delete the topic and list topics. Prints one JSON object on stdout;
exits 1 (with the error on stderr) on any failure or after TIMEOUT_S
(default 60).
"""
import json
import logging
import os
import sys
import threading
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, KafkaAdminClient
from kafka.errors import KafkaError

PARTITION = 1


def describe(admin, topic):
    """The topic's configs as {name: [value, source]} (every config, not only modified ones)."""
    described = admin.describe_configs([ConfigResource("TOPIC", topic)], config_filter="all")
    return {name: [c["value"], c["config_source"]] for name, c in described["topic"][topic].items()}


def main():
    if not 3 <= len(sys.argv) <= 5:
        print("usage: kafka_python_round_trip.py BOOTSTRAP TOPIC [RECORDS] [TIMEOUT_S]", file=sys.stderr)
        sys.exit(2)
    bootstrap, topic = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    timeout_s = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    logging.basicConfig(level=logging.CRITICAL)

    # Hard deadline: the client's own timeouts cover each step, not the sum.
    def give_up():
        print(f"error: not done with {bootstrap} within {timeout_s:g}s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()
    step_ms = int(timeout_s * 1000 / 4)
    out = {"client": "kafka-python", "client_version": kafka.__version__}

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="eddy-e2e-kafka-python",
                             request_timeout_ms=step_ms)
    created = admin.create_topics(
        {topic: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "86400000"}}})
    out["created"] = [{"name": t["name"], "error_code": t["error_code"]} for t in created["topics"]]
    out["partitions"] = sorted(p["partition_index"] for t in admin.describe_topics([topic])
                               for p in t["partitions"])
    out["configs_before"] = describe(admin, topic)
    altered = admin.alter_configs(
        [ConfigResource("TOPIC", topic, {"retention.ms": (AlterConfigOp.SET, "3600000")})], incremental=True)
    out["alter_result"] = altered["topic"][topic]
    out["configs_after"] = describe(admin, topic)

    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="eddy-e2e-kafka-python",
                             acks="all", enable_idempotence=True, compression_type="gzip", linger_ms=5,
                             request_timeout_ms=step_ms)
    futures = [
        producer.send(topic, partition=PARTITION, key=f"key-{i}".encode(), value=f"kafka-python record {i}".encode(),
                      headers=[("index", str(i).encode())])
        for i in range(count)
    ]
    producer.flush(timeout=step_ms / 1000)
    out["produced_offsets"] = [f.get(timeout=step_ms / 1000).offset for f in futures]
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="eddy-e2e-kafka-python", group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             request_timeout_ms=step_ms)
    partition = TopicPartition(topic, PARTITION)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    consumed = []
    deadline = time.monotonic() + step_ms / 1000
    while len(consumed) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            consumed.extend(
                [r.offset, r.key.decode(), r.value.decode(), [[k, v.decode()] for k, v in r.headers]]
                for r in records)
    out["end_offset"] = consumer.end_offsets([partition])[partition]
    consumer.close()
    out["consumed"] = consumed

    deleted = admin.delete_topics([topic])
    out["deleted"] = [{"name": t["name"], "error_code": t["error_code"]} for t in deleted["topics"]]
    out["topics_after_delete"] = sorted(admin.list_topics())
    admin.close()

    json.dump(out, sys.stdout, separators=(",", ":"))
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line instead of a traceback
        msg = str(e) if isinstance(e, KafkaError) else f"{type(e).__name__}: {e}"
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(1)
