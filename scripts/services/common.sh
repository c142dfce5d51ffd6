# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the files that source this one
# Shared helpers for scripts/services.sh and the per-service files beside this one.
# Sourced, not run. Everything downloaded or generated lives under $SERVICES_HOME (.services/ in the repo root).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_SRC="$ROOT/scripts/services"
SERVICES_HOME="$ROOT/.services"
RUN_HOME="$SERVICES_HOME/run"

# How long `start` waits for a service to become ready before giving up (seconds).
START_TIMEOUT="${START_TIMEOUT:-120}"

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
  printf 'services.sh: error: %s\n' "$*" >&2
  exit 1
}

# Show the end of a log on stderr, for a failure message.
show_log_tail() {
  local log="$1" lines="${2:-40}"
  if [[ -f "$log" ]]; then
    printf -- '---- last %s lines of %s ----\n' "$lines" "$log" >&2
    tail -n "$lines" "$log" >&2
    printf -- '---- end of %s ----\n' "$log" >&2
  else
    printf '(no log at %s)\n' "$log" >&2
  fi
}

# run_logged LOG CMD...: run a command with its output in LOG; on failure say which command failed and show the
# end of its log.
run_logged() {
  local log="$1"
  shift
  mkdir -p "$(dirname "$log")"
  if ! "$@" >"$log" 2>&1; then
    printf 'services.sh: error: command failed: %s\n' "$*" >&2
    printf 'services.sh: its log: %s\n' "$log" >&2
    show_log_tail "$log"
    exit 1
  fi
}

# ---------------------------------------------------------------------------------------------------------------
# Debian packages

APT_UPDATED=""
# apt_install PACKAGE...: install the packages that are missing (apt-get update once per run, only when needed).
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "needs root to install Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"
  mkdir -p "$SERVICES_HOME/logs"
  if [[ -z "$APT_UPDATED" ]]; then
    step "apt-get update (once, to install ${missing[*]})"
    run_logged "$SERVICES_HOME/logs/apt-update.log" apt-get update
    APT_UPDATED=1
  fi
  step "apt-get install ${missing[*]}"
  # Recommends would pull in extra daemons and docs; the services need none of them. RUNLEVEL=1: the packages'
  # own system services (redis-server, the postgresql "main" cluster) are not started on install, where they
  # would take the ports that services.sh starts its own servers on.
  run_logged "$SERVICES_HOME/logs/apt-install.log" \
    env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y --no-install-recommends "${missing[@]}"
}

