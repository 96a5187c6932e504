#!/usr/bin/env python3
"""kafka-python 3.x's admin view of consumer groups, printed as JSON.

Usage: python3 tests/clients/kafka_python_group_admin.py BOOTSTRAP TOPIC GROUP SIMPLE_GROUP [TIMEOUT_S]

GROUP is a live group consuming TOPIC (3 partitions); SIMPLE_GROUP does not
exist yet. With the admin client: set SIMPLE_GROUP's offsets on TOPIC to 7,
3 and 9 (OffsetCommit with no member, the path for an empty group), and try
the same on GROUP; list groups, then only the Stable ones; describe both
groups (members decoded) and one that never existed; read both groups'
committed offsets and compute their lag from the end offsets; delete an
offset of GROUP (subscribed to TOPIC: refused) and SIMPLE_GROUP's offset of
partition 1, and read its offsets again; delete both groups (the live one
must refuse) and list groups again.
Prints one JSON object on stdout; exits 1 (with the error on stderr) on any
failure or after TIMEOUT_S (default 60).
"""
import json
import logging
import os
import sys
import threading

import kafka
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

PARTITIONS = 3
SIMPLE_OFFSETS = {0: 7, 1: 3, 2: 9}


def by_partition(offsets):
    """{TopicPartition: OffsetAndMetadata} as {"partition": offset}."""
    return {str(tp.partition): oam.offset for tp, oam in sorted(offsets.items())}


def listed(groups):
    return sorted(({"group_id": g["group_id"], "protocol_type": g["protocol_type"], "state": g.get("group_state")}
                   for g in groups), key=lambda g: g["group_id"])


def as_json(value):
    """Bytes (user data, unparsed metadata) as hex; anything else by its repr."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return repr(value)


def main():
    if not 5 <= len(sys.argv) <= 6:
        print("usage: kafka_python_group_admin.py BOOTSTRAP TOPIC GROUP SIMPLE_GROUP [TIMEOUT_S]",
              file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, group, simple = sys.argv[1:5]
    timeout_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    logging.basicConfig(level=logging.CRITICAL)

    # Hard deadline: the client's own timeouts cover each step, not the sum.
    def give_up():
        print(f"error: not done with {bootstrap} within {timeout_s:g}s", file=sys.stderr)
        os._exit(1)

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="eddy-e2e-kafka-python-admin",
                             request_timeout_ms=int(timeout_s * 1000 / 4))
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    out = {"client": "kafka-python", "client_version": kafka.__version__}

    altered = admin.alter_group_offsets(
        simple, {TopicPartition(topic, p): OffsetAndMetadata(offset, "", None) for p, offset in SIMPLE_OFFSETS.items()})
    out["altered"] = {str(tp.partition): error.__name__ for tp, error in sorted(altered.items())}
    altered_live = admin.alter_group_offsets(group, {TopicPartition(topic, 0): OffsetAndMetadata(0, "", None)})
    out["altered_live"] = {str(tp.partition): error.__name__ for tp, error in sorted(altered_live.items())}
    out["listed"] = listed(admin.list_groups())
    out["listed_stable"] = sorted(g["group_id"] for g in admin.list_groups(states_filter=["Stable"]))
    out["described"] = admin.describe_groups([group, simple])
    out["described_unknown"] = admin.describe_groups(["never-existed"])["never-existed"]

    offsets = admin.list_group_offsets([group, simple])
    out["offsets"] = {g: by_partition(o) for g, o in offsets.items()}
    ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
    out["lag"] = {g: sum(ends[tp].offset - oam.offset for tp, oam in o.items()) for g, o in offsets.items()}

    deleted_live = admin.delete_group_offsets(group, [TopicPartition(topic, 0)])
    out["offsets_deleted_live"] = {str(tp.partition): error.__name__ for tp, error in sorted(deleted_live.items())}
    deleted_offsets = admin.delete_group_offsets(simple, [TopicPartition(topic, 1)])
    out["offsets_deleted"] = {str(tp.partition): error.__name__ for tp, error in sorted(deleted_offsets.items())}
    out["offsets_after_delete"] = by_partition(admin.list_group_offsets(simple)[simple])

    out["deleted"] = admin.delete_groups([group, simple])
    out["listed_after_delete"] = listed(admin.list_groups())
    admin.close()

    json.dump(out, sys.stdout, separators=(",", ":"), default=as_json)
    print()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line instead of a traceback
        msg = str(e) if isinstance(e, KafkaError) else f"{type(e).__name__}: {e}"
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(1)
