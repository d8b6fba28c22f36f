#!/usr/bin/env bats
# step9.bats - the menu client, against a real server with a raw /dev/tcp
# user on the other side, or against tests/fake-server.c where the server
# must misbehave. The client is driven through a pipe, as a script drives
# it, or on a pseudo-terminal (tests/pty.c), as a person at a terminal
# does: there the test types keys and reads the screen the client draws.

load helpers

declare -gA TYPE_FD=()    # client name -> the pipe into its stdin
declare -gA CLIENT_PID=() # client name -> its process (pty's, at a terminal)
declare -gA AT_TTY=()     # client name -> 1 if it runs on a pseudo-terminal
FAKE_PID=""               # tests/fake-server, when a test runs one
FAKE_FD=""                # what is written there, the fake server sends

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

# ------------------------------------------------------ At a terminal

# need_tool NAME: builds the test program tests/NAME.c, once for this file.
need_tool() {
    local bin=$BATS_FILE_TMPDIR/$1
    [[ -x $bin ]] && return 0
    "${CC:-cc}" -O2 -o "$bin" "$BATS_TEST_DIRNAME/$1.c" 2>"$bin.err" || {
        fail "cannot build tests/$1.c:" "$(cat "$bin.err")"
        return 1
    }
}

# start_tty_client NAME [ARGS...]: runs the client on a pseudo-terminal,
# against the server on $PORT. press types into it; screen shows what it
# drew. With TTY_THEN_SHELL set, a shell runs after it on the same
# terminal and shows what the client left behind: its exit status, the
# terminal's settings, and typed text still waiting to be read, which a
# shell would find on its command line (read for half a second).
start_tty_client() {
    local name=$1 keys
    shift
    need_tool pty || return 1
    mkfifo "$BATS_TEST_TMPDIR/$name.keys"
    : >"$BATS_TEST_TMPDIR/$name.raw"
    local command=("$STEP_DIR/client" -port "$PORT" "$@")
    # shellcheck disable=SC2016 # expanded by that shell, not this one
    local then_shell='"$@"; echo "status $?"; stty -a
        stty -icanon min 0 time 5; IFS= read -r rest; stty icanon
        echo "left over: [$rest]"'
    [[ -z ${TTY_THEN_SHELL:-} ]] ||
        command=(bash -c "$then_shell" bash "${command[@]}")
    TERM=xterm "$BATS_FILE_TMPDIR/pty" run "$BATS_TEST_TMPDIR/$name.raw" \
        "${command[@]}" <"$BATS_TEST_TMPDIR/$name.keys" \
        2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
    CLIENT_PID[$name]=$!
    AT_TTY[$name]=1
    exec {keys}>"$BATS_TEST_TMPDIR/$name.keys"
    TYPE_FD[$name]=$keys
    # Keys typed before the client puts the terminal in raw mode would be
    # echoed by the terminal itself: type once the menu is there.
    wait_for_screen "$name" "0. exit"
}

# press NAME KEYS: types KEYS, as they are: $'\r' is Enter, $'\x03' Ctrl-C.
press() {
    printf '%s' "$2" >&"${TYPE_FD[$1]}"
}

# screen NAME: what the client's terminal shows, scrollback included, one
# line per row; the last line is the cursor's row.
screen() {
    "$BATS_FILE_TMPDIR/pty" screen "$BATS_TEST_TMPDIR/$1.raw"
}

# wait_for_screen NAME LINE: waits until a row of the screen is LINE.
wait_for_screen() {
    local deadline=$((SECONDS + TIMEOUT))
    until screen "$1" | grep -qxF -- "$2"; do
        if ((SECONDS > deadline)); then
            fail "$1: the screen never showed '$2'; it shows:" \
                "$(screen "$1" | tail -n 12)"
            return 1
        fi
        nap 0.05
    done
}

# wait_for_typing [--end] NAME LINE: waits until the cursor's row, where
# the prompt and the line being typed are, is LINE (trailing spaces aside);
# with --end, until it ends with " LINE", whatever the prompt.
wait_for_typing() {
    local end="" deadline=$((SECONDS + TIMEOUT)) row
    if [[ $1 == --end ]]; then
        end=1
        shift
    fi
    for (( ; ; )); do
        row=$(screen "$1" | tail -n 1)
        [[ $row == "$2" || (-n $end && $row == *" $2") ]] && return 0
        if ((SECONDS > deadline)); then
            fail "$1: expected to be typing on the row '${end:+...}$2'" \
                "$1: the screen shows:" "$(screen "$1" | tail -n 12)"
            return 1
        fi
        nap 0.05
    done
}

