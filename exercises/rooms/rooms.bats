#!/usr/bin/env bats
# rooms.bats - rooms: every user is in one room, the lobby at first.
# "join|ROOM" moves a user, "rooms" lists the rooms in use, "who" lists
# the asker's room, and public messages and the news of users reach their
# room only. See exercises/rooms/README.md.

load ../../tests/helpers

INVALID="error: invalid room: use 1-32 bytes of UTF-8, no spaces, no control or invisible characters, no '|'"

# online NAME: the line that lists the client's user, named after its
# address, or tells of its arrival.
online() {
    printf '[%s]%s is online' "${ADDR[$1]}" "${ADDR[$1]}"
}

# left NAME ROOM, joined NAME ROOM: the news of the client's user, named
# after its address, leaving ROOM or joining it.
left() {
    printf '[%s]%s left %s' "${ADDR[$1]}" "${ADDR[$1]}" "$2"
}
joined() {
    printf '[%s]%s joined %s' "${ADDR[$1]}" "${ADDR[$1]}" "$2"
}

# three_users: alice, bob and carol have joined, in that order, and each
# has heard the arrivals after its own. All three are in the lobby.
three_users() {
    start_server
    join alice
    join bob
    join carol
    expect alice "$(online bob)"
    expect alice "$(online carol)"
    expect bob "$(online carol)"
}

# alice_in_rust: three_users, then alice has moved to the room rust, and
# each has heard what it was told of the move.
alice_in_rust() {
    three_users
    send alice "join|rust"
    expect alice "$(left alice lobby)"
    expect alice "$(joined alice rust)"
    expect bob "$(left alice lobby)"
    expect carol "$(left alice lobby)"
}

# nothing_else_for NAME...: the next line of each client is the private
# message it sends itself now, which nobody else hears, whatever its room.
# The server keeps order, so nothing else was sent to them before it.
# Each is named after its address.
nothing_else_for() {
    local who
    for who in "$@"; do
        send "$who" "to|${ADDR[$who]}|after"
        expect "$who" "[${ADDR[$who]}]${ADDR[$who]} (private): after"
    done
}

@test "newcomers are in the lobby: rooms says so" {
    start_server
    join alice
    join bob
    expect alice "$(online bob)"
    send bob "rooms"
    expect bob "room lobby: 2 online"
    nothing_else_for alice bob
}

@test "join|ROOM: the room left hears [ADDR]NAME left OLD, the room joined [ADDR]NAME joined ROOM, the mover both" {
    alice_in_rust
    send bob "join|rust"
    expect alice "$(joined bob rust)"
    expect bob "$(left bob lobby)"
    expect bob "$(joined bob rust)"
    expect carol "$(left bob lobby)"
    nothing_else_for alice bob carol
}

@test "public messages stay in the sender's room" {
    alice_in_rust
    send alice "hello, rust"
    expect alice "$(said alice "hello, rust")"
    send bob "hello, lobby"
    expect bob "$(said bob "hello, lobby")"
    expect carol "$(said bob "hello, lobby")"
    # alice's line was handled before bob's, and bob and carol did not
    # hear it; alice does not hear bob's.
    nothing_else_for alice
}

@test "a move keeps its place among the mover's lines" {
    three_users
    send_bytes alice 'one\njoin|rust\ntwo\n'
    expect alice "$(said alice one)"
    expect alice "$(left alice lobby)"
    expect alice "$(joined alice rust)"
    expect alice "$(said alice two)"
    expect bob "$(said alice one)"
    expect bob "$(left alice lobby)"
    nothing_else_for bob
}

@test "who lists the asker's room only, oldest connection first" {
    alice_in_rust
    send carol "join|rust"
    expect alice "$(joined carol rust)"
    expect bob "$(left carol lobby)"
    send_bytes carol 'who\nafter\n'
    expect carol "$(left carol lobby)"
    expect carol "$(joined carol rust)"
    expect carol "$(online alice)"
    expect carol "$(online carol)"
    expect carol "$(said carol after)"
    send_bytes bob 'who\nafter\n'
    expect bob "$(online bob)"
    expect bob "$(said bob after)"
}

