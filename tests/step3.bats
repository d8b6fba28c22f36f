#!/usr/bin/env bats
# step3.bats - broadcast: every line a user sends reaches everyone online,
# the sender too, once, whole and in order, however TCP cut it up.

load helpers

# check_sequence PREFIX N PAD: checks that stdin is the lines
# "PREFIX00001 PAD" up to "PREFIX<N> PAD", in order, each once.
check_sequence() {
    awk -v prefix="$1" -v n="$2" -v pad="$3" '
        $0 != sprintf("%s%05d %s", prefix, NR, pad) { print "line " NR " is wrong"; exit 1 }
        END { if (NR != n) { print "got " NR " lines of " n; exit 1 } }'
}

@test "a line reaches everyone, the sender too: [ADDR]NAME: TEXT" {
    start_server
    join alice
    join bob
    send alice "hello, world"
    expect_message alice "[${ADDR[alice]}]${ADDR[alice]}: hello, world"
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: hello, world"
}

@test "a line split over several writes is relayed once, whole" {
    start_server
    join alice
    join bob
    send_bytes alice 'hel'
    # bob's line goes through the server while alice's is half sent, and
    # nothing of hers arrives before it.
    send bob "ping"
    expect_message alice "[${ADDR[bob]}]${ADDR[bob]}: ping"
    send_bytes alice 'lo, '
    send bob "pong"
    expect_message alice "[${ADDR[bob]}]${ADDR[bob]}: pong"
    send_bytes alice 'world\n'
    expect_message alice "[${ADDR[alice]}]${ADDR[alice]}: hello, world"
    expect_message bob "[${ADDR[bob]}]${ADDR[bob]}: ping"
    expect_message bob "[${ADDR[bob]}]${ADDR[bob]}: pong"
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: hello, world"
}

@test "several lines in one write are relayed one by one, in order" {
    start_server
    join alice
    join bob
    send_bytes alice 'one\ntwo\nthree\n'
    local line
    for line in one two three; do
        expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: $line"
    done
}

@test "a CR before the LF is dropped" {
    start_server
    join alice
    join bob
    send_bytes alice 'windows\r\n'
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: windows"
}

