#!/usr/bin/env python3
"""A confluent-kafka 2.x group consumer (librdkafka 2.16), printed as JSON.

Usage: python3 tests/clients/confluent_kafka_group.py BOOTSTRAP TOPIC GROUP COUNT [TIMEOUT_S]

Subscribes to TOPIC as a member of GROUP (from the earliest offset when the
group has committed nothing), consumes COUNT records, committing each one
synchronously after reading it, then reads the group's committed offsets and
closes (leaving the group). Prints every record consumed and the committed
offsets. Exits 1 (with the error on stderr) on any failure or after
TIMEOUT_S (default 60).
"""
import json
import os
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    if not 5 <= len(sys.argv) <= 6:
        print("usage: confluent_kafka_group.py BOOTSTRAP TOPIC GROUP COUNT [TIMEOUT_S]", file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, group = sys.argv[1:4]
    count = int(sys.argv[4])
    timeout_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0

    # Hard deadline: the client's own timeouts cover each step, not the sum.
    def give_up():
        print(f"error: not done with {bootstrap} within {timeout_s:g}s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "confluent-kafka-member",
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })
    consumer.subscribe([topic])
    consumed = []
    deadline = time.monotonic() + timeout_s * 3 / 4
    try:
        while len(consumed) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumed {len(consumed)} of {count} records")
            message = consumer.poll(0.1)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            consumed.append([message.partition(), message.offset(), message.value().decode()])
            consumer.commit(message=message, asynchronous=False)
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in sorted(partitions)], timeout=10)
    finally:
        consumer.close()

    out = {
        "client": "confluent-kafka",
        "client_version": confluent_kafka.version()[0],
        "librdkafka_version": confluent_kafka.libversion()[0],
        "consumed": consumed,
        "committed": {str(tp.partition): tp.offset for tp in committed},
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line instead of a traceback
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