@test "rooms lists each room in use, in the order of its oldest user, with how many are in it" {
    three_users
    join dave
    send bob "join|rust"
    wait_for bob "$(joined bob rust)"
    send dave "join|go"
    wait_for dave "$(joined dave go)"
    send carol "join|rust"
    wait_for carol "$(joined carol rust)"
    # alice is the oldest, in the lobby; bob the oldest in rust; dave in go.
    send_bytes dave 'rooms\nafter\n'
    expect dave "room lobby: 1 online"
    expect dave "room rust: 2 online"
    expect dave "room go: 1 online"
    expect dave "$(said dave after)"
}

@test "a room no one is in is not listed, be it the lobby" {
    three_users
    local who
    for who in alice bob carol; do
        send "$who" "join|rust"
        wait_for "$who" "$(joined "$who" rust)"
    done
    wait_for alice "$(joined carol rust)"
    wait_for bob "$(joined carol rust)"
    send alice "rooms"
    expect alice "room rust: 3 online"
    send_bytes alice 'join|go\nrooms\n'
    expect alice "$(left alice rust)"
    expect alice "$(joined alice go)"
    expect alice "room go: 1 online"
    expect alice "room rust: 2 online"
    send_bytes bob 'join|lobby\nrooms\n'
    wait_for bob "$(joined bob lobby)"
    expect bob "room go: 1 online"
    expect bob "room lobby: 1 online"
    expect bob "room rust: 1 online"
}

@test "a user who left is not counted" {
    three_users
    disconnect bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    send_bytes alice 'rooms\n'
    expect alice "room lobby: 2 online"
}

@test "a newcomer's arrival is told to the lobby only" {
    alice_in_rust
    join dave
    expect bob "$(online dave)"
    expect carol "$(online dave)"
    nothing_else_for alice
}

@test "a newcomer lands in the lobby, even when nobody is in it" {
    start_server
    join alice
    send alice "join|rust"
    expect alice "$(left alice lobby)"
    expect alice "$(joined alice rust)"
    join bob
    send_bytes bob 'rooms\nwho\n'
    expect bob "room rust: 1 online"
    expect bob "room lobby: 1 online"
    expect bob "$(online bob)"
    nothing_else_for alice bob
}

@test "a user leaving is told to its room only" {
    alice_in_rust
    send bob "join|rust"
    expect alice "$(joined bob rust)"
    expect carol "$(left bob lobby)"
    disconnect bob
    expect alice "[${ADDR[bob]}]${ADDR[bob]} is offline"
    nothing_else_for alice carol
}

@test "a rename is told to the renamer's room only; names stay unique across rooms" {
    alice_in_rust
    send alice "rename|alice"
    expect alice "[${ADDR[alice]}]${ADDR[alice]} is now known as alice"
    send bob "rename|alice"
    expect bob 'error: name "alice" is already taken'
    nothing_else_for bob carol
    send_bytes alice 'join|lobby\n'
    expect alice "[${ADDR[alice]}]alice left rust"
    expect alice "[${ADDR[alice]}]alice joined lobby"
    expect bob "[${ADDR[alice]}]alice joined lobby"
}

@test "to|NAME|TEXT reaches NAME in any room" {
    alice_in_rust
    send bob "to|${ADDR[alice]}|psst"
    expect alice "[${ADDR[bob]}]${ADDR[bob]} (private): psst"
    send alice "to|${ADDR[carol]}|hi"
    expect carol "[${ADDR[alice]}]${ADDR[alice]} (private): hi"
    nothing_else_for alice bob carol
}

@test "join|lobby goes back to the lobby" {
    alice_in_rust
    send alice "join|lobby"
    expect alice "$(left alice rust)"
    expect alice "$(joined alice lobby)"
    expect bob "$(joined alice lobby)"
    expect carol "$(joined alice lobby)"
    send alice "hello"
    expect bob "$(said alice hello)"
}

@test "joining the room one is in: error: already in room \"ROOM\", to the asker only" {
    alice_in_rust
    send alice "join|rust"
    expect alice 'error: already in room "rust"'
    send bob "join|lobby"
    expect bob 'error: already in room "lobby"'
    nothing_else_for alice bob carol
}