@test "empty lines are ignored, CRLF ones too" {
    start_server
    join alice
    join bob
    send_bytes alice '\n\r\n\n'
    send alice "after"
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "control characters are removed; TAB and UTF-8 pass untouched" {
    start_server
    join alice
    join bob
    send_bytes alice 'a\x1b[31mb\x07c\td\x7fe\rf \xe4\xbd\xa0\xe5\xa5\xbd\x00!\n'
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: a[31mbc	def 你好!"
}

@test "C1 controls, raw or in UTF-8, and invalid UTF-8 are removed" {
    start_server
    join alice
    join bob
    # A raw C1 CSI, the same in UTF-8, NEL in UTF-8, a byte never found in
    # UTF-8, an overlong '/', a surrogate, a sequence cut short: all go.
    send_bytes alice 'a\x9b31mb\xc2\x9b32mc\xc2\x85d\xffe\xc0\xaff\xed\xa0\x80g\xe4\xbd\n'
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: a31mb32mcdefg"
    # Valid UTF-8 of every length passes untouched: é, 你, 😀.
    send_bytes alice '\xc3\xa9 \xe4\xbd\xa0 \xf0\x9f\x98\x80\n'
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: é 你 😀"
}

@test "a line of nothing but control characters is ignored" {
    start_server
    join alice
    join bob
    send_bytes alice '\x1b\x07\x08\n'
    send alice "after"
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "a line of 4096 bytes is relayed, with or without a CR" {
    start_server
    join alice
    join bob
    local text
    text=$(repeat x 4096)
    send alice "$text"
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: $text"
    send_bytes alice '%s\r\n' "$text"
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: $text"
}

# From step 5 on, the sender of a line too long is told so; here nobody is.
# These tests hold for both: what the others hear.
@test "a line of 4097 bytes is dropped whole; the next line goes through" {
    start_server
    join alice
    join bob
    send alice "$(repeat y 4097)"
    send alice "next"
    # bob heard nothing of the long line.
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: next"
}

@test "a long line sent in pieces is dropped, none of it relayed" {
    start_server
    join alice
    join bob
    local i piece
    piece=$(repeat z 30000)
    for ((i = 0; i < 5; i++)); do
        send_bytes alice '%s' "$piece"
    done
    send_bytes alice 'tail of the long line\nnext\n'
    expect_message bob "[${ADDR[alice]}]${ADDR[alice]}: next"
}

@test "a user who leaves in the middle of a line: the half line is dropped" {
    start_server
    join alice
    join bob
    send_bytes bob 'half a li'
    disconnect bob
    wait_for_log "^disconnected $(regex_quote "${ADDR[bob]}") "
    send alice "after"
    expect_message alice "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "lines from several senders reach everyone in one and the same order" {
    start_server
    local i who
    for who in a b c; do
        join "$who"
    done
    # Each sender's lines go out in one burst, racing the other two.
    for who in a b c; do
        for ((i = 1; i <= 50; i++)); do
            printf '%s %d\n' "$who" "$i"
        done >&"${FD[$who]}"
    done
    # a hears two arrivals after its own, b one, c none.
    read_lines a 152 | grep -v ' is online$' >"$BATS_TEST_TMPDIR/a"
    read_lines b 151 | grep -v ' is online$' >"$BATS_TEST_TMPDIR/b"
    read_lines c 150 >"$BATS_TEST_TMPDIR/c"
    cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
    cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/c"
    # Each sender's own lines kept their order.
    for who in a b c; do
        seq 1 50 | sed "s/^/[${ADDR[$who]}]${ADDR[$who]}: $who /" >"$BATS_TEST_TMPDIR/want"
        grep -F "]${ADDR[$who]}: " "$BATS_TEST_TMPDIR/a" | cmp - "$BATS_TEST_TMPDIR/want"
    done
}

@test "500 users: every line reaches every user once, whole and in order" {
    start_server
    local i n=500 line got=() want=()
    join u1
    connect_many u $n 2
    read_all_many u $n
    wait_for_log "^connected " $n
    # Lines cut across writes, several to a write.
    send_bytes u1 'first\nsec'
    send_bytes u1 'ond\nthird\n'
    send_bytes u1 'fourth\r\nfifth\n'
    for line in first second third fourth fifth; do
        want+=("[${ADDR[u1]}]${ADDR[u1]}: $line")
    done
    wait_last_line "${want[4]}" "$BATS_TEST_TMPDIR"/u{1..500}
    for ((i = 1; i <= n; i++)); do
        # The arrivals from its own on (u1 has read its own), then the lines.
        mapfile -t got <"$BATS_TEST_TMPDIR/u$i"
        [[ ${#got[@]} == $((n - i + (i > 1) + 5)) && ${got[*]: -6:1} == *" is online" &&
            ${got[*]: -5} == "${want[*]}" ]] ||
            fail "u$i did not get the five lines, once each, right after the arrivals:" \
                "$(tail -n 6 "$BATS_TEST_TMPDIR/u$i")"
    done
}

@test "a user who stopped reading holds nobody up, and is dropped past 1 MiB" {
    start_server
    join alice
    join bob
    join lazy
    local pad prefix n=2000
    pad=$(repeat p 3990)
    prefix="[${ADDR[alice]}]${ADDR[alice]}: "
    # alice sends 8 MB, a part at a time as she and bob read it; lazy reads
    # nothing. 8 MB is more than the sockets' own buffers and the server's
    # 1 MiB for lazy together.
    read_all alice bob
    send_paced alice $n "$pad" "$prefix" alice bob
    grep -F -- "$prefix" "$BATS_TEST_TMPDIR/alice" | check_sequence "$prefix" $n "$pad"
    grep -F -- "$prefix" "$BATS_TEST_TMPDIR/bob" | check_sequence "$prefix" $n "$pad"
    # The server dropped lazy: its stream ends, far short of 8 MB.
    local bytes
    bytes=$(timeout "$TIMEOUT" cat <&"${FD[lazy]}" | wc -c)
    ((bytes < 8000000))
    wait_for_log_line "disconnected ${ADDR[lazy]} (too much unsent output)"
}

@test "a burst from a few takes nobody down: fast readers get every line" {
    start_server
    local i readers=10 senders=4 lines=8192 letters=(a b c d) pids=()
    connect_many r $readers
    # Each reader reads as fast as it can, into a file of its own.
    read_all_many r $readers
    for ((i = 0; i < senders; i++)); do
        connect "s$i"
        yes "${letters[i]}" | head -n $lines >"$BATS_TEST_TMPDIR/s$i"
    done
    wait_for_log "^connected " $((readers + senders))
    # Each sender sends its one-byte lines in a single write, all at once:
    # the server is paused meanwhile, so that it finds the whole burst
    # waiting when it goes on.
    kill -STOP "$SERVER_PID"
    for ((i = 0; i < senders; i++)); do
        cat "$BATS_TEST_TMPDIR/s$i" >&"${FD[s$i]}" &
        pids+=($!)
    done
    wait "${pids[@]}"
    kill -CONT "$SERVER_PID"
    # Every reader gets every line: none is dropped for keeping up with a
    # burst, however much the others send at once.
    for ((i = 1; i <= readers; i++)); do
        wait_for_file_lines "$BATS_TEST_TMPDIR/r$i" ': [abcd]$' \
            $((senders * lines)) || fail "reader r$i was short of lines"
    done
    ! grep -q "too much unsent output" "$SERVER_LOG"
}
