#!/usr/bin/env bats
# step6.bats - rename: "rename|NEW" gives a user a name of its choice, told
# to everyone; from then on its messages, its place in the who list and
# the news of its leaving carry the new name, while the address stays. A
# name is 1-32 bytes of valid UTF-8, with no spaces, no control or invisible
# characters and no '|', and no two users have the same one; a refusal goes
# to the asker alone.

load helpers

INVALID="error: invalid name: use 1-32 bytes of UTF-8, no spaces, no control or invisible characters, no '|'"

# renamed NAME NEW: the line that tells of the client's user, still named
# after its address, taking the name NEW.
renamed() {
    printf '[%s]%s is now known as %s' "${ADDR[$1]}" "${ADDR[$1]}" "$2"
}

# two_users: alice and bob have joined, and alice has heard bob arrive.
two_users() {
    start_server
    join alice
    join bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is online"
}

# refused NAME ERROR FORMAT [ARGS...]: the client sends what printf makes of
# FORMAT and is answered ERROR, and nobody else hears a thing: alice's next
# line is the public message that the client sends after. Its name stayed.
refused() {
    local name=$1 error=$2 other
    shift 2
    send_bytes "$name" "$@"
    send "$name" "after"
    expect "$name" "$error"
    expect "$name" "$(said "$name" after)"
    for other in "${!FD[@]}"; do
        [[ $other == "$name" ]] || expect "$other" "$(said "$name" after)"
    done
}

@test "rename|NEW: everyone, the asker too, hears [ADDR]OLD is now known as NEW" {
    two_users
    send alice "rename|alice"
    expect alice "$(renamed alice alice)"
    expect bob "$(renamed alice alice)"
}

@test "after a rename, messages carry the new name and the same address" {
    two_users
    send_bytes alice 'rename|alice\nhello\n'
    expect bob "$(renamed alice alice)"
    expect bob "[${ADDR[alice]}]alice: hello"
    expect alice "$(renamed alice alice)"
    expect alice "[${ADDR[alice]}]alice: hello"
}

@test "after a rename, who lists the new name in the same place" {
    two_users
    send bob "rename|bob"
    expect alice "$(renamed bob bob)"
    send_bytes alice 'who\nafter\n'
    expect alice "[${ADDR[alice]}]${ADDR[alice]} is online"
    expect alice "[${ADDR[bob]}]bob is online"
    expect alice "$(said alice after)"
}

@test "after a rename, the news of leaving carries the new name" {
    two_users
    send bob "rename|bob"
    expect alice "$(renamed bob bob)"
    expect bob "$(renamed bob bob)"
    disconnect bob
    expect alice "[${ADDR[bob]}]bob is offline"
}

@test "a user can rename again: [ADDR]OLD is now known as NEW" {
    two_users
    send_bytes alice 'rename|one\nrename|two\nhi\n'
    expect bob "$(renamed alice one)"
    expect bob "[${ADDR[alice]}]one is now known as two"
    expect bob "[${ADDR[alice]}]two: hi"
}

@test "rename ending in CRLF: the CR is not part of the name" {
    two_users
    send_bytes alice 'rename|alice\r\nhi\n'
    expect bob "$(renamed alice alice)"
    expect bob "[${ADDR[alice]}]alice: hi"
}

@test "another user's name is taken: an error to the asker only" {
    two_users
    send alice "rename|alice"
    expect alice "$(renamed alice alice)"
    expect bob "$(renamed alice alice)"
    refused bob 'error: name "alice" is already taken' 'rename|alice\n'
}

@test "the asker's own current name is taken too" {
    two_users
    refused alice "error: name \"${ADDR[alice]}\" is already taken" \
        'rename|%s\n' "${ADDR[alice]}"
    send alice "rename|alice"
    expect bob "$(renamed alice alice)"
    expect alice "$(renamed alice alice)"
    send_bytes alice 'rename|alice\nafter\n'
    expect alice 'error: name "alice" is already taken'
    expect alice "[${ADDR[alice]}]alice: after"
    expect bob "[${ADDR[alice]}]alice: after"
}

@test "another user's first name, its address, is taken" {
    two_users
    refused bob "error: name \"${ADDR[alice]}\" is already taken" \
        'rename|%s\n' "${ADDR[alice]}"
}

@test "a name shaped like an address is kept for newcomers: taken" {
    # Newcomers are named after their addresses; had alice taken one, a
    # later connection from that address would share her name.
    two_users
    refused alice 'error: name "127.0.0.1:40000" is already taken' \
        'rename|127.0.0.1:40000\n'
    refused alice 'error: name "[::1]:40000" is already taken' \
        'rename|[::1]:40000\n'
    # Only the full shape counts: colons and digits alone are fine.
    send alice "rename|a:1"
    expect alice "$(renamed alice a:1)"
    expect bob "$(renamed alice a:1)"
}

