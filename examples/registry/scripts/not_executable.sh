#!/bin/sh
echo "this file deliberately has no execute bit"
