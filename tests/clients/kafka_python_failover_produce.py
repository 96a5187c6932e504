#!/usr/bin/env python3
"""kafka-python 3.x producing through a leader failover, printed as JSON.

Usage: python3 tests/clients/kafka_python_failover_produce.py BOOTSTRAP TOPIC COUNT SIGNAL_AFTER [TIMEOUT_S]

With an idempotent acks=all producer: send COUNT records "seq-NNNNNNNN" to
partition 0 of TOPIC, a few milliseconds apart. Once the first SIGNAL_AFTER
are acknowledged, print the line "acknowledged SIGNAL_AFTER" (the caller
kills the partition's leader then) and keep sending. Then wait for every
delivery report, read partition 0 from the beginning to its end offset with
a consumer that has no group, and print one JSON object:
{"acknowledged": [[seq, offset]...], "failed": [[seq, error]...],
 "consumed": [[offset, value]...], "end_offset": N}.
Exits 1 (with the error on stderr) on any failure or after TIMEOUT_S
(default 120).
"""
import json
import logging
import os
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

PARTITION = 0
# One record every SEND_INTERVAL_S: the sending spans the failover.
SEND_INTERVAL_S = 0.002


def main():
    if not 5 <= len(sys.argv) <= 6:
        print("usage: kafka_python_failover_produce.py BOOTSTRAP TOPIC COUNT SIGNAL_AFTER [TIMEOUT_S]",
              file=sys.stderr)
        sys.exit(2)
    bootstrap, topic = sys.argv[1], sys.argv[2]
    count, signal_after = int(sys.argv[3]), int(sys.argv[4])
    timeout_s = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    logging.basicConfig(level=logging.CRITICAL)

    def give_up():
        print(f"error: not done with {bootstrap} within {timeout_s:g}s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()

    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="eddy-e2e-kafka-python-failover",
                             acks="all", enable_idempotence=True, linger_ms=5,
                             request_timeout_ms=5000, delivery_timeout_ms=int(timeout_s * 1000 / 2),
                             metadata_max_age_ms=1000, retry_backoff_ms=50,
                             reconnect_backoff_ms=50, reconnect_backoff_max_ms=500)
    futures = []
    for sequence in range(count):
        futures.append(producer.send(topic, partition=PARTITION, value=f"seq-{sequence:08d}".encode()))
        if sequence + 1 == signal_after:
            for future in futures:
                future.get(timeout=timeout_s / 2)
            print(f"acknowledged {signal_after}", flush=True)
        time.sleep(SEND_INTERVAL_S)
    producer.flush(timeout=timeout_s / 2)
    acknowledged, failed = [], []
    for sequence, future in enumerate(futures):
        try:
            acknowledged.append([sequence, future.get(timeout=1).offset])
        except KafkaError as error:
            failed.append([sequence, f"{type(error).__name__}: {error}"])
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="eddy-e2e-kafka-python-failover",
                             group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                             request_timeout_ms=5000)
    partition = TopicPartition(topic, PARTITION)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    end_offset = consumer.end_offsets([partition])[partition]
    consumed = []
    while consumer.position(partition) < end_offset:
        for records in consumer.poll(timeout_ms=200).values():
            consumed.extend([r.offset, r.value.decode()] for r in records)
    consumer.close()

    out = {"acknowledged": acknowledged, "failed": failed, "consumed": consumed, "end_offset": end_offset}
    json.dump(out, sys.stdout, separators=(",", ":"))
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line instead of a traceback
        msg = str(e) if isinstance(e, KafkaError) else f"{type(e).__name__}: {e}"
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(1)