@test "a name given up by a rename is free for someone else" {
    two_users
    send_bytes alice 'rename|alice\nrename|ally\n'
    expect bob "$(renamed alice alice)"
    expect bob "[${ADDR[alice]}]alice is now known as ally"
    send bob "rename|alice"
    expect bob "$(renamed bob alice)"
    expect alice "$(renamed alice alice)"
    expect alice "[${ADDR[alice]}]alice is now known as ally"
    expect alice "$(renamed bob alice)"
}

@test "the name of a user who left is free for someone else" {
    two_users
    send alice "rename|alice"
    expect alice "$(renamed alice alice)"
    expect bob "$(renamed alice alice)"
    disconnect alice
    expect bob "[${ADDR[alice]}]alice is offline"
    send bob "rename|alice"
    expect bob "$(renamed bob alice)"
}

@test "an empty name is refused: rename|" {
    two_users
    refused alice "$INVALID" 'rename|\n'
    refused alice "$INVALID" 'rename|\r\n'
}

@test "a name of 32 bytes is accepted, one of 33 refused" {
    two_users
    refused alice "$INVALID" 'rename|%s\n' "$(repeat n 33)"
    send alice "rename|$(repeat n 32)"
    expect bob "$(renamed alice "$(repeat n 32)")"
}

@test "a name with a space or a TAB is refused" {
    two_users
    refused alice "$INVALID" 'rename|a b\n'
    refused alice "$INVALID" 'rename| alice\n'
    refused alice "$INVALID" 'rename|alice \n'
    refused alice "$INVALID" 'rename|a\tb\n'
}

@test "a name with a control character is refused, not cleaned" {
    two_users
    local c
    for c in '\x01' '\x1b' '\x7f' '\x08' '\x00' '\r'; do
        refused alice "$INVALID" "rename|a${c}b\\n"
    done
    refused alice "$INVALID" 'rename|\x1b\n'
}

@test "a name with C1 controls or bytes that are not UTF-8 is refused" {
    two_users
    local bad
    # A raw C1 CSI, the same in UTF-8, a byte never found in UTF-8, an
    # overlong '/', a surrogate, a sequence cut short.
    for bad in '\x9b31m' '\xc2\x9b31m' '\xff' '\xc0\xaf' '\xed\xa0\x80' '\xe4\xbd'; do
        refused alice "$INVALID" "rename|a${bad}b\\n"
    done
}

@test "a name with invisible or direction-changing characters is refused" {
    two_users
    local bad
    # Zero width space, right-to-left override, word joiner, first strong
    # isolate, zero width no-break space: each could make one name look
    # like another.
    for bad in '\xe2\x80\x8b' '\xe2\x80\xae' '\xe2\x81\xa0' '\xe2\x81\xa8' '\xef\xbb\xbf'; do
        refused alice "$INVALID" "rename|bo${bad}b\\n"
    done
}

@test "a name with '|' is refused" {
    two_users
    refused alice "$INVALID" 'rename|a|b\n'
    refused alice "$INVALID" 'rename||\n'
    refused alice "$INVALID" 'rename|alice|\n'
}

@test "UTF-8 names work; the limit counts bytes, not characters" {
    two_users
    send alice "rename|张三"
    expect bob "$(renamed alice 张三)"
    send alice "hi"
    expect bob "[${ADDR[alice]}]张三: hi"
    # 张 is 3 bytes: 10 of them make 30 bytes, 11 make 33.
    send bob "rename|$(repeat 张 10)"
    expect alice "$(renamed alice 张三)"
    expect alice "[${ADDR[alice]}]张三: hi"
    expect alice "$(renamed bob "$(repeat 张 10)")"
    expect bob "$(renamed bob "$(repeat 张 10)")"
    send alice "rename|$(repeat 张 11)"
    send alice "after"
    expect alice "$INVALID"
    expect alice "[${ADDR[alice]}]张三: after"
    expect bob "[${ADDR[alice]}]张三: after"
}

@test "lines that only look like rename are public messages" {
    two_users
    local text
    for text in 'rename' 'rename alice' 'RENAME|alice' ' rename|alice' 'rename:alice'; do
        send alice "$text"
        expect alice "$(said alice "$text")"
        expect bob "$(said alice "$text")"
    done
    # While rename|alice is the command.
    send alice "rename|alice"
    expect bob "$(renamed alice alice)"
}
