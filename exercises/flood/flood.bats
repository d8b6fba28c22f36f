#!/usr/bin/env bats
# flood.bats - flood control: "server -flood N" lets each user have at most
# N lines handled in a second; each line beyond is refused with
# "error: too many lines (max N a second)". See exercises/flood/README.md.

load ../../tests/helpers

# The time in milliseconds, from some fixed moment.
now_ms() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        local t=${EPOCHREALTIME//[!0-9]/}
        echo $((10#$t / 1000))
    else
        echo $(($(date +%s%N) / 1000000))
    fi
}

# two_users [ARGS...]: a server started with ARGS; alice and bob have
# joined, and alice has heard bob arrive.
two_users() {
    start_server "$@"
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
}

# refused NAME N: the client's next line refuses a line beyond N a second.
refused() {
    expect "$1" "error: too many lines (max $2 a second)"
}

@test "without -flood, a burst of 200 lines goes through whole" {
    two_users
    local i
    for ((i = 1; i <= 200; i++)); do
        echo "line $i"
    done >&"${FD[alice]}"
    for ((i = 1; i <= 200; i++)); do
        expect bob "$(said alice "line $i")" || return 1
    done
}

@test "-flood 3: of 5 lines at once, 3 are handled, 2 refused, to the sender alone" {
    two_users -flood 3
    send_bytes alice 'one\ntwo\nthree\nfour\nfive\n'
    expect alice "$(said alice one)"
    expect alice "$(said alice two)"
    expect alice "$(said alice three)"
    refused alice 3
    refused alice 3
    expect bob "$(said alice one)"
    expect bob "$(said alice two)"
    expect bob "$(said alice three)"
    # Nothing else reached bob: his next line is his own.
    send bob "after"
    expect bob "$(said bob after)"
}

@test "commands count as lines too, and are refused alike" {
    two_users -flood 3
    send_bytes alice 'who\nrename|alice\nto|%s|psst\nwho\nrename|ally\nhi\n' "${ADDR[bob]}"
    expect alice "[${ADDR[alice]}]${ADDR[alice]} is online"
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[alice]}]${ADDR[alice]} is now known as alice"
    refused alice 3
    refused alice 3
    refused alice 3
    expect bob "[${ADDR[alice]}]${ADDR[alice]} is now known as alice"
    expect bob "[${ADDR[alice]}]alice (private): psst"
    send bob "after"
    expect bob "$(said bob after)"
}

@test "empty lines and lines too long do not count" {
    two_users -flood 2
    send_bytes alice '\n\r\n\n%s\none\n\ntwo\nthree\n' "$(repeat x 4097)"
    expect alice "error: line too long (max 4096 bytes)"
    expect alice "$(said alice one)"
    expect alice "$(said alice two)"
    refused alice 2
}

@test "each user has its own limit" {
    two_users -flood 2
    send_bytes alice 'a1\na2\na3\n'
    expect alice "$(said alice a1)"
    expect alice "$(said alice a2)"
    refused alice 2
    send_bytes bob 'b1\nb2\n'
    expect bob "$(said alice a1)"
    expect bob "$(said alice a2)"
    expect bob "$(said bob b1)"
    expect bob "$(said bob b2)"
}

@test "a second after its first line, a user's lines are handled again; the refused ones are gone" {
    two_users -flood 2
    local start got accepted=0 waited
    start=$(now_ms)
    send_bytes alice 'one\ntwo\nthree\n'
    expect alice "$(said alice one)"
    expect alice "$(said alice two)"
    refused alice 2
    # alice tries again every 0.2s; within the second, each try is refused.
    while ((accepted == 0 && $(now_ms) - start < TIMEOUT * 1000)); do
        send alice "again"
        read_line alice got || break
        if [[ $got == "$(said alice again)" ]]; then
            accepted=1
        elif [[ $got == "error: too many lines (max 2 a second)" ]]; then
            sleep 0.2 # paces the tries: the stimulus, not a wait for output
        else
            fail "alice: expected her line or the refusal, got '$got'"
        fi
    done
    waited=$(($(now_ms) - start))
    ((accepted)) || fail "alice: her lines were still refused after ${waited}ms"
    ((waited >= 1000)) || fail "alice: a line was handled ${waited}ms after her first, within the second"
    expect bob "$(said alice one)"
    expect bob "$(said alice two)"
    expect bob "$(said alice again)"
}

@test "-flood 0 is no limit, and -flood=N works too" {
    two_users -flood 0
    local i
    for ((i = 1; i <= 50; i++)); do
        echo "line $i"
    done >&"${FD[alice]}"
    for ((i = 1; i <= 50; i++)); do
        expect bob "$(said alice "line $i")" || return 1
    done
    disconnect alice
    disconnect bob
    stop_server
    two_users -flood=1
    send_bytes alice 'one\ntwo\n'
    expect alice "$(said alice one)"
    refused alice 1
}

@test "-flood takes 0 to 1000; anything else is refused with status 2" {
    local value
    for value in -1 abc 5x "" 1001 1000000000000000000000; do
        run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -flood "$value"
        ((status == 2)) || fail "-flood '$value' gave status $status"
        [[ -z $output ]]
        [[ ${stderr_lines[0]} == "error: invalid limit (use 0 to 1000 lines a second): $value" ]] ||
            fail "-flood '$value': ${stderr_lines[0]}"
    done
    run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -flood
    ((status == 2))
    [[ ${stderr_lines[0]} == "error: missing value for -flood" ]]
}

@test "-h mentions -flood, after the first line of the usage" {
    run "$STEP_DIR/server" -h
    ((status == 0))
    [[ ${lines[0]} == "usage: server [-ip ADDR] [-port PORT] [-timeout SECONDS]" ]]
    [[ $output == *"-flood"* ]] || fail "-h does not mention -flood:" "$output"
}
