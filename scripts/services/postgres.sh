# shellcheck shell=bash
# PostgreSQL from the Debian package postgresql: one server on 127.0.0.1:5432 with a user "topsellers"
# (password "topsellers") owning a database "topsellers". Runs as the Debian "postgres" user (PostgreSQL
# refuses to run as root). Sourced by scripts/services.sh after common.sh.

POSTGRES_RUN="$RUN_HOME/postgres"
POSTGRES_USER_NAME="topsellers"
POSTGRES_URL="postgres://topsellers:topsellers@127.0.0.1:5432/topsellers"

# The newest installed server's bin folder (/usr/lib/postgresql/15/bin on Debian 12).
postgres_bin() {
  local bin
  bin="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$bin" && -x "$bin/postgres" ]] || return 1
  echo "$bin"
}

postgres_install() {
  if postgres_bin >/dev/null && command -v psql >/dev/null; then
    step "PostgreSQL already installed ($("$(postgres_bin)/postgres" --version))"
  else
    apt_install postgresql
  fi
}

# as_postgres CMD...: run a command as the "postgres" user, in place (exec, same pid: no su/runuser wrapper
# process between services.sh and the server).
as_postgres() {
  setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
}

postgres_accepts() {
  "$(postgres_bin)/pg_isready" -q -h 127.0.0.1 -p 5432
}

postgres_start() {
  postgres_bin >/dev/null || postgres_install
  id postgres >/dev/null 2>&1 || die "no 'postgres' system user (it comes with the Debian package postgresql)"
  postgres_stop
  port_free_or_die 127.0.0.1 5432 "postgres"
  local dir="$POSTGRES_RUN/node-1" bin
  bin="$(postgres_bin)"
  rm -rf "$dir"
  mkdir -p "$dir/data"
  chown postgres:postgres "$dir/data"
  chmod 700 "$dir/data"
  as_postgres test -w "$dir/data" ||
    die "the 'postgres' user cannot reach $dir/data: every parent folder of the repository needs o+x"
  step "initdb: a new PostgreSQL $("$bin/postgres" --version | grep -o '[0-9][0-9.]*' | head -n1) cluster in ${dir#"$ROOT"/}/data"
  # --no-sync: nothing to make durable yet. C locale: same sorting everywhere, no locale package needed.
  # --auth=trust only until pg_hba.conf is replaced just below.
  run_logged "$dir/initdb.log" as_postgres "$bin/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --locale=C \
    --auth=trust --no-sync
  install -o postgres -g postgres -m 600 "$SERVICES_SRC/postgres/pg_hba.conf" "$dir/data/pg_hba.conf"
  step "starting PostgreSQL on 127.0.0.1:5432 (log: ${dir#"$ROOT"/}/server.log)"
  # TCP on 127.0.0.1 only and no Unix socket (its path would depend on where the repository lies, and
  # /var/run/postgresql belongs to the package's own cluster). fsync=off: a test server need not survive a
  # power cut, and commits are faster (data still reaches the OS, so a killed server loses nothing).
  chown postgres:postgres "$dir"
  start_daemon "$dir" setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/postgres" -D "$dir/data" \
    -c listen_addresses=127.0.0.1 -c port=5432 -c unix_socket_directories= \
    -c fsync=off -c full_page_writes=off -c logging_collector=off
  wait_ready "PostgreSQL 127.0.0.1:5432" "$dir" postgres_accepts
  step "creating user and database $POSTGRES_USER_NAME"
  run_logged "$dir/setup.log" psql -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres -d postgres \
    -c "CREATE ROLE $POSTGRES_USER_NAME LOGIN CREATEDB PASSWORD '$POSTGRES_USER_NAME'" \
    -c "CREATE DATABASE $POSTGRES_USER_NAME OWNER $POSTGRES_USER_NAME"
}

postgres_stop() {
  # SIGINT is PostgreSQL's "fast" shutdown: open sessions are ended (SIGTERM waits for every client to leave).
  stop_instance "$POSTGRES_RUN/node-1" "PostgreSQL 127.0.0.1:5432" 30 INT
}

postgres_status() {
  if pid_alive "$POSTGRES_RUN/node-1"; then
    echo "postgres   running  127.0.0.1:5432 (pid $(cat "$POSTGRES_RUN/node-1/pid"))"
  else
    echo "postgres   stopped"
  fi
}

postgres_env() {
  if pid_alive "$POSTGRES_RUN/node-1"; then echo "export TOPSELLERS_TEST_POSTGRES=$POSTGRES_URL"; fi
}
