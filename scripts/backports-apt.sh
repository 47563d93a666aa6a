#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# backports-apt.sh - apt-get or apt-cache against this release's backports (Valkey 8 on Debian 12), with private
# apt state in the project's cache: scripts/suite-apt.sh backports.
#
# usage: scripts/backports-apt.sh apt-get|apt-cache ARGS...
exec "$(dirname "$0")/suite-apt.sh" backports "$@"
