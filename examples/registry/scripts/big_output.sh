#!/bin/sh
echo "first line"
head -c 8388608 /dev/zero | tr '\0' 'x'
echo
echo "last line" >&1
