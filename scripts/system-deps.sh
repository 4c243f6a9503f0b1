#!/usr/bin/env bash
# Debian packages the test suite drives for real: chromium for the browser tests,
# Ruby with Rails, Puma and sqlite3 for the Rails example's integration test.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ruby >/dev/null 2>&1 || need+=(ruby)
ruby -e 'require "rails"' >/dev/null 2>&1 || need+=(ruby-rails)
command -v puma >/dev/null 2>&1 || need+=(puma)
ruby -e 'require "sqlite3"' >/dev/null 2>&1 || need+=(ruby-sqlite3)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]} (run: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
