#!/usr/bin/env bats
# step8.bats - guarding the server's descriptors. The idle timeout:
# "server -timeout SECONDS" (300 unless told, 0 for never) sends away a user
# who has sent no whole line for that long. It hears "disconnected: idle for
# SECONDS seconds", its connection is closed, and everyone left hears that
# it is offline. Bytes without an LF do not count. And out of descriptors,
# a newcomer hears "error: server is full", and the server does not spin.

load helpers

# The time in milliseconds, from some fixed moment.
now_ms() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        local t=${EPOCHREALTIME//[!0-9]/}
        echo $((10#$t / 1000))
    else
        echo $(($(date +%s%N) / 1000000))
    fi
}

# keep_busy_until WHO LINE NAME FORMAT [NAME FORMAT]...: every 0.3 s each
# NAME sends what printf makes of its FORMAT, until the client WHO hears
# LINE; fails after $TIMEOUT seconds. WHO's lines before LINE are skipped.
# The pause paces the clients' activity, the stimulus under test: what the
# server does is waited for in what WHO hears.
keep_busy_until() {
    local who=$1 line=$2 deadline=$((SECONDS + TIMEOUT)) got i
    shift 2
    while ((SECONDS <= deadline)); do
        for ((i = 1; i < $#; i += 2)); do
            send_bytes "${!i}" "${@:i+1:1}"
        done
        while read_line "$who" got 0.3; do
            [[ $got == "$line" ]] && return 0
        done
    done
    fail "$who: never heard '$line' while the others kept busy"
}

@test "-h mentions -timeout" {
    run "$STEP_DIR/server" -h
    ((status == 0))
    [[ ${lines[0]} == "usage: server [-ip ADDR] [-port PORT] [-timeout SECONDS]" ]]
}

@test "a timeout that is not a whole number of seconds is refused with status 2" {
    local seconds
    for seconds in -1 abc 5x ""; do
        run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -timeout "$seconds"
        ((status == 2)) || fail "-timeout '$seconds' gave status $status"
        [[ -z $output ]]
        [[ ${stderr_lines[0]} == "error: invalid timeout"* ]] ||
            fail "-timeout '$seconds': ${stderr_lines[0]}"
    done
    run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -timeout
    ((status == 2))
    [[ ${stderr_lines[0]} == "error: missing value for -timeout" ]]
}

@test "the longest timeout is 2000000 seconds, and the error names it" {
    run --separate-stderr "$STEP_DIR/server" -port 0 -timeout 2000001
    ((status == 2))
    [[ ${stderr_lines[0]} == "error: invalid timeout (use 0 to 2000000 seconds): 2000001" ]]
    start_server -timeout 2000000
    join alice
}

@test "a silent user hears 'disconnected: idle for 1 seconds', then is closed" {
    start_server -timeout 1
    local start elapsed
    start=$(now_ms)
    join alice
    expect alice "disconnected: idle for 1 seconds"
    elapsed=$(($(now_ms) - start))
    ((elapsed >= 950)) || fail "alice was sent away after ${elapsed}ms"
    expect_eof alice
    disconnect alice
    wait_for_log "^disconnected $(regex_quote "${ADDR[alice]}") \(idle\)$"
}

@test "a user who keeps talking stays; a silent one goes and is announced" {
    start_server -timeout 1
    join talker
    join idle
    expect talker "[${ADDR[idle]}]${ADDR[idle]} is online"
    keep_busy_until talker "[${ADDR[idle]}]${ADDR[idle]} is offline" \
        talker 'tick\n'
    # Hearing talker's lines did not keep idle: only sending counts.
    wait_for idle "disconnected: idle for 1 seconds"
    expect_eof idle
    send talker "still here"
    wait_for talker "[${ADDR[talker]}]${ADDR[talker]}: still here"
}

@test "only a whole line counts: bytes without an LF keep nobody" {
    # typer and blank joined before idle: had they not counted as active,
    # they would have been sent away first.
    start_server -timeout=1
    join typer
    join blank
    join idle
    expect typer "[${ADDR[blank]}]${ADDR[blank]} is online"
    expect typer "[${ADDR[idle]}]${ADDR[idle]} is online"
    expect blank "[${ADDR[idle]}]${ADDR[idle]} is online"
    # typer trickles bytes of a line it never ends; blank sends empty lines.
    keep_busy_until typer "disconnected: idle for 1 seconds" typer 'x' blank '\n'
    expect_eof typer
    # idle was silent all along: it goes too, and blank stays.
    keep_busy_until blank "[${ADDR[idle]}]${ADDR[idle]} is offline" blank '\n'
    wait_for idle "disconnected: idle for 1 seconds"
    send blank "still here"
    expect blank "[${ADDR[blank]}]${ADDR[blank]}: still here"
}

@test "-timeout 0: a silent user is never sent away" {
    start_server -timeout 0
    join alice
    sleep 0.5 # alice is silent for a while: the stimulus, not a wait
    send alice "still here"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: still here"
    ! grep -q '^disconnected ' "$SERVER_LOG"
}

@test "the soft limit on descriptors is raised to the hard one" {
    [[ -r /proc/self/limits ]] || skip "needs /proc to read a process's limits"
    [[ -z ${VALGRIND:-} ]] || skip "valgrind keeps descriptors of its own"
    local hard soft
    hard=$(ulimit -Hn)
    [[ $hard != unlimited ]] && ((hard > 64)) ||
        skip "needs a hard limit on descriptors, above 64"
    SERVER_SOFT_FD_LIMIT=64 start_server
    soft=$(awk '/^Max open files/ { print $4 }' "/proc/$SERVER_PID/limits")
    [[ $soft == "$hard" ]] ||
        fail "started with a soft limit of 64 descriptors, the server kept $soft;" \
            "expected it raised to the hard limit, $hard"
}

@test "out of descriptors, a newcomer hears 'error: server is full'" {
    [[ -z ${VALGRIND:-} ]] || skip "valgrind keeps descriptors of its own"
    SERVER_FD_LIMIT=24 start_server
    local i users
    # More clients than the server has descriptors for.
    for ((i = 1; i <= 30; i++)); do
        connect "c$i"
    done
    wait_for_log "^turned away a connection: server is full$" 1
    wait_for_log "^(connected|turned away) " 30
    users=$(grep -c '^connected ' "$SERVER_LOG")
    ((users > 0 && users < 30))
    # The server accepts in order of arrival: the last ones were refused.
    for ((i = users + 1; i <= 30; i++)); do
        expect "c$i" "error: server is full"
        expect_eof "c$i"
        disconnect "c$i"
    done
    # Once a user leaves, there is room again.
    disconnect c1
    wait_for_log "^disconnected "
    connect again
    wait_for_log "^connected " $((users + 1))
}

@test "a full server does not spin while newcomers wait" {
    [[ -z ${VALGRIND:-} ]] || skip "valgrind keeps descriptors of its own"
    [[ -r /proc/self/stat ]] || skip "needs /proc to measure processor time"
    SERVER_FD_LIMIT=24 start_server
    local i before after
    for ((i = 1; i <= 30; i++)); do
        connect "c$i"
    done
    wait_for_log "^(connected|turned away) " 30
    before=$(cpu_ticks "$SERVER_PID")
    sleep 0.5 # a window to measure, not a wait for an event
    after=$(cpu_ticks "$SERVER_PID")
    # A spinning loop burns about 100 ticks a second.
    ((after - before < 10)) || fail "the server used $((after - before)) ticks in 0.5s"
}

@test "out of descriptors with nobody online, the server listens again" {
    [[ -z ${VALGRIND:-} ]] || skip "valgrind keeps descriptors of its own"
    [[ -r /proc/self/stat ]] || skip "needs /proc to measure processor time"
    command -v prlimit >/dev/null || skip "needs prlimit to change a running server's limit"
    start_server
    # No new descriptor at all, not even for the spare: the server cannot
    # turn alice away, so it stops listening for a while, and does not spin.
    prlimit --pid "$SERVER_PID" --nofile=3:
    connect alice
    wait_for_log "^listening on " # the log is still read
    local before after line
    before=$(cpu_ticks "$SERVER_PID")
    sleep 0.5 # a window to measure, not a wait for an event
    after=$(cpu_ticks "$SERVER_PID")
    ((after - before < 10)) || fail "the server used $((after - before)) ticks in 0.5s"
    ! grep -q "^connected " "$SERVER_LOG"
    # Descriptors are free again: nobody left, yet it listens again by itself.
    prlimit --pid "$SERVER_PID" --nofile=1024:
    read_line alice line || fail "alice: expected her arrival, got $READ_ERROR"
    [[ $line == *" is online" ]] || fail "alice: expected her arrival, got '$line'"
    wait_for_log "^connected "
}
