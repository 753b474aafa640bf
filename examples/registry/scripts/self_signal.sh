#!/bin/sh
echo "sending myself SIGUSR1"
kill -USR1 $$
sleep 5
