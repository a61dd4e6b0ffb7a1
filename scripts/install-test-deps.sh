#!/usr/bin/env bash
# Installs what the tests and benchmarks need, once: PostgreSQL server
# binaries, restic, zstd, attr, acl, libcap2-bin and prometheus (Debian packages) and Garage (cargo install).
# Idempotent: whatever is already there is left alone. Runnable from any
# directory, as root or as a user with sudo.
set -euo pipefail

GARAGE_VERSION=2.5.0
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

log() { echo "install-test-deps: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    fi
fi

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        "${SUDO[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 \
        apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# PostgreSQL server binaries (initdb, pg_ctl, postgres, psql, pg_dump, ...).
# The tests start their own throwaway clusters: no system cluster is made.
shopt -s nullglob
initdbs=(/usr/lib/postgresql/*/bin/initdb)
shopt -u nullglob
if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then
    log "PostgreSQL: using PG_BIN=$PG_BIN"
elif [ "${#initdbs[@]}" -gt 0 ]; then
    log "PostgreSQL: found ${initdbs[*]}"
else
    "${SUDO[@]}" mkdir -p /etc/postgresql-common
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        echo "create_main_cluster = false" |
            "${SUDO[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    apt_install postgresql postgresql-client
fi

# restic and zstd, for the comparison benchmarks; setfattr (attr), setfacl
# (acl) and setcap (libcap2-bin) for the file fidelity tests; promtool and
# prometheus (prometheus) for the daemon's metrics tests; mkfs.ext4 and
# e2fsck (e2fsprogs) and mount for the power-loss tests' loop file systems.
for pair in restic:restic zstd:zstd setfattr:attr setfacl:acl setcap:libcap2-bin promtool:prometheus mkfs.ext4:e2fsprogs e2fsck:e2fsprogs mount:mount; do
    tool="${pair%%:*}"
    package="${pair##*:}"
    if command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ]; then
        log "$tool: found"
    else
        apt_install "$package"
    fi
done

# Garage, the S3 server of the tests (a 10-minute build on 2 cores, once).
if command -v garage >/dev/null 2>&1; then
    log "garage: found $(command -v garage) ($(garage --version 2>/dev/null | head -n1))"
elif [ -x "$CARGO_BIN/garage" ]; then
    log "garage: found $CARGO_BIN/garage ($("$CARGO_BIN/garage" --version 2>/dev/null | head -n1))"
else
    log "garage: cargo install garage --locked --version $GARAGE_VERSION (takes a while)"
    cargo install garage --locked --version "$GARAGE_VERSION"
fi

log "done"
