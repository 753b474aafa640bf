#!/bin/sh
# Ignores SIGTERM: the host must follow up with SIGKILL after its grace period.
trap '' TERM
echo "ignoring SIGTERM"
sleep 30 &
wait
sleep 30
