#!/usr/bin/env bats
# step7.bats - private chat: "to|NAME|TEXT" sends
# "[ADDR]SENDER (private): TEXT" to the user named NAME and to nobody
# else, the sender included. NAME ends at the second '|'; TEXT may hold
# more of them and is cleaned of control characters like any message. A
# mistake is answered to the asker alone.

load helpers
load model

USAGE="error: usage: to|NAME|TEXT"

# whispered NAME TEXT: the private message TEXT from the client's user,
# named after its address.
whispered() {
    printf '[%s]%s (private): %s' "${ADDR[$1]}" "${ADDR[$1]}" "$2"
}

# three_users: alice, bob and carol have joined and read every arrival,
# and bob has taken the name "bob", which everyone has heard.
three_users() {
    start_server
    join alice
    join bob
    join carol
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is online"
    expect bob "[${ADDR[carol]}]${ADDR[carol]} is online"
    send bob "rename|bob"
    local who
    for who in alice bob carol; do
        expect "$who" "[${ADDR[bob]}]${ADDR[bob]} is now known as bob"
    done
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

@test "to|NAME|TEXT reaches NAME only: [ADDR]SENDER (private): TEXT" {
    three_users
    send alice "to|bob|hello, bob"
    expect bob "$(whispered alice "hello, bob")"
    # Neither the sender nor carol heard it.
    nothing_else_for alice bob carol
}

@test "a user can be reached by its first name, its address" {
    three_users
    send bob "to|${ADDR[carol]}|hello, carol"
    expect carol "[${ADDR[bob]}]bob (private): hello, carol"
    nothing_else_for alice bob carol
}

@test "the sender is named by its current name" {
    three_users
    send bob "rename|bobby"
    expect alice "[${ADDR[bob]}]bob is now known as bobby"
    send bob "to|${ADDR[alice]}|hi"
    expect alice "[${ADDR[bob]}]bobby (private): hi"
}

@test "NAME ends at the second '|': TEXT may hold more of them" {
    three_users
    send alice "to|bob|a|b||c|"
    expect bob "$(whispered alice "a|b||c|")"
    send alice "to|bob||"
    expect bob "$(whispered alice "|")"
    nothing_else_for alice bob carol
}

@test "control characters are removed from TEXT; TAB and UTF-8 pass" {
    three_users
    send_bytes alice 'to|bob|a\x1b[31mb\x07c\td\x7fe\x00f \xe4\xbd\xa0\xe5\xa5\xbd\r\n'
    expect bob "$(whispered alice "a[31mbc	def 你好")"
}

@test "UTF-8 names and text: to|张三|你好" {
    three_users
    send carol "rename|张三"
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is now known as 张三"
    expect carol "[${ADDR[carol]}]${ADDR[carol]} is now known as 张三"
    send alice "to|张三|你好"
    expect carol "$(whispered alice 你好)"
    nothing_else_for alice carol
}

@test "a user can send a private message to itself" {
    three_users
    send bob "to|bob|note to self"
    expect bob "[${ADDR[bob]}]bob (private): note to self"
    nothing_else_for alice bob carol
}

@test "a missing NAME or TEXT is answered with the usage, to the asker only" {
    three_users
    local line
    for line in 'to|' 'to|bob' 'to|bob|' 'to||hi' 'to||' 'to|bob|\r'; do
        send_bytes alice "$line\\n"
        expect alice "$USAGE"
    done
    nothing_else_for alice bob carol
}

@test "TEXT of nothing but control characters is answered with the usage" {
    three_users
    send_bytes alice 'to|bob|\x1b\x07\x7f\n'
    expect alice "$USAGE"
    nothing_else_for alice bob carol
}

@test "an unknown name: error: no user named \"NAME\", to the asker only" {
    three_users
    local name
    # Names match exactly: no other case, no extra blanks.
    for name in nobody BOB Bob ' bob' 'bob ' bo bobby 'no such'; do
        send alice "to|$name|hi"
        expect alice "error: no user named \"$name\""
    done
    nothing_else_for alice bob carol
}

@test "an unknown name is shown with its control characters as '?'" {
    three_users
    # "b<ESC>ob" is not bob; shown without the ESC it would look like him.
    send_bytes alice 'to|b\x1bob|hi\n'
    expect alice 'error: no user named "b?ob"'
    # So are C1 controls and bytes that are not UTF-8.
    send_bytes alice 'to|b\xc2\x9bo\xffb|hi\n'
    expect alice 'error: no user named "b?o?b"'
    nothing_else_for bob carol
}

@test "C1 controls and invalid UTF-8 are removed from TEXT" {
    three_users
    send_bytes alice 'to|bob|a\x9bb\xc2\x9bc\xffd\n'
    expect bob "[${ADDR[alice]}]${ADDR[alice]} (private): abcd"
}

@test "the Go course's client works: each command in one write, to| with a blank line" {
    # Its client writes "who\n", "rename|NAME\n", "to|NAME|TEXT\n\n" and
    # "TEXT\n", each in a single write; the blank line after to| is ignored.
    three_users
    send_bytes carol 'rename|carol\n'
    for who in alice bob carol; do
        expect "$who" "[${ADDR[carol]}]${ADDR[carol]} is now known as carol"
    done
    send_bytes carol 'who\n'
    expect carol "[${ADDR[alice]}]${ADDR[alice]} is online"
    expect carol "[${ADDR[bob]}]bob is online"
    expect carol "[${ADDR[carol]}]carol is online"
    send_bytes carol 'to|bob|psst\n\n'
    expect bob "[${ADDR[carol]}]carol (private): psst"
    send_bytes carol 'hello\n'
    for who in alice bob carol; do
        expect "$who" "[${ADDR[carol]}]carol: hello"
    done
}

@test "a user who left can no longer be reached" {
    three_users
    disconnect carol
    expect alice "[${ADDR[carol]}]${ADDR[carol]} is offline"
    send alice "to|${ADDR[carol]}|are you there?"
    expect alice "error: no user named \"${ADDR[carol]}\""
}

@test "a private message keeps its place among the sender's other lines" {
    three_users
    send_bytes alice 'one\nto|bob|two\nthree\n'
    expect bob "$(said alice one)"
    expect bob "$(whispered alice two)"
    expect bob "$(said alice three)"
    expect carol "$(said alice one)"
    expect carol "$(said alice three)"
}

@test "lines that only look like to| are public messages" {
    three_users
    local text
    for text in 'to' 'to bob hi' 'TO|bob|hi' ' to|bob|hi' 'to:bob:hi'; do
        send alice "$text"
        expect alice "$(said alice "$text")"
        expect bob "$(said alice "$text")"
    done
    # While to|bob|hi is the command.
    send alice "to|bob|hi"
    expect bob "$(whispered alice hi)"
}

@test "many clients at random: every line each one hears is as the model says" {
    start_server
    run_model_test -clients 20 -ops 2000 -seconds 5
}
