#!/bin/sh
echo "about to run a tool that is not installed"
metaclaude-example-missing-command --version
