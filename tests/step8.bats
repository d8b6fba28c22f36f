#!/usr/bin/env bats
# step8.bats - the idle timeout: "server -timeout SECONDS" (300 unless told,
# 0 for never) sends away a user who has sent nothing for that long. It
# hears "disconnected: idle for SECONDS seconds", its connection is closed,
# and everyone left hears that it is offline. Any bytes it sends, even an
# empty or unfinished line, start its time over.

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

# keep_busy_until REGEX NAME FORMAT [NAME FORMAT]...: every 0.3 s each
# client sends what printf makes of its FORMAT, until the server's log has
# a line matching REGEX; fails after $TIMEOUT seconds. The pause paces the
# clients' activity, the stimulus under test: what the server does is
# waited for in its log.
keep_busy_until() {
    local pattern=$1 deadline=$((SECONDS + TIMEOUT)) i
    shift
    until grep -qE -- "$pattern" "$SERVER_LOG"; do
        if ((SECONDS > deadline)); then
            fail "the log never had a line matching '$pattern':" \
                "$(cat "$SERVER_LOG")"
            return 1
        fi
        for ((i = 1; i < $#; i += 2)); do
            send_bytes "${!i}" "${@:i+1:1}"
        done
        sleep 0.3
    done
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

@test "a silent user hears 'disconnected: idle for 2 seconds', then is closed" {
    start_server -timeout 2
    local start elapsed
    start=$(now_ms)
    join alice
    expect alice "disconnected: idle for 2 seconds"
    elapsed=$(($(now_ms) - start))
    ((elapsed >= 1900)) || fail "alice was sent away after ${elapsed}ms"
    expect_eof alice
    wait_for_log "^disconnected $(regex_quote "${ADDR[alice]}") "
}

@test "a user who keeps talking stays; a silent one goes and is announced" {
    start_server -timeout 1
    join talker
    join idle
    expect talker "[${ADDR[idle]}]${ADDR[idle]} is online"
    keep_busy_until "^disconnected $(regex_quote "${ADDR[idle]}") " \
        talker 'tick\n'
    # Hearing talker's lines did not keep idle: only sending counts.
    wait_for idle "disconnected: idle for 1 seconds"
    expect_eof idle
    wait_for talker "[${ADDR[idle]}]${ADDR[idle]} is offline"
    send talker "still here"
    wait_for talker "[${ADDR[talker]}]${ADDR[talker]}: still here"
}

@test "an unfinished line, an empty line, even a too long line count as activity" {
    # They joined before idle: had their time not started over, they
    # would have been sent away first.
    start_server -timeout=2
    join typer
    join blank
    join long
    join idle
    expect typer "[${ADDR[blank]}]${ADDR[blank]} is online"
    expect typer "[${ADDR[long]}]${ADDR[long]} is online"
    expect typer "[${ADDR[idle]}]${ADDR[idle]} is online"
    expect blank "[${ADDR[long]}]${ADDR[long]} is online"
    expect blank "[${ADDR[idle]}]${ADDR[idle]} is online"
    expect long "[${ADDR[idle]}]${ADDR[idle]} is online"
    send_bytes long '%s' "$(repeat y 5000)"
    expect long "error: line too long (max 4096 bytes)"
    keep_busy_until "^disconnected $(regex_quote "${ADDR[idle]}") " \
        typer 'x' blank '\n' long 'y'
    expect idle "disconnected: idle for 2 seconds"
    expect_eof idle
    local who
    for who in typer blank long; do
        expect "$who" "[${ADDR[idle]}]${ADDR[idle]} is offline"
    done
    (($(grep -c '^disconnected ' "$SERVER_LOG") == 1))
    # typer's line was kept all along.
    send typer "end"
    expect_match typer "^\[$(regex_quote "${ADDR[typer]}")\]$(regex_quote "${ADDR[typer]}"): x+end$"
}

@test "-timeout 0: a silent user is never sent away" {
    start_server -timeout 0
    join alice
    sleep 1.5 # alice is silent for a while: the stimulus, not a wait
    send alice "still here"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: still here"
    ! grep -q '^disconnected ' "$SERVER_LOG"
}
