#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) are present, so
# that the tests can start their own throwaway cluster (tests/pg_server.py). Installs
# the Debian/Ubuntu `postgresql` package only when they are missing; starts nothing.
#
# With WASTORE_TEST_POSTGRES_URL set, the tests use that server instead and this
# script has nothing to do.
set -euo pipefail

if [ -n "${WASTORE_TEST_POSTGRES_URL:-}" ]; then
    echo "pg.sh: WASTORE_TEST_POSTGRES_URL is set; the tests use that server"
    exit 0
fi

find_bindir() {
    if [ -n "${WASTORE_PG_BINDIR:-}" ] && [ -x "$WASTORE_PG_BINDIR/initdb" ]; then
        echo "$WASTORE_PG_BINDIR"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if ! bindir=$(find_bindir); then
    echo "pg.sh: no PostgreSQL server binaries found; installing the postgresql package"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "pg.sh: apt-get is not available: install the PostgreSQL server (initdb, pg_ctl)" \
             "or set WASTORE_TEST_POSTGRES_URL" >&2
        exit 1
    fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # The package's own cluster is not needed: the tests create theirs.
    $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir=$(find_bindir) || { echo "pg.sh: installed, but initdb is still missing" >&2; exit 1; }
fi

# initdb refuses to run as root: the tests then run it as the postgres user.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "pg.sh: running as root without a 'postgres' user to run initdb as" >&2
    exit 1
fi

echo "pg.sh: PostgreSQL server binaries in $bindir ($("$bindir/postgres" --version))"
