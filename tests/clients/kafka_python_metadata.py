#!/usr/bin/env python3
"""Fetch cluster metadata with kafka-python 3.x and print it as JSON.

Usage: python3 tests/clients/kafka_python_metadata.py BOOTSTRAP [TIMEOUT_S]

Prints one JSON object on stdout; exits 1 (with the error on stderr) if the
cluster cannot be reached or answers with an error within TIMEOUT_S (default 20).
"""
import json
import logging
import os
import sys
import threading

import kafka
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: kafka_python_metadata.py BOOTSTRAP [TIMEOUT_S]", file=sys.stderr)
        sys.exit(2)
    bootstrap = sys.argv[1]
    timeout_s = float(sys.argv[2]) if len(sys.argv) == 3 else 20.0
    logging.basicConfig(level=logging.CRITICAL)

    # Hard deadline: the client's own timeouts cover each step, not the sum.
    def give_up():
        print(f"error: no answer from {bootstrap} within {timeout_s:g}s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()

    step_ms = int(timeout_s * 1000 / 2)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="eddy-test-kafka-python",
        bootstrap_timeout_ms=step_ms,
        request_timeout_ms=step_ms,
    )
    try:
        # DescribeCluster if the broker advertises it, else Metadata with no topics.
        cluster = admin.describe_cluster()
        # Metadata request with topics=null: all topics.
        topics = admin.describe_topics()
    finally:
        admin.close()

    out = {
        "client": "kafka-python",
        "client_version": kafka.__version__,
        "cluster_id": cluster.get("cluster_id"),
        "controller_id": cluster.get("controller_id"),
        "brokers": sorted(
            ({"node_id": b["broker_id"], "host": b["host"], "port": b["port"], "rack": b.get("rack")}
             for b in cluster["brokers"]),
            key=lambda b: b["node_id"],
        ),
        "topics": sorted(
            ({
                "name": t["name"],
                "partitions": sorted(
                    ({
                        "partition": p["partition_index"],
                        "error_code": p["error_code"],
                        "leader": p["leader_id"],
                        "replicas": p["replica_nodes"],
                        "isr": p["isr_nodes"],
                    } for p in t["partitions"]),
                    key=lambda p: p["partition"],
                ),
            } for t in topics),
            key=lambda t: t["name"],
        ),
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line instead of a traceback
        # str() of a KafkaError already starts with its class name.
        msg = str(e) if isinstance(e, KafkaError) else f"{type(e).__name__}: {e}"
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(1)
