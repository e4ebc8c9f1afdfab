#!/usr/bin/env bash
# Installs what the peer benchmarks of `just bench` need, idempotently (a second run changes
# nothing and takes about a second):
#   wrk       the HTTP load tool (Debian package `wrk`, 4.1.0 on bookworm; a C binary, no Rust build)
#   pgbench   runs the hand-written SQL limit (Debian: part of `postgresql-15`, with the server)
#   psql      loads the data (`postgresql-client`)
#   jq, curl  check responses and read results
#   node/npm  and PostGraphile 4.14.1 from bench/postgraphile/package-lock.json (`npm ci`)
# Exits non-zero naming the tool that is missing and could not be installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(dirname "$here")"

log() { printf 'install-tools: %s\n' "$*" >&2; }
die() { printf 'install-tools: FAILED: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
    local runner=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to apt-get install $*"
        runner=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "no apt-get to install $*; install it by hand"
    if ! "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; then
        [ "$apt_updated" -eq 0 ] || die "apt-get install $* failed"
        log "apt-get update (first install attempt failed)"
        "${runner[@]}" apt-get update -q >&2 || die "apt-get update failed"
        apt_updated=1
        "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
            || die "apt-get install $* failed"
    fi
}

# tool, Debian package that provides it
need() {
    local tool="$1" package="$2"
    if command -v "$tool" >/dev/null 2>&1 && "$tool" --version >/dev/null 2>&1; then
        return 0
    fi
    log "$tool missing: installing Debian package $package"
    apt_install "$package"
    command -v "$tool" >/dev/null 2>&1 || die "$tool still missing after installing $package"
}

# wrk --version prints its banner and exits 1, so it gets its own check.
if ! command -v wrk >/dev/null 2>&1; then
    log "wrk missing: installing Debian package wrk"
    apt_install wrk
    command -v wrk >/dev/null 2>&1 || die "wrk still missing after installing the wrk package"
fi
need curl curl
need jq jq
need psql postgresql-client
# /usr/bin/pgbench is Debian's wrapper; the binary comes with the server package.
if ! pgbench --version >/dev/null 2>&1; then
    log "pgbench missing or not runnable: installing postgresql (server package ships pgbench)"
    apt_install postgresql
    pgbench --version >/dev/null 2>&1 || die "pgbench still missing after installing postgresql"
fi
need node nodejs
need npm npm

# PostGraphile, exactly the locked tree; `npm ci` only when the installed version differs.
wanted="$(jq -r '.packages["node_modules/postgraphile"].version' "$bench/postgraphile/package-lock.json")"
[ -n "$wanted" ] && [ "$wanted" != null ] || die "bench/postgraphile/package-lock.json names no postgraphile version"
installed="$(jq -r .version "$bench/postgraphile/node_modules/postgraphile/package.json" 2>/dev/null || true)"
if [ "$installed" != "$wanted" ]; then
    log "PostGraphile ${installed:-absent} != $wanted: npm ci in bench/postgraphile"
    (cd "$bench/postgraphile" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in bench/postgraphile failed"
    installed="$(jq -r .version "$bench/postgraphile/node_modules/postgraphile/package.json")"
    [ "$installed" = "$wanted" ] || die "PostGraphile is $installed after npm ci, expected $wanted"
fi

log "ok: $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2), $(pgbench --version), $(psql --version), node $(node --version), postgraphile $installed"
