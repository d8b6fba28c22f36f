#!/usr/bin/env bats
# step4.bats - the user module: the server is split into modules, and it
# ends in order. When a user leaves, vanishes or is dropped, everyone left
# hears "[ADDR]NAME is offline", once, after everything that user said, and
# a user who stops sending still gets what was queued for it. On SIGINT or
# SIGTERM everyone gets what was queued, then "server is shutting down",
# and the server exits 0.

load helpers

# half_close NAME: the client stops sending, as shutdown(SHUT_WR) does, but
# can still read. The server sees the end of the stream, as from a user who
# left, while the test goes on watching what reaches that user.
half_close() {
    command -v perl >/dev/null || skip "needs perl to half-close a socket"
    perl -e 'open(my $s, "+<&=", $ARGV[0]) or die "open: $!";
             shutdown($s, 1) or die "shutdown: $!"' "${FD[$1]}"
}

# read_bytes NAME COUNT: prints the client's next COUNT bytes. head -c reads
# no further than that, so the bytes after them stay for the next reader.
read_bytes() {
    timeout "$TIMEOUT" head -c "$2" <&"${FD[$1]}"
}

# send_numbered NAME COUNT: NAME sends COUNT lines of about a kilobyte,
# numbered from 00001, in one go.
send_numbered() {
    awk -v pad="$(repeat p 1000)" -v n="$2" \
        'BEGIN { for (k = 1; k <= n; k++) printf "%05d %s\n", k, pad }' \
        >&"${FD[$1]}"
}

# BEHIND: lines of about a kilobyte for a reader to be far enough behind
# that the server itself holds some of its output: the sockets' own
# buffers take the first 3 or 4 MB on Linux's loopback.
BEHIND=4200

# skip_if_dropped NAME: once NAME is gone, skips the test if the server
# dropped it for too much unsent output: this system's socket buffers are
# too small for a reader to be that far behind within the server's 1 MiB.
skip_if_dropped() {
    wait_for_log "^disconnected $(regex_quote "${ADDR[$1]}") "
    if grep -q "^disconnected $(regex_quote "${ADDR[$1]}") (too much unsent output)" "$SERVER_LOG"; then
        skip "the sockets' buffers here are too small for this test"
    fi
}

# check_numbered FILE PREFIX COUNT: FILE holds, first, the lines that
# send_numbered made, as heard from PREFIX, each once and in order.
check_numbered() {
    head -n "$3" "$1" | awk -v prefix="$2" -v n="$3" -v pad="$(repeat p 1000)" '
        $0 != sprintf("%s%05d %s", prefix, NR, pad) { print "line " NR " is wrong"; exit 1 }
        END { if (NR != n) { print "got " NR " lines of " n; exit 1 } }'
}

@test "a user who leaves is announced to everyone left: [ADDR]NAME is offline" {
    start_server
    join alice
    join bob
    join carol
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is online"
    expect bob "[${ADDR[carol]}]${ADDR[carol]} is online"
    # bob has read everything, so his system closes cleanly (FIN).
    disconnect bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    expect carol "[${ADDR[bob]}]${ADDR[bob]} is offline"
    wait_for_log "^disconnected $(regex_quote "${ADDR[bob]}") "
}

@test "the user who leaves does not hear of its own leaving" {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    # bob stops sending but still reads: the server takes it as a leave.
    half_close bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    expect_eof bob
}

@test "a user who vanishes with news unread (a reset) is announced offline" {
    start_server
    join alice
    join bob
    join carol
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is online"
    # bob has carol's arrival unread: closing, his system sends a reset.
    disconnect bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    expect carol "[${ADDR[bob]}]${ADDR[bob]} is offline"
}

