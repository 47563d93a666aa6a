#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# trixie-apt.sh - apt-get or apt-cache against Debian 13 (trixie), binaries and sources, with private
# apt state in the project's cache: scripts/suite-apt.sh trixie.
#
# usage: scripts/trixie-apt.sh apt-get|apt-cache ARGS...
exec "$(dirname "$0")/suite-apt.sh" trixie "$@"
