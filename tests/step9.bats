#!/usr/bin/env bats
# step9.bats - the menu client, driven through a pipe against a real
# server, with a raw /dev/tcp user on the other side.

load helpers

declare -gA TYPE_FD=()    # client name -> the pipe into its stdin
declare -gA CLIENT_PID=() # client name -> its process

# start_client NAME [ARGS...]: runs the step's client against the server.
# typein NAME LINE writes to its stdin; expect, wait_for and the other
# helpers read what it prints, as for any client named NAME.
start_client() {
    local name=$1 keys out
    shift
    mkfifo "$BATS_TEST_TMPDIR/$name.in" "$BATS_TEST_TMPDIR/$name.out"
    "$STEP_DIR/client" -port "$PORT" "$@" <"$BATS_TEST_TMPDIR/$name.in" \
        >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
    CLIENT_PID[$name]=$!
    exec {keys}>"$BATS_TEST_TMPDIR/$name.in"
    exec {out}<"$BATS_TEST_TMPDIR/$name.out"
    TYPE_FD[$name]=$keys
    FD[$name]=$out
}

# typein NAME LINE: types LINE and Enter into the client.
typein() {
    printf '%s\n' "$2" >&"${TYPE_FD[$1]}"
}

# end_input NAME: closes the client's stdin, as Ctrl-D would.
end_input() {
    local fd=${TYPE_FD[$1]}
    exec {fd}>&-
    unset "TYPE_FD[$1]"
}

# client_exits NAME STATUS: the client ends, with that exit status.
client_exits() {
    local status=0
    wait_or_kill "${CLIENT_PID[$1]}" || status=$?
    unset "CLIENT_PID[$1]"
    ((status == $2)) || fail "$1 exited with $status, not $2:" \
        "$(cat "$BATS_TEST_TMPDIR/$1.err")"
}

# expect_menu NAME: the client shows its menu.
expect_menu() {
    wait_for "$1" "1. public chat"
    expect "$1" "2. private chat"
    expect "$1" "3. rename"
    expect "$1" "0. exit"
}

