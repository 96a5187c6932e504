#!/usr/bin/env python3
"""Two kafka-python 3.x group members sharing a topic, printed as JSON.

Usage: python3 tests/clients/kafka_python_group.py BOOTSTRAP TOPIC GROUP [RECORDS] [TIMEOUT_S]

Starts two members of GROUP (threads, one KafkaConsumer each, subscribed to
the existing TOPIC) and waits until their assignments cover the topic
between them. Then produces RECORDS (default 200) records, record N with
value `record N` to partition N mod the partition count, and consumes until
all have arrived; each member commits synchronously after every poll that
returned records. Prints both members' assignments, every record consumed,
and the committed offsets as the admin client reads them. Exits 1 (with the
error on stderr) on any failure or after TIMEOUT_S (default 60).
"""
import json
import logging
import os
import sys
import threading
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

MEMBERS = 2


class Shared:
    """What the member threads report to the main thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.assignments = [[] for _ in range(MEMBERS)]
        self.consumed = [[] for _ in range(MEMBERS)]
        self.errors = []


def member(index, bootstrap, topic, group, step_ms, shared):
    try:
        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, client_id=f"kafka-python-{index}",
                                 group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                                 session_timeout_ms=6000, heartbeat_interval_ms=500,
                                 request_timeout_ms=step_ms)
        try:
            while not shared.stop.is_set():
                batches = consumer.poll(timeout_ms=100)
                records = [[r.partition, r.offset, r.value.decode()] for rs in batches.values() for r in rs]
                with shared.lock:
                    shared.assignments[index] = sorted(tp.partition for tp in consumer.assignment())
                    shared.consumed[index].extend(records)
                if records:
                    consumer.commit()
        finally:
            consumer.close()
    except Exception as e:  # reported by the main thread
        with shared.lock:
            shared.errors.append(f"member {index}: {type(e).__name__}: {e}")


def wait_for(condition, deadline, what):
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def main():
    if not 4 <= len(sys.argv) <= 6:
        print("usage: kafka_python_group.py BOOTSTRAP TOPIC GROUP [RECORDS] [TIMEOUT_S]", file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, group = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    timeout_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    logging.basicConfig(level=logging.CRITICAL)

    # Hard deadline: the client's own timeouts cover each step, not the sum.
    def give_up():
        print(f"error: not done with {bootstrap} within {timeout_s:g}s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()
    step_ms = int(timeout_s * 1000 / 4)
    deadline = time.monotonic() + timeout_s * 3 / 4

    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="kafka-python-producer",
                             request_timeout_ms=step_ms)
    partitions = sorted(producer.partitions_for(topic))
    shared = Shared()
    threads = [threading.Thread(target=member, args=(index, bootstrap, topic, group, step_ms, shared))
               for index in range(MEMBERS)]
    for thread in threads:
        thread.start()

    def snapshot():
        with shared.lock:
            if shared.errors:
                raise RuntimeError("; ".join(shared.errors))
            return [list(a) for a in shared.assignments], sum(len(c) for c in shared.consumed)

    def covered():
        assignments, _ = snapshot()
        return all(assignments) and sorted(p for a in assignments for p in a) == partitions

    try:
        wait_for(covered, deadline, "the members never shared the topic's partitions")
        futures = [producer.send(topic, partition=partitions[i % len(partitions)], key=f"key-{i}".encode(),
                                 value=f"record {i}".encode()) for i in range(count)]
        producer.flush(timeout=step_ms / 1000)
        for future in futures:
            future.get(timeout=step_ms / 1000)
        wait_for(lambda: snapshot()[1] >= count, deadline, "the members did not consume every record")
        assignments, _ = snapshot()
    finally:
        shared.stop.set()
        for thread in threads:
            thread.join()
        producer.close()
    if shared.errors:
        raise RuntimeError("; ".join(shared.errors))

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python-admin",
                             request_timeout_ms=step_ms)
    committed = admin.list_group_offsets(group)[group]
    admin.close()

    out = {
        "client": "kafka-python",
        "client_version": kafka.__version__,
        "assignments": assignments,
        "consumed": [record for records in shared.consumed for record in records],
        "consumed_by_member": [len(records) for records in shared.consumed],
        "committed": {str(tp.partition): oam.offset for tp, oam in sorted(committed.items())},
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line instead of a traceback
        msg = str(e) if isinstance(e, KafkaError) else f"{type(e).__name__}: {e}"
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(1)
