#!/bin/sh
# Transient failure: EX_TEMPFAIL (75) on the first two attempts.
if [ "${METACLAUDE_ATTEMPT:-1}" -lt 3 ]; then
  echo "service unavailable, try again later (attempt $METACLAUDE_ATTEMPT)" >&2
  exit 75
fi
echo "succeeded on attempt $METACLAUDE_ATTEMPT"