@test "a user who leaves in the middle of a line: only the notice is relayed" {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    send_bytes bob 'half a li'
    disconnect bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    # Nothing of the half line came after the notice either.
    send alice "after"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "the offline notice comes after everything the leaver said" {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    # bob's lines and the end of his stream leave together. He half-closes
    # rather than closes: closing with his own lines coming back unread
    # would make his system send a reset, and the server could lose the
    # lines it had not read yet.
    send_bytes bob 'one\ntwo\nthree\n'
    half_close bob
    local line
    for line in one two three; do
        expect alice "[${ADDR[bob]}]${ADDR[bob]}: $line"
    done
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
}

@test "20 users leaving at once are each announced once" {
    start_server
    local i n=20 addr line got=() want=()
    join alice
    for ((i = 1; i <= n; i++)); do
        connect "u$i"
    done
    wait_for_log "^connected " $((n + 1))
    for addr in $(sed -n 's/^connected //p' "$SERVER_LOG" | tail -n $n); do
        expect alice "[$addr]$addr is online"
        want+=("[$addr]$addr is offline")
    done
    # They close all at once, each with news unread: so many resets.
    for ((i = 1; i <= n; i++)); do
        disconnect "u$i"
    done
    for ((i = 1; i <= n; i++)); do
        read_line alice line || fail "alice: got $READ_ERROR after ${got[*]}"
        got+=("$line")
    done
    # The same departures, each once, in whatever order they were noticed.
    [[ $(printf '%s\n' "${got[@]}" | sort) == "$(printf '%s\n' "${want[@]}" | sort)" ]] ||
        fail "alice heard:" "${got[@]}"
    # And nothing more: her own line comes next.
    send alice "after"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "a user dropped for 1 MiB of unsent output is announced offline" {
    start_server
    join alice
    join bob
    join lazy
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[lazy]}]${ADDR[lazy]} is online"
    expect bob "[${ADDR[lazy]}]${ADDR[lazy]} is online"
    local who pad prefix notice n=2000
    pad=$(repeat p 3990)
    prefix="[${ADDR[alice]}]${ADDR[alice]}: "
    notice="[${ADDR[lazy]}]${ADDR[lazy]} is offline"
    # alice sends 8 MB, a part at a time as she and bob read it; lazy reads
    # nothing. The notice comes somewhere among alice's lines.
    read_all alice bob
    send_paced alice $n "$pad" "$prefix" alice bob
    for who in alice bob; do
        wait_for_file_lines "$BATS_TEST_TMPDIR/$who" "^$(regex_quote "$notice")$" 1
        # Every line of alice's came, and the notice once among them.
        (($(grep -cxF -- "$notice" "$BATS_TEST_TMPDIR/$who") == 1)) ||
            fail "$who did not hear '$notice' once"
        grep -vxF -- "$notice" "$BATS_TEST_TMPDIR/$who" |
            awk -v prefix="$prefix" -v n=$n -v pad="$pad" '
                $0 != sprintf("%s%05d %s", prefix, NR, pad) { print "line " NR " is wrong"; exit 1 }
                END { if (NR != n) { print "got " NR " lines of " n; exit 1 } }'
    done
    wait_for_log_line "disconnected ${ADDR[lazy]} (too much unsent output)"
    # lazy's stream ends, short of 8 MB and without news of its own leaving.
    timeout "$TIMEOUT" cat <&"${FD[lazy]}" >"$BATS_TEST_TMPDIR/lazy"
    (($(wc -c <"$BATS_TEST_TMPDIR/lazy") < 8000000))
    ! grep -qF -- "$notice" "$BATS_TEST_TMPDIR/lazy"
}

@test "a user who stops sending still gets everything queued for it" {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    local n=$BEHIND prefix="[${ADDR[alice]}]${ADDR[alice]}: "
    # alice sends 4 MB; bob reads none of it yet, so some of it waits in
    # the server, beyond what the sockets' buffers hold.
    send_numbered alice $n
    read_lines alice $n >/dev/null
    # bob sends his last line and shuts down his sending side, as the menu
    # client does when it leaves.
    send bob "bye"
    half_close bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]}: bye"
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    # Input ending is not output ending: bob gets every line, then the end.
    timeout "$TIMEOUT" cat <&"${FD[bob]}" >"$BATS_TEST_TMPDIR/bob"
    skip_if_dropped bob
    check_numbered "$BATS_TEST_TMPDIR/bob" "$prefix" $n
    [[ $(tail -n 1 "$BATS_TEST_TMPDIR/bob") == "[${ADDR[bob]}]${ADDR[bob]}: bye" ]] ||
        fail "bob: expected his own last line at the end" \
            "bob: got '$(tail -n 1 "$BATS_TEST_TMPDIR/bob")'"
}