@test "an invalid room name is refused, to the asker only" {
    three_users
    local bad
    for bad in '' 'a b' 'a|b' '|' 'a\tb' 'a\x1bb' 'a\xffb' 'bo\xe2\x80\x8bb' "$(repeat r 33)"; do
        send_bytes alice "join|$bad\\n"
        expect alice "$INVALID"
    done
    nothing_else_for alice bob carol
    # The room stayed the lobby.
    send alice "hi"
    expect bob "$(said alice hi)"
}

@test "a room name may have 32 bytes of UTF-8, and be a user's name" {
    three_users
    send alice "join|$(repeat r 32)"
    expect alice "$(left alice lobby)"
    expect alice "$(joined alice "$(repeat r 32)")"
    send bob "join|张三"
    wait_for bob "$(left bob lobby)"
    expect bob "$(joined bob 张三)"
    send carol "join|${ADDR[carol]}"
    wait_for carol "$(left carol lobby)"
    expect carol "$(joined carol "${ADDR[carol]}")"
    send carol "rooms"
    expect carol "room $(repeat r 32): 1 online"
    expect carol "room 张三: 1 online"
    expect carol "room ${ADDR[carol]}: 1 online"
}

@test "rooms differ by a byte: Rust is not rust" {
    alice_in_rust
    send bob "join|Rust"
    expect bob "$(left bob lobby)"
    expect bob "$(joined bob Rust)"
    send bob "hi"
    expect bob "$(said bob hi)"
    nothing_else_for alice
}

@test "lines that only look like join| or rooms are public messages" {
    three_users
    local text
    for text in 'join' 'join rust' 'JOIN|rust' ' join|rust' 'rooms ' 'ROOMS' 'room' 'rooms|x'; do
        send alice "$text"
        expect alice "$(said alice "$text")"
        expect bob "$(said alice "$text")"
    done
}

@test "the shutdown reaches every room" {
    alice_in_rust
    signal_server
    wait_for alice "server is shutting down"
    wait_for bob "server is shutting down"
    wait_for carol "server is shutting down"
}

@test "12 users in 3 rooms: each hears its room's lines, all of them, in order" {
    start_server
    local i room names=()
    for ((i = 1; i <= 12; i++)); do
        join "u$i"
        names+=("u$i")
    done
    wait_for u1 "$(online u12)"
    # u1, u4, u7 and u10 stay in the lobby; the others go to r1 or r2.
    for ((i = 1; i <= 12; i++)); do
        room=$(((i - 1) % 3))
        ((room == 0)) && continue
        send "u$i" "join|r$room"
        wait_for "u$i" "$(joined "u$i" "r$room")"
    done
    for ((i = 1; i <= 12; i++)); do
        send "u$i" "ready"
        wait_for "u$i" "$(said "u$i" ready)"
    done
    read_all "${names[@]}"
    # Everyone sends five lines at once.
    for ((i = 1; i <= 12; i++)); do
        send_bytes "u$i" "u$i 1\\nu$i 2\\nu$i 3\\nu$i 4\\nu$i 5\\n"
    done
    for ((i = 1; i <= 12; i++)); do
        wait_for_file_lines "$BATS_TEST_TMPDIR/u$i" ': u[0-9]+ [1-5]$' 20
    done
    # Each heard the 20 lines of its room, each sender's in order, and
    # nothing from the other rooms.
    local who mate want got
    for ((i = 1; i <= 12; i++)); do
        for ((who = 1; who <= 12; who++)); do
            want=""
            (((who - i) % 3 == 0)) && want=$(printf '%s\n' "$(said "u$who" "u$who 1")" \
                "$(said "u$who" "u$who 2")" "$(said "u$who" "u$who 3")" \
                "$(said "u$who" "u$who 4")" "$(said "u$who" "u$who 5")")
            got=$(grep -F "]${ADDR[u$who]}: u$who " "$BATS_TEST_TMPDIR/u$i" || true)
            [[ $got == "$want" ]] || fail "u$i: expected the lines of u$who in its room, and only those:" \
                "$(cat "$BATS_TEST_TMPDIR/u$i")"
        done
    done
}
