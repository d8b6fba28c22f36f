#!/usr/bin/env bats
# step5.bats - the who command: the line "who", and nothing but it, makes
# the server tell the asker alone who is online, one "[ADDR]NAME is online"
# per user, oldest connection first, the asker included.

load helpers

# online NAME: the line that lists the client's user, as named at arrival.
online() {
    printf '[%s]%s is online' "${ADDR[$1]}" "${ADDR[$1]}"
}

@test "who lists everyone online, oldest first, the asker included" {
    start_server
    join alice
    join bob
    join carol
    expect bob "$(online carol)"
    send bob "who"
    expect bob "$(online alice)"
    expect bob "$(online bob)"
    expect bob "$(online carol)"
    # The list ended there: bob's next line is the next thing he caused.
    send bob "after"
    expect bob "[${ADDR[bob]}]${ADDR[bob]}: after"
}

@test "only the asker hears the answer to who" {
    start_server
    join alice
    join bob
    join carol
    expect alice "$(online bob)"
    expect alice "$(online carol)"
    # The server keeps order: had the list gone to alice and carol, it
    # would come before bob's next line.
    send_bytes bob 'who\nafter\n'
    expect alice "[${ADDR[bob]}]${ADDR[bob]}: after"
    expect carol "[${ADDR[bob]}]${ADDR[bob]}: after"
}

@test "a user alone hears only itself" {
    start_server
    join alice
    send_bytes alice 'who\nafter\n'
    expect alice "$(online alice)"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "who ending in CRLF is the command too" {
    start_server
    join alice
    join bob
    expect alice "$(online bob)"
    send_bytes alice 'who\r\nafter\n'
    expect alice "$(online alice)"
    expect alice "$(online bob)"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: after"
    expect bob "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "who sent in several writes is the command too" {
    start_server
    join alice
    send_bytes alice 'w'
    send_bytes alice 'h'
    send_bytes alice 'o\nafter\n'
    expect alice "$(online alice)"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "a line that is not exactly who is a public message" {
    start_server
    join alice
    join bob
    expect alice "$(online bob)"
    local text
    # Trailing and leading blanks, another case, arguments, a longer word.
    for text in 'who ' ' who' 'who	' 'WHO' 'Who' 'who|x' 'who who' 'whoami'; do
        send alice "$text"
        expect alice "[${ADDR[alice]}]${ADDR[alice]}: $text"
        expect bob "[${ADDR[alice]}]${ADDR[alice]}: $text"
    done
    # While "who" itself is the command.
    send alice "who"
    expect alice "$(online alice)"
    expect alice "$(online bob)"
}

@test "who keeps its place among the asker's other lines" {
    start_server
    join alice
    join bob
    expect alice "$(online bob)"
    send_bytes alice 'one\nwho\ntwo\n'
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: one"
    expect alice "$(online alice)"
    expect alice "$(online bob)"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: two"
    expect bob "[${ADDR[alice]}]${ADDR[alice]}: one"
    expect bob "[${ADDR[alice]}]${ADDR[alice]}: two"
}

@test "a user who left is no longer listed; the others keep their order" {
    start_server
    join alice
    join bob
    join carol
    join dave
    expect bob "$(online carol)"
    expect bob "$(online dave)"
    # bob has read everything and leaves.
    disconnect bob
    wait_for alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    send_bytes alice 'who\nafter\n'
    expect alice "$(online alice)"
    expect alice "$(online carol)"
    expect alice "$(online dave)"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: after"
}

@test "100 users: who lists them all, in order of arrival" {
    start_server
    local i n=100 addr want
    connect_many u $n
    wait_for_log "^connected " $n
    join asker
    send_bytes asker 'who\nafter\n'
    # The log names the users in order of arrival, the asker last.
    want=$(for addr in $(sed -n 's/^connected //p' "$SERVER_LOG"); do
        printf '[%s]%s is online\n' "$addr" "$addr"
    done)
    [[ $(read_lines asker $((n + 2))) == "$want"$'\n'"[${ADDR[asker]}]${ADDR[asker]}: after" ]] ||
        fail "asker did not get the 101 users, in order, then its line"
}

# A line too long is answered to its sender alone, as who is: the output
# can now hold a line for one user.

@test "a call of user_send() with an argument missing does not compile" {
    format_is_checked user_send 'user_send(NULL, "error: %s")'
}

@test "a line of 4097 bytes is refused whole: its sender alone is told" {
    start_server
    join alice
    join bob
    expect alice "$(online bob)"
    send alice "$(repeat y 4097)"
    expect alice "error: line too long (max 4096 bytes)"
    send alice "next"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: next"
    expect bob "[${ADDR[alice]}]${ADDR[alice]}: next"
}

@test "a long line sent in pieces is refused once" {
    start_server
    join alice
    join bob
    expect alice "$(online bob)"
    local i piece
    piece=$(repeat z 30000)
    for ((i = 0; i < 5; i++)); do
        send_bytes alice '%s' "$piece"
    done
    send_bytes alice 'tail of the long line\nnext\n'
    expect alice "error: line too long (max 4096 bytes)"
    expect alice "[${ADDR[alice]}]${ADDR[alice]}: next"
    expect bob "[${ADDR[alice]}]${ADDR[alice]}: next"
}
