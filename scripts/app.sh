#!/usr/bin/env bash
echo "Nothing to launch yet: today Eddy is only its Kafka wire codec (crates/protocol)." >&2
echo "The broker, the local cluster and the desktop app arrive later." >&2
exit 1
