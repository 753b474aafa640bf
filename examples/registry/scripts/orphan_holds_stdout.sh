#!/bin/sh
# A background grandchild inherits stdout and would keep the pipe open for a minute.
( sleep 60 ) &
sleep 60
