#!/bin/sh
# setsid moves the child into a new session and process group: killing the group misses it.
setsid sh -c 'echo $$ > "${METACLAUDE_PIDFILE:-/dev/null}"; sleep 60' &
sleep 60