# Java 17 (Kafka 4 and Cassandra 5 both run on it; Cassandra 5.0 does not run on 24+) and Maven for the jars.
need_java_and_maven() {
  if ! command -v java >/dev/null || ! java -version 2>&1 | grep -q 'version "17'; then
    if [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
      :
    else
      apt_install openjdk-17-jdk-headless
    fi
  fi
  command -v mvn >/dev/null || apt_install maven
}

# The Java 17 binary, whatever `java` on the PATH is (a path, not a function: daemons are exec'd).
java17_bin() {
  if [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
    echo /usr/lib/jvm/java-17-openjdk-amd64/bin/java
  else
    command -v java || die "no java: run scripts/services.sh install kafka"
  fi
}

# maven_fetch POM LIBDIR WHAT: copy the runtime dependencies of POM into LIBDIR, once. A marker file holds the
# pom's checksum, so editing the pom (a version bump) fetches again and an unchanged pom costs nothing.
maven_fetch() {
  local pom="$1" lib="$2" what="$3" sum marker
  sum="$(sha256sum "$pom" | cut -d' ' -f1)"
  marker="$lib/.fetched-from-pom"
  if [[ -f "$marker" && "$(cat "$marker")" == "$sum" ]]; then
    step "$what jars already in ${lib#"$ROOT"/}"
    return 0
  fi
  need_java_and_maven
  step "fetching $what jars from Maven Central (once)"
  rm -rf "$lib"
  mkdir -p "$lib"
  # The local Maven repository lives under .services too, so nothing outside the repo is written.
  run_logged "$SERVICES_HOME/logs/maven-$(basename "$(dirname "$pom")").log" \
    mvn -B -f "$pom" -Dmaven.repo.local="$SERVICES_HOME/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib"
  echo "$sum" >"$marker"
  note "$(find "$lib" -name '*.jar' | wc -l) jars, $(du -sh "$lib" | cut -f1)"
}

# ---------------------------------------------------------------------------------------------------------------
# Processes

# Each running instance has a folder D under .services/run/ with D/pid (its pid) and D/server.log (its stdout and
# stderr).

# start_daemon DIR CMD...: start CMD in the background in DIR, in its own session (so that a Ctrl-C or the end of
# the calling shell does not take it down), output appended to DIR/server.log. The process writes its own pid
# before exec, so DIR/pid names the service itself, not a wrapper.
start_daemon() {
  local dir="$1"
  shift
  mkdir -p "$dir"
  rm -f "$dir/pid"
  (cd "$dir" && exec setsid bash -c 'echo $$ >pid; exec "$@"' start_daemon "$@" >>server.log 2>&1 </dev/null) &
  local i
  for i in $(seq 50); do
    [[ -s "$dir/pid" ]] && return 0
    sleep 0.1
  done
  die "could not start: $* (no pid file $dir/pid; log: $dir/server.log)"
}

# pid_alive DIR: true when DIR/pid names a running process that is the one we started: its working directory
# is under .services/ (every service is started in, or moves to, its folder there), so a pid reused by
# something else is never taken for ours. The directory is read from any of the process's threads: a JVM's
# first thread may have exited (a zombie leader, whose cwd cannot be read) while the others still run and
# hold the ports; a process that is only a zombie has no readable cwd at all and counts as dead.
pid_alive() {
  local pidfile="$1/pid" pid task cwd=""
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ -d "/proc/$pid/task" ]] || return 1
  for task in "/proc/$pid/task"/*; do
    cwd="$(readlink "$task/cwd" 2>/dev/null)" && [[ -n "$cwd" ]] && break
  done
  [[ -n "$cwd" && "$cwd/" == "$SERVICES_HOME"/* ]]
}

# stop_instance DIR NAME [TIMEOUT] [SIGNAL]: stop the process of DIR/pid (SIGTERM, then SIGKILL after TIMEOUT
# seconds) and remove the pid file. SIGNAL=KILL kills at once (a crash, for failure tests).
stop_instance() {
  local dir="$1" name="$2" timeout="${3:-60}" sig="${4:-TERM}" pid i
  if ! pid_alive "$dir"; then
    rm -f "$dir/pid"
    return 0
  fi
  pid="$(cat "$dir/pid")"
  step "stopping $name (pid $pid, SIG$sig)"
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    pid_alive "$dir" || break
    sleep 0.1
  done
  if pid_alive "$dir"; then
    note "$name did not stop within ${timeout}s: SIGKILL (log: $dir/server.log)"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      pid_alive "$dir" || break
      sleep 0.1
    done
  fi
  rm -f "$dir/pid"
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# port_free_or_die HOST PORT WHAT: refuse to start when a port is taken by something else (it would only
# surface later as a confusing time-out).
port_free_or_die() {
  if port_open "$1" "$2"; then
    die "$1:$2 is already in use (needed by $3); see: ss -ltnp 'sport = :$2'"
  fi
}

# wait_ready WHAT DIRS CHECK...: run CHECK until it succeeds. Fails at once when the process of one of DIRS (space
# separated instance folders) dies, or after START_TIMEOUT seconds, showing the end of the logs. Prints how long
# it took.
wait_ready() {
  local what="$1" dirs="$2"
  shift 2
  local start=$SECONDS d
  while true; do
    if "$@" >/dev/null 2>&1; then
      note "$what ready after $((SECONDS - start))s"
      return 0
    fi
    for d in $dirs; do
      if ! pid_alive "$d"; then
        printf 'services.sh: error: %s: the process in %s exited during start-up\n' "$what" "$d" >&2
        show_log_tail "$d/server.log"
        exit 1
      fi
    done
    if ((SECONDS - start >= START_TIMEOUT)); then
      printf 'services.sh: error: %s not ready after %ss (readiness check: %s)\n' "$what" "$START_TIMEOUT" "$*" >&2
      for d in $dirs; do show_log_tail "$d/server.log"; done
      # Nothing half-started is left behind; the logs stay for a look.
      for d in $dirs; do stop_instance "$d" "the unready process in $d" 10 >&2; done
      exit 1
    fi
    sleep 0.5
  done
}

# render TEMPLATE OUT KEY=VALUE...: copy a config template, replacing each @KEY@ with VALUE.
render() {
  local template="$1" out="$2"
  shift 2
  local content kv
  content="$(cat "$template")"
  for kv in "$@"; do
    content="${content//@${kv%%=*}@/${kv#*=}}"
  done
  if grep -q '@[A-Z_0-9]*@' <<<"$content"; then
    die "unfilled placeholder in $template: $(grep -o '@[A-Z_0-9]*@' <<<"$content" | sort -u | tr '\n' ' ')"
  fi
  printf '%s\n' "$content" >"$out"
}
