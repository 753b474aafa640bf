#!/bin/sh
# The shell itself is small; its child holds 200 MiB and burns about a second of CPU.
python3 - <<'PY'
import time
block = bytearray(200 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
# Burn until this process has used one second of CPU in all (allocation included), so
# the total is the same from run to run however busy the machine is.
x = 0
while time.process_time() < 1.0:
    x += 1
PY
echo done
