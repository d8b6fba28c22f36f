#!/usr/bin/env bats
# step1.bats - the TCP server: command line, listening on IPv4 and IPv6,
# the log of connections, input read and dropped.

load helpers
load readme

have_ipv6() {
    grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null
}

@test "the first line says where the server listens, with the real port" {
    start_server
    run head -n 1 "$SERVER_LOG"
    [[ $output =~ ^listening\ on\ 127\.0\.0\.1:[0-9]+$ ]]
    ((PORT > 0))
    connect alice
    wait_for_log "^connected 127\.0\.0\.1:[0-9]+$"
}

@test "-ip ::1 listens on IPv6 and writes addresses as [::1]:PORT" {
    have_ipv6 || skip "this machine has no IPv6 loopback"
    start_server -ip ::1
    run head -n 1 "$SERVER_LOG"
    [[ $output =~ ^listening\ on\ \[::1\]:[0-9]+$ ]]
    connect alice ::1
    wait_for_log "^connected \[::1\]:[0-9]+$"
}

@test "options also take the -name=value form" {
    start_server -ip=127.0.0.1 -port=0
    connect alice
    wait_for_log "^connected 127\.0\.0\.1:"
}

@test "-h prints the usage on stdout and exits 0" {
    run "$STEP_DIR/server" -h
    ((status == 0))
    [[ ${lines[0]} == "usage: server [-ip ADDR] [-port PORT]"* ]]
}

@test "an unknown option is refused with the usage and status 2" {
    run --separate-stderr "$STEP_DIR/server" -bogus
    ((status == 2))
    [[ -z $output ]]
    [[ ${stderr_lines[0]} == "error: unknown option -bogus" ]]
    [[ ${stderr_lines[1]} == "usage: server"* ]]
}

@test "a port that is not 0-65535 is refused with status 2" {
    local port
    for port in 65536 -1 abc 80x ""; do
        run --separate-stderr "$STEP_DIR/server" -port "$port"
        ((status == 2)) || fail "-port '$port' gave status $status"
        [[ ${stderr_lines[0]} == "error: invalid port"* ]]
    done
}

@test "an option without its value is refused with status 2" {
    run --separate-stderr "$STEP_DIR/server" -port
    ((status == 2))
    [[ ${stderr_lines[0]} == "error: missing value for -port" ]]
}

@test "a port in use: 'error: cannot listen on ADDR: REASON' and status 1" {
    start_server
    run --separate-stderr "$STEP_DIR/server" -port "$PORT"
    ((status == 1))
    [[ $stderr == "error: cannot listen on 127.0.0.1:$PORT: Address already in use" ]]
    [[ -z $output ]]
}

@test "an address this machine does not have cannot be listened on" {
    # 192.0.2.1 is reserved for documentation: no machine has it.
    run --separate-stderr "$STEP_DIR/server" -ip 192.0.2.1 -port 0
    ((status == 1))
    [[ $stderr == "error: cannot listen on 192.0.2.1:0: "* ]]
}

@test "each connection and disconnection is logged with the client address" {
    start_server
    connect alice
    connect bob
    wait_for_log "^connected 127\.0\.0\.1:[0-9]+$" 2
    disconnect alice
    wait_for_log "^disconnected 127\.0\.0\.1:[0-9]+ \(.*\)$"
    # The address in the log is the one that connected first.
    local first
    first=$(grep -m 1 '^connected ' "$SERVER_LOG")
    grep -q "^dis${first} (" "$SERVER_LOG"
}

@test "input is read and dropped: a client can send a megabyte" {
    skip_from_step 3 "from step 3 on, input is relayed rather than dropped"
    start_server
    connect alice
    # The write can only complete if the server keeps reading.
    timeout "$TIMEOUT" head -c 1048576 /dev/zero >&"${FD[alice]}"
    connect bob
    wait_for_log "^connected " 2
}

@test "a client that leaves in the middle of a line is logged and forgotten" {
    start_server
    connect alice
    send_bytes alice 'half a li'
    disconnect alice
    wait_for_log "^disconnected "
    connect bob
    wait_for_log "^connected " 2
}

@test "200 clients connect at once, and all are logged" {
    start_server
    local i
    connect_many c 200
    wait_for_log "^connected " 200
    for ((i = 1; i <= 200; i++)); do
        disconnect "c$i"
    done
    wait_for_log "^disconnected " 200
}

# skip_unless_own_readme: skips the test unless the step has its own
# README, titled "Step N:" (a learner's copy may have another's, or none).
skip_unless_own_readme() {
    [[ -f $STEP_DIR/README.md && $(head -n 1 "$STEP_DIR/README.md") == "# Step $STEP_NUM:"* ]] ||
        skip "this copy of the step has no README of its own"
}

@test "the README's code is the step's code" {
    skip_unless_own_readme
    excerpts_in_code "$STEP_DIR/README.md" "$STEP_DIR"
}

@test "the README's transcripts hold, replayed against the step" {
    skip_unless_own_readme
    replay_transcripts "$STEP_DIR/README.md"
}
