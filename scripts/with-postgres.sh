#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server and PEPPOL_TEST_POSTGRES_URL pointing at it.
#
#   scripts/with-postgres.sh pytest tests/store      # start, run, stop and delete the server
#   scripts/with-postgres.sh --check                 # exit 0 if the server binaries are installed
#   scripts/with-postgres.sh --install               # install them with apt (as root, or through sudo) if missing
#
# The test suite runs every database test on SQLite and on PostgreSQL; this is how `make test` provides the
# second one. An already set PEPPOL_TEST_POSTGRES_URL is used as it is (no server is started). The server
# lives in a temporary directory, listens on 127.0.0.1 on a free port, trusts local connections and runs
# without fsync: it holds test data only and is deleted at exit.
set -euo pipefail

find_bindir() {
    local initdb
    if initdb=$(command -v initdb 2>/dev/null) && [ -x "$(dirname "$initdb")/pg_ctl" ]; then
        dirname "$(readlink -f "$initdb")"
        return
    fi
    # Debian/Ubuntu keep the server binaries off PATH, one directory per major version: take the newest
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
        return
    fi
    return 1
}

if [ "${1:-}" = "--check" ]; then
    find_bindir >/dev/null
    exit $?
fi
if [ "${1:-}" = "--install" ]; then
    find_bindir >/dev/null && exit 0
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            SUDO=(sudo)
        else
            echo "with-postgres.sh: the PostgreSQL tests need the PostgreSQL server; install it as root:" \
                 "apt-get install postgresql" >&2
            exit 1
        fi
    fi
    echo "with-postgres.sh: installing the PostgreSQL server with apt (once)" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends postgresql
    exit 0
fi
if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]   or   $0 --check" >&2
    exit 2
fi
if [ -n "${PEPPOL_TEST_POSTGRES_URL:-}" ]; then
    exec "$@"
fi

if ! BINDIR=$(find_bindir); then
    echo "with-postgres.sh: the PostgreSQL tests need the PostgreSQL server: apt-get install postgresql" \
         "(or set PEPPOL_TEST_POSTGRES_URL to a server you run)" >&2
    exit 1
fi

# PostgreSQL refuses to run as root: as root, run the server as the postgres user the package created.
AS=()
if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "with-postgres.sh: running as root and there is no 'postgres' user to run the server as" >&2
        exit 1
    fi
    runuser=$(command -v runuser || ls /usr/sbin/runuser /sbin/runuser 2>/dev/null | head -n 1)
    if [ -z "$runuser" ]; then
        echo "with-postgres.sh: running as root and runuser (util-linux) is missing" >&2
        exit 1
    fi
    AS=("$runuser" -u postgres --)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/peppol-pg.XXXXXX")
if [ ${#AS[@]} -gt 0 ]; then
    chown postgres "$WORK"
fi
DATA="$WORK/data"

cleanup() {
    "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 || {
    cat "$WORK/initdb.log" >&2
    echo "with-postgres.sh: initdb failed (log above)" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The port is free when chosen but could be taken before the server binds it: try a few times.
started=""
for _ in 1 2 3 4 5; do
    PORT=$(free_port)
    if "${AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $WORK -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=200" start >/dev/null; then
        started=1
        break
    fi
done
if [ -z "$started" ]; then
    cat "$WORK/server.log" >&2 || true
    echo "with-postgres.sh: PostgreSQL did not start (server log above)" >&2
    exit 1
fi

# The tests create and drop one database per test next to this administrative one.
export PEPPOL_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres.sh: PostgreSQL $("$BINDIR/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
status=0
"$@" || status=$?
exit $status
