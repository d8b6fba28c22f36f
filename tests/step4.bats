#!/usr/bin/env bats
# step4.bats - the user module: the server is split into modules, and one
# thing is new: when a user leaves, vanishes or is dropped, everyone left
# hears "[ADDR]NAME is offline", once, after everything that user said.

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
    local i who pad prefix last notice chunk=100 n=4000 line_len
    pad=$(repeat p 3990)
    prefix="[${ADDR[alice]}]${ADDR[alice]}: "
    notice="[${ADDR[lazy]}]${ADDR[lazy]} is offline"
    line_len=$((${#prefix} + 6 + ${#pad} + 1))
    # alice sends 16 MB, 400 kB at a time, and she and bob read each part
    # before the next is sent; lazy reads nothing. The notice comes
    # somewhere among alice's lines: when a part does not end with its last
    # line, the notice was in it, and its bytes are still to be read.
    for ((i = 1; i <= n; i += chunk)); do
        awk -v pad="$pad" -v from=$i -v to=$((i + chunk - 1)) \
            'BEGIN { for (k = from; k <= to; k++) printf "%05d %s\n", k, pad }' \
            >&"${FD[alice]}"
        printf -v last '%s%05d %s' "$prefix" $((i + chunk - 1)) "$pad"
        for who in alice bob; do
            read_bytes $who $((chunk * line_len)) >>"$BATS_TEST_TMPDIR/$who"
            if [[ $(tail -c "$line_len" "$BATS_TEST_TMPDIR/$who") != "$last" ]]; then
                read_bytes $who $((${#notice} + 1)) >>"$BATS_TEST_TMPDIR/$who"
            fi
        done
    done
    # The notice may also have come after the last part.
    send alice "end"
    for who in alice bob; do
        while read_line $who line && [[ $line != "${prefix}end" ]]; do
            printf '%s\n' "$line" >>"$BATS_TEST_TMPDIR/$who"
        done
        # Every line of alice's came, and the notice once among them.
        (($(grep -cxF -- "$notice" "$BATS_TEST_TMPDIR/$who") == 1)) ||
            fail "$who did not hear '$notice' once"
        grep -vxF -- "$notice" "$BATS_TEST_TMPDIR/$who" |
            awk -v prefix="$prefix" -v n=$n -v pad="$pad" '
                $0 != sprintf("%s%05d %s", prefix, NR, pad) { print "line " NR " is wrong"; exit 1 }
                END { if (NR != n) { print "got " NR " lines of " n; exit 1 } }'
    done
    wait_for_log_line "disconnected ${ADDR[lazy]} (too much unsent output)"
    # lazy's stream ends, short of 16 MB and without news of its own leaving.
    timeout "$TIMEOUT" cat <&"${FD[lazy]}" >"$BATS_TEST_TMPDIR/lazy"
    (($(wc -c <"$BATS_TEST_TMPDIR/lazy") < 16000000))
    ! grep -qF -- "$notice" "$BATS_TEST_TMPDIR/lazy"
}
