#!/usr/bin/env bats
# history.bats - history: "server -history N" keeps the last N public
# messages, and a newcomer hears them right after its own arrival, oldest
# first, as they were sent. See exercises/history/README.md.

load ../../tests/helpers

# says NAME TEXT...: the client sends each TEXT, a line each, in one write,
# and waits to hear the last one back.
says() {
    local name=$1
    shift
    printf '%s\n' "$@" >&"${FD[$name]}"
    wait_for "$name" "$(said "$name" "${@: -1}")"
}

# nothing_else_for NAME...: the next line of each client is the public
# message that alice sends now. The server keeps order, so nothing else
# was sent to them before it.
nothing_else_for() {
    local who
    send alice "after"
    for who in "$@"; do
        expect "$who" "$(said alice after)"
    done
}

@test "without -history, a newcomer hears nothing said before it came" {
    start_server
    join alice
    says alice one two
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    nothing_else_for alice bob
}

@test "-history 3: a newcomer hears the last 3 public messages after its arrival, oldest first" {
    start_server -history 3
    join alice
    says alice one two three four five
    join bob
    expect bob "$(said alice three)"
    expect bob "$(said alice four)"
    expect bob "$(said alice five)"
    # Only bob heard them: alice's next line after bob's arrival is hers.
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    nothing_else_for alice bob
}

@test "fewer messages than N: a newcomer hears all of them" {
    start_server -history 10
    join alice
    says alice one two
    join bob
    expect bob "$(said alice one)"
    expect bob "$(said alice two)"
    nothing_else_for bob
}

@test "nothing said yet: a newcomer hears only its arrival" {
    start_server -history 10
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    nothing_else_for alice bob
}

@test "each newcomer hears the last N at the time it comes, from every sender" {
    start_server -history 4
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    says alice a1 a2 a3
    says bob b1 b2 b3
    join carol
    expect carol "$(said alice a3)"
    expect carol "$(said bob b1)"
    expect carol "$(said bob b2)"
    expect carol "$(said bob b3)"
    says carol c1
    join dave
    expect carol "[${ADDR[dave]}]${ADDR[dave]} is online"
    expect dave "$(said bob b1)"
    expect dave "$(said bob b2)"
    expect dave "$(said bob b3)"
    expect dave "$(said carol c1)"
    nothing_else_for carol dave
}

@test "only public messages are kept, not private ones, notices, answers or errors" {
    start_server -history 10
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    send_bytes alice 'to|%s|secret\nwho\nto|nobody|hi\nto|\nrename|\x01\n' "${ADDR[bob]}"
    send_bytes alice '%s\n' "$(repeat x 4097)"
    says alice kept
    disconnect bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    join carol
    expect carol "$(said alice kept)"
    nothing_else_for carol
}

@test "a message is kept as it was sent: the sender's name then, the text cleaned" {
    start_server -history 10
    join alice
    says alice before
    send alice "rename|alice"
    wait_for alice "[${ADDR[alice]}]${ADDR[alice]} is now known as alice"
    send_bytes alice 'a\x1bb\x07c\n'
    wait_for alice "[${ADDR[alice]}]alice: abc"
    join bob
    expect bob "$(said alice before)"
    expect bob "[${ADDR[alice]}]alice: abc"
    send alice "after"
    expect bob "[${ADDR[alice]}]alice: after"
}

@test "the messages of a user who left are still told" {
    start_server -history 10
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    says bob "goodbye"
    disconnect bob
    expect alice "$(said bob goodbye)"
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    join carol
    expect carol "$(said bob goodbye)"
    nothing_else_for carol
}

@test "-history 100 tells a newcomer 100 lines of 4096 bytes, and it stays" {
    start_server -history 100
    join alice
    local i pad
    pad=$(repeat p 4090)
    read_all alice
    for ((i = 1; i <= 120; i++)); do
        printf '%05d %s\n' "$i" "$pad"
    done >&"${FD[alice]}"
    wait_for_file_lines "$BATS_TEST_TMPDIR/alice" ": [0-9]{5} p+$" 120
    join bob
    for ((i = 21; i <= 120; i++)); do
        expect bob "$(said alice "$(printf '%05d %s' "$i" "$pad")")" || return 1
    done
    send bob "still here"
    expect bob "$(said bob "still here")"
}

@test "-history=N works too, and -history 0 keeps nothing" {
    start_server -history=1
    join alice
    says alice one two
    join bob
    expect bob "$(said alice two)"
    nothing_else_for bob
    disconnect alice
    disconnect bob
    stop_server
    start_server -history 0
    join alice
    says alice one
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    nothing_else_for alice bob
}

@test "-history takes 0 to 100; anything else is refused with status 2" {
    local value
    for value in -1 abc 5x "" 101 1000000000000000000000; do
        run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -history "$value"
        ((status == 2)) || fail "-history '$value' gave status $status"
        [[ -z $output ]]
        [[ ${stderr_lines[0]} == "error: invalid history (use 0 to 100 lines): $value" ]] ||
            fail "-history '$value': ${stderr_lines[0]}"
    done
    run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -history
    ((status == 2))
    [[ ${stderr_lines[0]} == "error: missing value for -history" ]]
}

@test "-h mentions -history, after the first line of the usage" {
    run "$STEP_DIR/server" -h
    ((status == 0))
    [[ ${lines[0]} == "usage: server [-ip ADDR] [-port PORT] [-timeout SECONDS]" ]]
    [[ $output == *"-history"* ]] || fail "-h does not mention -history:" "$output"
}
