#!/usr/bin/env bats
# timestamps.bats - stamped messages: "server -stamps utc" or "-stamps
# local" starts each public and private message with the time of day the
# server relayed it, "HH:MM:SS ". See exercises/timestamps/README.md.

load ../../tests/helpers

STAMP='([0-2][0-9]:[0-5][0-9]:[0-6][0-9]) '

# clock [-u]: the time of day now, HH:MM:SS, local or UTC (-u).
clock() {
    date "$@" +%H:%M:%S
}

# within NAME STAMP BEFORE AFTER: the stamp the client heard is a time of
# day from BEFORE to AFTER, midnight perhaps between them.
within() {
    if [[ ! $3 > $4 ]]; then
        [[ ! $2 < $3 && ! $2 > $4 ]]
    else
        [[ ! $2 < $3 || ! $2 > $4 ]]
    fi || fail "$1: expected a stamp from $3, when the line was sent, to $4," \
        "$1: when it was heard; got $2"
}

# expect_stamped NAME LINE BEFORE [CLOCK_ARGS...]: the client's next line is
# LINE after a stamp of the time of day, from BEFORE to now, as the clock
# with CLOCK_ARGS tells it. STAMPED is then the stamp.
expect_stamped() {
    local name=$1 line=$2 before=$3 got
    shift 3
    read_line "$name" got || {
        fail "$name: expected 'HH:MM:SS $line'" "$name: got $READ_ERROR"
        return 1
    }
    [[ $got =~ ^$STAMP(.*)$ && ${BASH_REMATCH[2]} == "$line" ]] ||
        fail "$name: expected 'HH:MM:SS $line'" "$name:      got '$got'" || return 1
    STAMPED=${BASH_REMATCH[1]}
    within "$name" "$STAMPED" "$before" "$(clock "$@")"
}

# two_users [ARGS...]: a server started with ARGS; alice and bob have
# joined, and alice has heard bob arrive.
two_users() {
    start_server "$@"
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
}

@test "without -stamps, messages are not stamped" {
    two_users
    send alice "hello"
    expect alice "$(said alice hello)"
    expect bob "$(said alice hello)"
    send alice "to|${ADDR[bob]}|psst"
    expect bob "[${ADDR[alice]}]${ADDR[alice]} (private): psst"
}

@test "-stamps utc: a public message reaches everyone as 'HH:MM:SS [ADDR]NAME: TEXT', in UTC" {
    two_users -stamps utc
    local before first
    before=$(clock -u)
    send alice "hello"
    expect_stamped alice "$(said alice hello)" "$before" -u
    first=$STAMPED
    expect_stamped bob "$(said alice hello)" "$before" -u
    [[ $STAMPED == "$first" ]] || fail "alice heard the stamp $first, bob $STAMPED"
}

@test "-stamps utc: a private message is stamped too" {
    two_users -stamps utc
    local before
    before=$(clock -u)
    send alice "to|${ADDR[bob]}|psst"
    expect_stamped bob "[${ADDR[alice]}]${ADDR[alice]} (private): psst" "$before" -u
}

@test "-stamps local: the time of day in the server's time zone" {
    # Half an hour off any whole-hour zone: UTC would not pass for it.
    export TZ=IST-5:30
    two_users -stamps local
    local before
    before=$(clock)
    send alice "hello"
    expect_stamped bob "$(said alice hello)" "$before"
    send bob "to|${ADDR[alice]}|hi"
    expect_stamped alice "$(said alice hello)" "$before"
    expect_stamped alice "[${ADDR[bob]}]${ADDR[bob]} (private): hi" "$before"
}

@test "-stamps=utc works too" {
    two_users -stamps=utc
    local before
    before=$(clock -u)
    send alice "hello"
    expect_stamped bob "$(said alice hello)" "$before" -u
}

@test "only what users say is stamped: not arrivals, departures, renames, who, errors or the goodbye" {
    two_users -stamps utc
    join carol
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is online"
    expect bob "[${ADDR[carol]}]${ADDR[carol]} is online"
    send_bytes bob 'who\nto|nobody|hi\nto|\nrename|a b\n'
    expect bob "[${ADDR[alice]}]${ADDR[alice]} is online"
    expect bob "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect bob "[${ADDR[carol]}]${ADDR[carol]} is online"
    expect bob 'error: no user named "nobody"'
    expect bob "error: usage: to|NAME|TEXT"
    expect bob "error: invalid name: use 1-32 bytes of UTF-8, no spaces, no control or invisible characters, no '|'"
    send_bytes bob '%s\n' "$(repeat x 4097)"
    expect bob "error: line too long (max 4096 bytes)"
    send bob "rename|bob"
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is now known as bob"
    disconnect carol
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is offline"
    signal_server
    expect alice "server is shutting down"
}

@test "the stamp comes before the line, which is otherwise as before" {
    two_users -stamps utc
    local before
    send alice "rename|alice"
    expect bob "[${ADDR[alice]}]${ADDR[alice]} is now known as alice"
    before=$(clock -u)
    send_bytes alice 'a|b \x1b[31mc\td\n'
    expect_stamped bob "[${ADDR[alice]}]alice: a|b [31mc	d" "$before" -u
}

@test "-stamps takes utc or local; anything else is refused with status 2" {
    local zone
    for zone in UTC Local gmt "" "utc " +05:30; do
        run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -stamps "$zone"
        ((status == 2)) || fail "-stamps '$zone' gave status $status"
        [[ -z $output ]]
        [[ ${stderr_lines[0]} == "error: invalid time zone (use utc or local): $zone" ]] ||
            fail "-stamps '$zone': ${stderr_lines[0]}"
    done
    run --separate-stderr timeout "$TIMEOUT" "$STEP_DIR/server" -port 0 -stamps
    ((status == 2))
    [[ ${stderr_lines[0]} == "error: missing value for -stamps" ]]
}

@test "-h mentions -stamps, after the first line of the usage" {
    run "$STEP_DIR/server" -h
    ((status == 0))
    [[ ${lines[0]} == "usage: server [-ip ADDR] [-port PORT] [-timeout SECONDS]" ]]
    [[ $output == *"-stamps"* ]] || fail "-h does not mention -stamps:" "$output"
}
