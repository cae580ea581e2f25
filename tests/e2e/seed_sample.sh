#!/usr/bin/env bash
# Runs the seed's Python sample (python3 with requests, from Debian) against the real daemon.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_daemon
/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/seed_sample.py"
stop_daemon
