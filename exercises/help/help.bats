#!/usr/bin/env bats
# help.bats - the help command: the line "help", and nothing but it, makes
# the server tell the asker alone which commands there are, in six lines.
# See exercises/help/README.md.

load ../../tests/helpers

# The answer to help, line by line.
HELP=(
    'commands:'
    'who             list the users online, oldest first'
    'rename|NEW      take the name NEW'
    'to|NAME|TEXT    send TEXT to the user named NAME alone'
    'help            show this list'
    'any other line  say it to everyone'
)

# expect_help NAME: the client's next six lines are the answer to help.
expect_help() {
    local line
    for line in "${HELP[@]}"; do
        expect "$1" "$line" || return 1
    done
}

# two_users: alice and bob have joined, and alice has heard bob arrive.
two_users() {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
}

@test "help lists the commands, one a line, to the asker" {
    two_users
    send alice "help"
    expect_help alice
    # The list ended there: alice's next line is the next thing she caused.
    send alice "after"
    expect alice "$(said alice after)"
}

@test "only the asker hears the answer to help" {
    two_users
    # The server keeps order: had the list gone to bob, it would come
    # before alice's next line.
    send_bytes alice 'help\nafter\n'
    expect bob "$(said alice after)"
    expect_help alice
    expect alice "$(said alice after)"
}

@test "a user alone can ask for help" {
    start_server
    join alice
    send_bytes alice 'help\nafter\n'
    expect_help alice
    expect alice "$(said alice after)"
}

@test "help ending in CRLF is the command too" {
    two_users
    send_bytes alice 'help\r\nafter\n'
    expect_help alice
    expect alice "$(said alice after)"
}

@test "help sent in several writes is the command too" {
    two_users
    send_bytes alice 'he'
    send_bytes alice 'lp'
    send_bytes alice '\nafter\n'
    expect_help alice
    expect alice "$(said alice after)"
}

@test "a line that is not exactly help is a public message" {
    two_users
    local text
    for text in 'help ' ' help' 'HELP' 'Help' 'help|who' 'help me' 'helpme' '/help'; do
        send alice "$text"
        expect alice "$(said alice "$text")"
        expect bob "$(said alice "$text")"
    done
}

@test "help keeps its place among the asker's other lines" {
    two_users
    send_bytes alice 'one\nhelp\ntwo\n'
    expect alice "$(said alice one)"
    expect_help alice
    expect alice "$(said alice two)"
    expect bob "$(said alice one)"
    expect bob "$(said alice two)"
}

@test "the other commands still work after help" {
    two_users
    send_bytes alice 'help\nwho\nrename|alice\n'
    expect_help alice
    expect alice "[${ADDR[alice]}]${ADDR[alice]} is online"
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
    expect alice "[${ADDR[alice]}]${ADDR[alice]} is now known as alice"
    expect bob "[${ADDR[alice]}]${ADDR[alice]} is now known as alice"
    send bob "to|alice|psst"
    expect alice "[${ADDR[bob]}]${ADDR[bob]} (private): psst"
}