# The address the server gave the client: from the news of its own
# arrival, which it prints like any other line from the server.
client_addr() {
    local line
    while read_line "$1" line; do
        if [[ $line == "["*"]"*" is online" ]]; then
            local body=${line#[}
            body=${body% is online}
            ADDR[$1]=${body:0:$((${#body} / 2))}
            return 0
        fi
    done
    fail "$1: never showed its own arrival"
}

teardown() {
    local name
    for name in "${!TYPE_FD[@]}"; do
        end_input "$name"
    done
    for name in "${!CLIENT_PID[@]}"; do
        wait_or_kill "${CLIENT_PID[$name]}" || true
    done
    for name in "${!FD[@]}"; do
        disconnect "$name"
    done
    stop_server
}

@test "client -h prints the usage and exits 0" {
    run "$STEP_DIR/client" -h
    ((status == 0))
    [[ ${lines[0]} == "usage: client [-ip ADDR] [-port PORT]" ]]
}

@test "client: a bad option is refused with status 2" {
    run --separate-stderr "$STEP_DIR/client" -nope
    ((status == 2))
    [[ ${stderr_lines[0]} == "error: unknown option -nope" ]]
}

@test "client: a refused connection says so and exits 1" {
    # A port that was just free: a server listened there and stopped.
    start_server
    local port=$PORT
    stop_server
    run --separate-stderr "$STEP_DIR/client" -port "$port"
    ((status == 1))
    [[ $stderr == "error: cannot connect to 127.0.0.1:$port: Connection refused" ]]
}

@test "client: the menu comes first, and 0 exits with status 0" {
    start_server
    start_client me
    expect_menu me
    typein me 0
    client_exits me 0
}

@test "client: the end of its input ends it cleanly" {
    start_server
    start_client me
    expect_menu me
    end_input me
    client_exits me 0
}

@test "client: a choice not on the menu is answered, and the menu shown" {
    start_server
    start_client me
    client_addr me
    typein me 7
    wait_for me "please choose 1, 2, 3 or 0"
    expect_menu me
}

@test "client: rename, then public chat, heard by a raw user" {
    start_server
    join bob
    start_client me
    client_addr me
    typein me 3
    wait_for me ">>> new name, or exit to go back:"
    typein me alice
    wait_for bob "[${ADDR[me]}]${ADDR[me]} is now known as alice"
    typein me 1
    wait_for me ">>> public chat: type a message, or exit to go back"
    typein me "hello, everyone"
    expect bob "[${ADDR[me]}]alice: hello, everyone"
    wait_for me "[${ADDR[me]}]alice: hello, everyone"
    typein me exit
    expect_menu me
}

@test "client: private chat shows who is online, then sends to|NAME|TEXT" {
    start_server
    join bob
    send bob "rename|bob"
    expect bob "[${ADDR[bob]}]${ADDR[bob]} is now known as bob"
    start_client me
    client_addr me
    wait_for bob "[${ADDR[me]}]${ADDR[me]} is online"
    typein me 2
    wait_for me "[${ADDR[bob]}]bob is online"
    expect me "[${ADDR[me]}]${ADDR[me]} is online"
    typein me bob
    wait_for me ">>> private chat with bob: type a message, or exit to go back"
    typein me "psst | a secret"
    expect bob "[${ADDR[me]}]${ADDR[me]} (private): psst | a secret"
    typein me exit
    expect_menu me
}

@test "client: a raw user's private message arrives while at the menu" {
    start_server
    join bob
    start_client me
    expect_menu me
    client_addr me
    send bob "to|${ADDR[me]}|are you there?"
    expect me "[${ADDR[bob]}]${ADDR[bob]} (private): are you there?"
}

@test "client: public messages arrive while it waits for a name" {
    start_server
    join bob
    start_client me
    client_addr me
    typein me 3
    wait_for me ">>> new name, or exit to go back:"
    send bob "still there?"
    wait_for me "[${ADDR[bob]}]${ADDR[bob]}: still there?"
}

@test "client: a line too long for the server is refused, nothing sent" {
    start_server
    join bob
    start_client me
    client_addr me
    typein me 1
    typein me "$(head -c 5000 /dev/zero | tr '\0' x)"
    wait_for me "error: line too long (max 4096 bytes), not sent"
    typein me "short"
    # The server keeps order: had anything of the long line gone out, bob
    # would hear it before this.
    wait_for bob "[${ADDR[me]}]${ADDR[me]}: short"
}

@test "client: news of users coming and going is shown" {
    start_server
    start_client me
    client_addr me
    join bob
    wait_for me "[${ADDR[bob]}]${ADDR[bob]} is online"
    disconnect bob
    wait_for me "[${ADDR[bob]}]${ADDR[bob]} is offline"
}

@test "client: when the server shuts down, it says so and exits 1" {
    start_server
    start_client me
    expect_menu me
    client_addr me
    stop_server
    wait_for me "server is shutting down"
    client_exits me 1
    [[ $(cat "$BATS_TEST_TMPDIR/me.err") == "the server closed the connection" ]]
}

@test "client: a whole script through a pipe works as typed lines do" {
    start_server
    join bob
    printf '3\ncarol\n1\nfrom a script\nexit\n0\n' |
        timeout "$TIMEOUT" "$STEP_DIR/client" -port "$PORT" \
            >"$BATS_TEST_TMPDIR/script.out"
    wait_for_log "^connected " 2
    local addr
    addr=$(sed -n 's/^connected //p' "$SERVER_LOG" | tail -n 1)
    expect bob "[$addr]$addr is online"
    expect bob "[$addr]$addr is now known as carol"
    expect bob "[$addr]carol: from a script"
    expect bob "[$addr]carol is offline"
    # It left cleanly, after showing the answers to its last lines.
    wait_for_log_line "disconnected $addr (left)"
    grep -qxF "[$addr]carol: from a script" "$BATS_TEST_TMPDIR/script.out"
}

@test "client: -ip ::1 reaches a server on IPv6" {
    grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null ||
        skip "this machine has no IPv6 loopback"
    start_server -ip ::1
    start_client me -ip ::1
    client_addr me
    [[ ${ADDR[me]} =~ ^\[::1\]:[0-9]+$ ]]
}
