#!/bin/sh
# Greets someone. Inputs arrive as --name value (booleans as a bare --flag).
name=world times=1 shout=no
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --times) times=$2; shift 2 ;;
    --shout) shout=yes; shift ;;
    *) echo "unknown argument: $1" >&2; exit 64 ;;
  esac
done
i=0
while [ "$i" -lt "$times" ]; do
  if [ "$shout" = yes ]; then echo "HELLO, $(echo "$name" | tr a-z A-Z)!"; else echo "Hello, $name!"; fi
  i=$((i + 1))
done
