#!/bin/sh
# Inputs arrive as environment variables; HOME and other host variables do not.
echo "$GREETING from $METACLAUDE_INPUT_REGION with $REPLICAS replicas (HOME=${HOME:-unset})"