@test "SIGTERM: everyone hears 'server is shutting down', then exit 0" {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    signal_server TERM
    local who
    for who in alice bob; do
        expect "$who" "server is shutting down"
        expect_eof "$who"
        disconnect "$who"
    done
    stop_server
    grep -qx "shutting down" "$SERVER_LOG"
    wait_for_log_line "disconnected ${ADDR[alice]} (server shutting down)"
}

@test "shutdown: a client that never closes its side is still logged as it goes" {
    start_server
    join alice
    signal_server TERM
    expect alice "server is shutting down"
    expect_eof alice
    # alice keeps her side open: the server gives up waiting for its end
    # when its grace runs out, and ends at about the same moment.
    stop_server
    wait_for_log_line "disconnected ${ADDR[alice]} (server shutting down)"
}

@test "SIGINT shuts down the same way" {
    start_server
    join alice
    signal_server INT
    expect alice "server is shutting down"
    expect_eof alice
    disconnect alice
    stop_server INT
}

@test "shutdown: the goodbye comes after every line already queued" {
    start_server
    join alice
    join bob
    join carol
    signal_server
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is online"
    expect alice "server is shutting down"
    expect_eof alice
}

@test "shutdown: a reader far behind gets everything queued, then the goodbye" {
    start_server
    join alice
    join lazy
    expect alice "[${ADDR[lazy]}]${ADDR[lazy]} is online"
    local n=$BEHIND prefix="[${ADDR[alice]}]${ADDR[alice]}: "
    send_numbered alice $n
    read_lines alice $n >/dev/null
    signal_server
    # lazy starts reading only now: every line, the goodbye, the end.
    timeout "$TIMEOUT" cat <&"${FD[lazy]}" >"$BATS_TEST_TMPDIR/lazy"
    disconnect lazy
    skip_if_dropped lazy
    check_numbered "$BATS_TEST_TMPDIR/lazy" "$prefix" $n
    [[ $(tail -n 1 "$BATS_TEST_TMPDIR/lazy") == "server is shutting down" ]] ||
        fail "lazy: expected the goodbye at the end" \
            "lazy: got '$(tail -n 1 "$BATS_TEST_TMPDIR/lazy")'"
    disconnect alice
    stop_server
}

@test "shutdown: a user still sending gets the goodbye, not a reset" {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    local n=2000 prefix="[${ADDR[bob]}]${ADDR[bob]}: "
    # bob sends 2 MB that alice does not read yet: some of it waits in the
    # server's socket to her.
    send_numbered bob $n
    read_lines bob $n >/dev/null
    # alice goes on sending a line that never ends. When the server stops,
    # some of it is still unread on the server's side: a socket closed that
    # way sends a reset, which throws away what it had still to send.
    head -c 10000000 /dev/zero | tr '\0' x >&"${FD[alice]}" 2>/dev/null &
    local writer=$!
    signal_server
    timeout "$TIMEOUT" cat <&"${FD[alice]}" >"$BATS_TEST_TMPDIR/alice" ||
        fail "alice: her stream ended in an error, not in its end"
    # She has heard the end: she stops sending, and the server can go
    # without waiting out its grace for her.
    kill "$writer" 2>/dev/null || true
    disconnect bob
    check_numbered "$BATS_TEST_TMPDIR/alice" "$prefix" $n
    [[ $(tail -n 1 "$BATS_TEST_TMPDIR/alice") == "server is shutting down" ]] ||
        fail "alice: expected the goodbye at the end" \
            "alice: got '$(tail -n 1 "$BATS_TEST_TMPDIR/alice" | cut -c 1-80)'"
    disconnect alice
    stop_server
}

@test "shutdown works while nobody reads the log" {
    LOG_UNREAD=1 start_server
    visit 3000
    join alice
    signal_server
    wait_for alice "server is shutting down"
    expect_eof alice
    disconnect alice
    stop_server
}