# learn_addr NAME WITNESS: the next line WITNESS reads is the news of
# NAME's arrival, "[ADDR]ADDR is online"; ADDR[NAME] is then its address.
learn_addr() {
    local line body
    read_line "$2" line || {
        fail "$2: expected the arrival of $1, got $READ_ERROR"
        return 1
    }
    body=${line#[}
    body=${body% is online}
    ADDR[$1]=${body:0:$((${#body} / 2))}
    [[ $line == "[${ADDR[$1]}]${ADDR[$1]} is online" ]] ||
        fail "$2: expected the arrival of $1, got '$line'"
}

# start_fake_server: starts tests/fake-server on a free port and sets PORT.
# What is written to FAKE_FD, it sends to the client, as it is.
start_fake_server() {
    local first out
    need_tool fake-server || return 1
    mkfifo "$BATS_TEST_TMPDIR/fake.in" "$BATS_TEST_TMPDIR/fake.out"
    "$BATS_FILE_TMPDIR/fake-server" <"$BATS_TEST_TMPDIR/fake.in" \
        >"$BATS_TEST_TMPDIR/fake.out" 3>&- &
    FAKE_PID=$!
    exec {FAKE_FD}>"$BATS_TEST_TMPDIR/fake.in"
    exec {out}<"$BATS_TEST_TMPDIR/fake.out"
    IFS= read -r -t "$TIMEOUT" -u "$out" first || true
    exec {out}<&-
    [[ $first =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] || {
        fail "the fake server did not start: '$first'"
        return 1
    }
    PORT=${BASH_REMATCH[1]}
}

# Prints what sanitizers reported in a client, on its stderr or terminal.
client_sanitizer_errors() {
    local file
    for file in "$BATS_TEST_TMPDIR"/*.err "$BATS_TEST_TMPDIR"/*.raw; do
        [[ -f $file && $file != "$SERVER_ERR" ]] || continue
        grep -aE 'Sanitizer|runtime error' "$file"
    done
}

teardown() {
    local name status=0
    for name in "${!CLIENT_PID[@]}"; do
        # The pty program's end hangs up the client's terminal (SIGHUP).
        [[ -z ${AT_TTY[$name]:-} ]] || kill "${CLIENT_PID[$name]}" 2>/dev/null || true
    done
    if [[ -n $FAKE_PID ]]; then
        exec {FAKE_FD}>&- # the fake server closes the connection, and ends
        kill "$FAKE_PID" 2>/dev/null || true
        wait "$FAKE_PID" || true
    fi
    for name in "${!TYPE_FD[@]}"; do
        end_input "$name"
    done
    for name in "${!CLIENT_PID[@]}"; do
        wait_or_kill "${CLIENT_PID[$name]}" || true
    done
    for name in "${!FD[@]}"; do
        disconnect "$name"
    done
    if [[ -n $(client_sanitizer_errors) ]]; then
        fail "the client reported errors:" "$(client_sanitizer_errors)"
        status=1
    fi
    stop_server || status=1
    return "$status"
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

# ------------------------------------------------ A person at a terminal

@test "client at a terminal: a message arriving mid-typing leaves the line whole" {
    start_server
    join bob
    start_tty_client me
    learn_addr me bob
    press me $'1\r'
    wait_for_screen me ">>> public chat: type a message, or exit to go back"
    press me "hello, wor"
    wait_for_typing --end me "hello, wor"
    send bob "news from bob"
    # The message comes on a row of its own, above the line being typed,
    # and the line is drawn again below it as it was.
    wait_for_screen me "[${ADDR[bob]}]${ADDR[bob]}: news from bob"
    wait_for_typing me "${ADDR[me]} (public chat)> hello, wor"
    [[ $(screen me | tail -n 2 | head -n 1) == "[${ADDR[bob]}]${ADDR[bob]}: news from bob" ]] ||
        fail "me: expected bob's message just above the line being typed;" \
            "the screen shows:" "$(screen me | tail -n 4)"
    press me $'ld\r'
    wait_for bob "[${ADDR[me]}]${ADDR[me]}: hello, world"
}

@test "client at a terminal: the prompt says who and where, and follows renames" {
    start_server
    join bob
    start_tty_client me
    learn_addr me bob
    wait_for_typing me "${ADDR[me]} (menu)>"
    press me $'3\r'
    wait_for_typing me "${ADDR[me]} (new name)>"
    press me $'alice\r'
    wait_for bob "[${ADDR[me]}]${ADDR[me]} is now known as alice"
    wait_for_typing me "alice (menu)>"
    press me $'1\r'
    wait_for_typing me "alice (public chat)>"
    press me $'exit\r'
    wait_for_typing me "alice (menu)>"
    press me $'2\r'
    wait_for_typing me "alice (private chat with whom?)>"
}

@test "client at a terminal: private chat takes only a name from the who list" {
    start_server
    join bob
    send bob "rename|bob"
    expect bob "[${ADDR[bob]}]${ADDR[bob]} is now known as bob"
    start_tty_client me
    learn_addr me bob
    press me $'2\r'
    wait_for_screen me "[${ADDR[bob]}]bob is online"
    press me $'carol\r'
    wait_for_screen me 'no user named "carol" in the list: type a name from it, or exit to go back'
    press me $'bob|secret\r'
    wait_for_screen me 'no user named "bob|secret" in the list: type a name from it, or exit to go back'
    press me $'bob\r'
    wait_for_screen me ">>> private chat with bob: type a message, or exit to go back"
    press me $'psst\r'
    # Nothing went to carol or to bob|secret before this.
    expect bob "[${ADDR[me]}]${ADDR[me]} (private): psst"
}

@test "client at a terminal: exit at the menu leaves, and the terminal is restored" {
    start_server
    TTY_THEN_SHELL=1 start_tty_client me
    press me $'exit\r'
    wait_for_screen me "status 0"
    wait_for_screen me "left over: []"
    screen me | grep -qE '(^| )icanon( |$)' && screen me | grep -qE '(^| )echo( |$)' ||
        fail "me: the terminal was left raw (no icanon, no echo):" "$(screen me | tail -n 8)"
}

@test "client at a terminal: Ctrl-C leaves cleanly, as 0 does" {
    start_server
    join bob
    TTY_THEN_SHELL=1 start_tty_client me
    learn_addr me bob
    press me $'1\r'
    wait_for_screen me ">>> public chat: type a message, or exit to go back"
    press me $'never sent\x03'
    wait_for_screen me "status 0"
    expect bob "[${ADDR[me]}]${ADDR[me]} is offline"
    wait_for_log_line "disconnected ${ADDR[me]} (left)"
}

@test "client at a terminal: when the server stops, nothing typed is left to the shell" {
    start_server
    TTY_THEN_SHELL=1 start_tty_client me
    press me $'1\r'
    wait_for_screen me ">>> public chat: type a message, or exit to go back"
    press me "half typed"
    wait_for_typing --end me "half typed"
    stop_server
    wait_for_screen me "the server closed the connection"
    wait_for_screen me "status 1"
    wait_for_screen me "left over: []"
    screen me | grep -qE '(^| )icanon( |$)' ||
        fail "me: the terminal was left raw:" "$(screen me | tail -n 8)"
}

@test "client at a terminal: a 4096-byte line goes whole, a longer one not at all" {
    start_server
    join bob
    start_tty_client me
    learn_addr me bob
    press me $'1\r'
    wait_for_screen me ">>> public chat: type a message, or exit to go back"
    local longest got
    longest=$(repeat x 4096)
    press me "$longest"$'\r'
    read_line bob got || fail "bob: expected me's 4096-byte line, got $READ_ERROR"
    local text=${got#"[${ADDR[me]}]${ADDR[me]}: "}
    [[ $text == "$longest" ]] ||
        fail "bob: expected me's line of 4096 x, got ${#text} bytes:" \
            "'${got:0:60}...'"
    press me "$(repeat y 5000)"$'\r'
    wait_for_screen me "error: line too long (max 4096 bytes), not sent"
    press me $'short\r'
    expect bob "[${ADDR[me]}]${ADDR[me]}: short"
}

@test "client at a terminal: Esc on its own does not eat the next key" {
    start_server
    join bob
    start_tty_client me
    learn_addr me bob
    press me $'1\r'
    wait_for_screen me ">>> public chat: type a message, or exit to go back"
    # Esc, then a key that starts no escape sequence; then an arrow key,
    # which the editor ignores whole.
    press me $'\eabc\e[Dd\r'
    expect bob "[${ADDR[me]}]${ADDR[me]}: abcd"
}

@test "client at a terminal: escapes from a hostile server never reach it" {
    start_fake_server
    start_tty_client me
    # A new window title, a cleared screen, the cursor sent home, red text,
    # a C1 CSI raw and in UTF-8, bytes that are not UTF-8; then real text.
    printf '\e]0;pwned\a\e[2J\e[H\e[31mred\e[0m \x9b1m \xc2\x9b2m \xff\xfe %s\nend\n' \
        "张三" >&"$FAKE_FD"
    wait_for_screen me "end"
    local obeyed
    obeyed=$("$BATS_FILE_TMPDIR/pty" check "$BATS_TEST_TMPDIR/me.raw") ||
        fail "me: the client passed to the terminal what it would obey:" "$obeyed"
    wait_for_screen me "]0;pwned[2J[H[31mred[0m 1m 2m  张三"
}

@test "client from a pipe: escapes from a hostile server are removed" {
    start_fake_server
    start_client me
    expect_menu me
    printf '\e]0;pwned\a\e[31mred\x9b1m\xc2\x9b2m\xff\r\nend\n' >&"$FAKE_FD"
    expect me "]0;pwned[31mred1m2m"
    expect me "end"
}

@test "client at a terminal: a server that stops reading does not freeze it" {
    start_fake_server
    start_tty_client me
    press me $'1\r'
    wait_for_screen me ">>> public chat: type a message, or exit to go back"
    # The fake server reads nothing: once the system's buffers are full
    # (a few megabytes), the lines pile up in the client.
    local line
    line=$(repeat z 4000)
    for _ in $(seq 1500); do
        printf '%s\r' "$line"
    done >&"${TYPE_FD[me]}"
    wait_for_screen me "error: the server is not taking what is sent, not sent"
    press me $'exit\r'
    wait_for_typing me "(menu)>"
    local start=$SECONDS
    press me $'\x03'
    # Leaving, it gives up on the unsent lines within 2 seconds.
    client_exits me 1
    ((SECONDS - start <= 4)) || fail "me: expected to leave within 2s, took $((SECONDS - start))s"
    grep -q "error: the server did not take the last [0-9]* bytes" \
        "$BATS_TEST_TMPDIR/me.raw" || fail "me: did not say what was not sent:" \
        "$(screen me | tail -n 4)"
}

@test "client: leaving waits 2 seconds at most, whatever the server sends" {
    start_fake_server
    yes "news that never ends" >&"$FAKE_FD" &
    local yes_pid=$! status=0 start=$SECONDS
    printf '0\n' | timeout "$TIMEOUT" "$STEP_DIR/client" -port "$PORT" \
        >/dev/null 2>"$BATS_TEST_TMPDIR/me.err" || status=$?
    kill "$yes_pid" 2>/dev/null || true
    ((status == 0)) || fail "me: exited with status $status, not 0" \
        "(124: still waiting after ${TIMEOUT}s)"
    ((SECONDS - start <= 4)) || fail "me: expected to leave within 2s, took $((SECONDS - start))s"
}

@test "client from a pipe: a 400 KB script is delivered, and the client not dropped" {
    start_server
    local count=40000
    {
        printf '1\n'
        seq -f 'line %g of a long script' "$count"
        printf 'exit\n0\n'
    } >"$BATS_TEST_TMPDIR/script"
    (($(wc -c <"$BATS_TEST_TMPDIR/script") >= 400000))
    local status=0
    timeout "$TIMEOUT" "$STEP_DIR/client" -port "$PORT" \
        <"$BATS_TEST_TMPDIR/script" >"$BATS_TEST_TMPDIR/me.out" \
        2>"$BATS_TEST_TMPDIR/me.err" || status=$?
    ((status == 0)) || fail "me: exited with status $status:" \
        "$(cat "$BATS_TEST_TMPDIR/me.err")" "the server's log ends with:" \
        "$(tail -n 2 "$SERVER_LOG")"
    local heard
    heard=$(grep -c ': line [0-9]* of a long script$' "$BATS_TEST_TMPDIR/me.out")
    ((heard == count)) || fail "me: heard $heard of its $count lines back"
    wait_for_log "^disconnected .* \(left\)$"
}

@test "client from a pipe: a script may name a private chat partner at once" {
    start_server
    join bob
    send bob "rename|bob"
    expect bob "[${ADDR[bob]}]${ADDR[bob]} is now known as bob"
    # The name comes before the who answer can: the client waits for it.
    printf '2\nbob\nfrom a script\nexit\n0\n' |
        timeout "$TIMEOUT" "$STEP_DIR/client" -port "$PORT" >/dev/null
    wait_for_log "^connected " 2
    local addr
    addr=$(sed -n 's/^connected //p' "$SERVER_LOG" | tail -n 1)
    expect bob "[$addr]$addr is online"
    expect bob "[$addr]$addr (private): from a script"
}
