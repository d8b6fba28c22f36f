#!/usr/bin/env bats
# step2.bats - the user map: each connection is a user named after its
# address, and everyone online, the newcomer too, hears of each arrival.
# The server says it once, in one output each user reads at its own pace,
# and writes its log the same way: no slow reader holds anyone up.

load helpers

have_ipv6() {
    grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null
}

@test "a newcomer hears of its own arrival: [ADDR]ADDR is online" {
    start_server
    join alice
    [[ ${ADDR[alice]} =~ ^127\.0\.0\.1:[0-9]+$ ]]
    # The address is the client's own, as the server logged it.
    wait_for_log_line "connected ${ADDR[alice]}"
}

@test "everyone online hears each arrival, in order of arrival" {
    start_server
    join alice
    join bob
    join carol
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is online"
    expect bob "[${ADDR[carol]}]${ADDR[carol]} is online"
    # Nothing else came before the next arrival.
    join dave
    local who
    for who in alice bob carol; do
        expect "$who" "[${ADDR[dave]}]${ADDR[dave]} is online"
    done
}

@test "two connections from one host are two users with different names" {
    start_server
    join alice
    join bob
    [[ ${ADDR[alice]} != "${ADDR[bob]}" ]]
}

@test "an IPv6 user is named [::1]:PORT" {
    have_ipv6 || skip "this machine has no IPv6 loopback"
    start_server -ip ::1
    join alice ::1
    [[ ${ADDR[alice]} =~ ^\[::1\]:[0-9]+$ ]]
}

@test "input is still dropped: nobody hears what a user sends" {
    skip_from_step 3 "from step 3 on, every line is relayed"
    start_server
    join alice
    send alice "hello"
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
}

@test "a user who leaves is taken out of the table; the others go on" {
    start_server
    join alice
    join bob
    disconnect bob
    wait_for_log "^disconnected $(regex_quote "${ADDR[bob]}") "
    join carol
    wait_for alice "[${ADDR[carol]}]${ADDR[carol]} is online"
}

@test "a user who vanishes with news unread does not disturb the others" {
    start_server
    join alice
    join bob
    # alice closes with bob's arrival unread: her system answers with a
    # reset, and the server's next read or write to her fails.
    disconnect alice
    join carol
    wait_for bob "[${ADDR[carol]}]${ADDR[carol]} is online"
    wait_for_log "^disconnected $(regex_quote "${ADDR[alice]}") "
}

@test "100 users: each hears its own arrival and every later one, in order" {
    start_server
    local i n=100 addr arrivals=() got=()
    connect_many u $n
    read_all_many u $n
    # The log names the users in order of arrival.
    wait_for_log "^connected " $n
    for addr in $(sed -n 's/^connected //p' "$SERVER_LOG"); do
        arrivals+=("[$addr]$addr is online")
    done
    wait_last_line "${arrivals[n - 1]}" "$BATS_TEST_TMPDIR"/u{1..100}
    for ((i = 1; i <= n; i++)); do
        mapfile -t got <"$BATS_TEST_TMPDIR/u$i"
        [[ ${got[*]} == "${arrivals[*]:i-1}" ]] ||
            fail "u$i did not hear its arrival and the later ones, in order"
    done
}

@test "a call of user_broadcast() with an argument missing does not compile" {
    format_is_checked user_broadcast 'user_broadcast("[%s]%s is online", "a")'
}

@test "with users online and nothing to say, the server sleeps" {
    [[ -r /proc/self/stat ]] || skip "needs /proc to measure processor time"
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    local before after
    before=$(cpu_ticks "$SERVER_PID")
    sleep 0.5 # a window to measure, not a wait for an event
    after=$(cpu_ticks "$SERVER_PID")
    # Asking poll() for room in sockets with nothing to send would wake
    # it at once, for ever: about 100 ticks a second.
    ((after - before < 10)) || fail "the server used $((after - before)) ticks in 0.5s"
}

@test "a log nobody reads holds nobody up; the lines it loses are counted" {
    LOG_UNREAD=1 start_server
    local i
    # Each arrival and departure is a line of log: enough of them fill the
    # pipe to the log's reader and the server's own buffer for the log.
    visit 3000
    join alice
    join bob
    # From step 4 on, alice may hear of visitors leaving first.
    wait_for alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    # The log is read again: what could not wait was dropped, and counted.
    read_log_again
    wait_for_log "^\([0-9]+ lines of log dropped\)$"
    join carol
    wait_for_log_line "connected ${ADDR[carol]}"
}
