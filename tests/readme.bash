# tests/readme.bash - a step's README tells the truth about its code.
#
# Loaded by step1.bats, and so run against every step: the C excerpts of
# the step's README are in its code, and its transcripts replay against its
# server. A transcript is a fenced block marked `transcript`:
#
#   $ make step3                      a command in the shell
#   step3-broadcast: listening on 127.0.0.1:8888 (...)
#   alice$ nc 127.0.0.1 8888          a command in alice's terminal
#   alice> hello                      what alice types (^C: she quits nc)
#   alice| [127.0.0.1:50312]...       what alice's terminal shows
#   # a comment                       skipped
#
# `alice$ make client` starts the step's client for alice, on a
# pseudo-terminal, against the server: `alice> text` types text and Enter
# (`^C`, Ctrl-C), and each `alice| row` is a row of what her terminal
# shows, below the row matched before it.
#
# Lines after `$ make stepN` are what make prints: its "listening on" is
# checked. Lines after `$ cat stepN-*/server.log` must be in the server's
# log, in that order. `$ make stop` sends the server SIGTERM. Addresses
# stand for whatever the server gives: 127.0.0.1:8888 is the server, and
# each other address is bound, the first time it is seen, to the address
# the server gave in its place, and must stay the same after that.

declare -gA BOUND=() # an address in the transcript -> the real one

# excerpts_in_code README DIR: every ```c block of README is, line for
# line, somewhere in DIR's .c and .h files, but a sketch: a block whose
# first line is a comment that begins "/* Sketch" shows code the step does
# not have (a naive version, say), and is not looked for.
excerpts_in_code() {
    local readme=$1 dir=$2 block="" in_block=0 line number=0 start=0 file found
    local sources=()
    for file in "$dir"/*.c "$dir"/*.h; do
        [[ -f $file ]] && sources+=("$(<"$file")")
    done
    while IFS= read -r line; do
        number=$((number + 1))
        if ((in_block)) && [[ $line == '```' ]]; then
            in_block=0
            [[ $block == "/* Sketch"* ]] && continue
            found=0
            for file in "${sources[@]}"; do
                [[ $file == *"$block"* ]] && found=1 && break
            done
            ((found)) || fail "$readme, line $start: this excerpt is not in the code:" "$block"
            ((found)) || return 1
        elif ((in_block)); then
            block+=${block:+$'\n'}$line
        elif [[ $line == '```c' ]]; then
            in_block=1
            block=""
            start=$number
        fi
    done <"$readme"
}

# transcript_regex LINE: LINE as an extended regular expression, each
# address in it standing for its real one, or for any if not yet bound.
# The first time an unbound address comes, it is a group to capture.
transcript_regex() {
    local rest=$1 out="" addr seen=" "
    while [[ $rest =~ ((127\.0\.0\.1|\[::1\]):[0-9]+) ]]; do
        addr=${BASH_REMATCH[1]}
        out+=$(regex_quote "${rest%%"$addr"*}")
        rest=${rest#*"$addr"}
        if [[ -n ${BOUND[$addr]:-} ]]; then
            out+=$(regex_quote "${BOUND[$addr]}")
        elif [[ $seen == *" $addr "* ]]; then
            out+='(127\.0\.0\.1|\[::1\]):[0-9]+'
        else
            out+='((127\.0\.0\.1|\[::1\]):[0-9]+)'
            seen+="$addr "
        fi
    done
    printf '%s' "$out$(regex_quote "$rest")"
}

# transcript_match GOT LINE: whether GOT is LINE, its addresses standing
# for real ones; binds the addresses seen for the first time.
transcript_match() {
    local got=$1 line=$2 regex rest addr k=1 candidate
    regex=^$(transcript_regex "$line")$
    [[ $got =~ $regex ]] || return 1
    # Bind the new addresses, left to right, to what their groups caught.
    local caught=("${BASH_REMATCH[@]}") seen=" "
    rest=$line
    while [[ $rest =~ ((127\.0\.0\.1|\[::1\]):[0-9]+) ]]; do
        addr=${BASH_REMATCH[1]}
        rest=${rest#*"$addr"}
        if [[ -z ${BOUND[$addr]:-} && $seen != *" $addr "* ]]; then
            candidate=${caught[k]}
            k=$((k + 2))
            seen+="$addr "
            BOUND[$addr]=$candidate
        fi
    done
    # Two addresses of the transcript may not stand for one real address.
    local a b
    for a in "${!BOUND[@]}"; do
        for b in "${!BOUND[@]}"; do
            [[ $a == "$b" || ${BOUND[$a]} != "${BOUND[$b]}" ]] || return 1
        done
    done
}

# transcript_expect NAME LINE: the client's next line is LINE.
transcript_expect() {
    local got
    read_line "$1" got || {
        fail "$1: expected '$2'" "$1: got $READ_ERROR"
        return 1
    }
    transcript_match "$got" "$2" ||
        fail "$1: expected '$2'" "$1:      got '$got'"
}

# transcript_in_log LINE: LINE is in the server's log, after the one before.
transcript_in_log() {
    local pause=0.01 deadline=$((SECONDS + TIMEOUT)) got
    while ((SECONDS <= deadline)); do
        while IFS= read -r got; do
            LOG_SEEN=$((LOG_SEEN + 1))
            transcript_match "$got" "$1" && return 0
        done < <(tail -n +$((LOG_SEEN + 1)) "$SERVER_LOG")
        nap "$pause"
        pause=0.05
    done
    fail "the log never had '$1' after its line $LOG_SEEN:" "$(cat "$SERVER_LOG")"
}

declare -gA TTY_PID=() TTY_KEYS=() TTY_ROW=() # the terminal clients

# tty_start NAME: starts the step's client on a pseudo-terminal, and waits
# until it shows its menu (keys typed before would be echoed by the
# terminal itself, not by the client).
tty_start() {
    local name=$1 pty=$BATS_FILE_TMPDIR/pty keys
    if [[ ! -x $pty ]]; then
        "${CC:-cc}" -O2 -o "$pty" "$BATS_TEST_DIRNAME/pty.c" 2>"$pty.err" || {
            fail "cannot build tests/pty.c:" "$(cat "$pty.err")"
            return 1
        }
    fi
    mkfifo "$BATS_TEST_TMPDIR/$name.keys"
    : >"$BATS_TEST_TMPDIR/$name.raw"
    TERM=xterm "$pty" run "$BATS_TEST_TMPDIR/$name.raw" "$STEP_DIR/client" \
        -port "$PORT" <"$BATS_TEST_TMPDIR/$name.keys" 2>/dev/null 3>&- &
    TTY_PID[$name]=$!
    exec {keys}>"$BATS_TEST_TMPDIR/$name.keys"
    TTY_KEYS[$name]=$keys
    TTY_ROW[$name]=0
    tty_expect "$name" "0. exit" && TTY_ROW[$name]=0
}

# tty_expect NAME ROW: a row of NAME's screen, below the one matched last,
# is ROW; the cursor's row, still being typed, may be matched again.
tty_expect() {
    local name=$1 deadline=$((SECONDS + TIMEOUT)) rows i regex
    regex=^$(transcript_regex "$2")$ # what transcript_match tries first
    for (( ; ; )); do
        mapfile -t rows < <("$BATS_FILE_TMPDIR/pty" screen "$BATS_TEST_TMPDIR/$name.raw")
        for ((i = TTY_ROW[$name]; i < ${#rows[@]}; i++)); do
            if [[ ${rows[i]} =~ $regex ]] && transcript_match "${rows[i]}" "$2"; then
                TTY_ROW[$name]=$((i + 1 < ${#rows[@]} ? i + 1 : i))
                return 0
            fi
        done
        if ((SECONDS > deadline)); then
            fail "$name: the screen never showed '$2' below its row ${TTY_ROW[$name]};" \
                "it shows:" "$(printf '%s\n' "${rows[@]}" | tail -n 12)"
            return 1
        fi
        nap 0.05
    done
}

# tty_type NAME TEXT: types TEXT and Enter, or Ctrl-C for ^C.
tty_type() {
    if [[ $2 == "^C" ]]; then
        printf '\x03' >&"${TTY_KEYS[$1]}"
    else
        printf '%s\r' "$2" >&"${TTY_KEYS[$1]}"
    fi
}

# tty_stop_all: ends every terminal client, as closing its window would.
tty_stop_all() {
    local name
    for name in "${!TTY_PID[@]}"; do
        eval "exec ${TTY_KEYS[$name]}>&-"
        kill "${TTY_PID[$name]}" 2>/dev/null || true
        wait "${TTY_PID[$name]}" 2>/dev/null || true
    done
    TTY_PID=() TTY_KEYS=() TTY_ROW=()
}

# transcript_command LINE: runs a shell command of the transcript.
transcript_command() {
    local args name
    case $1 in
    "make step"*)
        args=$(sed -n "s/.*ARGS='\\([^']*\\)'.*/\\1/p" <<<"$1")
        # shellcheck disable=SC2086
        start_server $args
        BOUND["127.0.0.1:8888"]="127.0.0.1:$PORT"
        BOUND["[::1]:8888"]="[::1]:$PORT"
        LOG_SEEN=0
        MODE=make STOPPED=0
        ;;
    "make stop")
        signal_server TERM
        MODE=stop STOPPED=1
        ;;
    "cat "*"server.log" | "tail "*"server.log")
        # After make stop, the clients heard the goodbye: they close their
        # side, as a reader would, rather than make the server wait its
        # grace out for them.
        if ((STOPPED)); then
            for name in "${!FD[@]}"; do
                disconnect "$name"
            done
        fi
        MODE=log
        ;;
    *)
        fail "the transcript runs '$1': only make stepN, make stop and cat of the log can be replayed"
        return 1
        ;;
    esac
}

# replay_transcript FILE: replays one transcript, from a fresh server.
replay_transcript() {
    local line name rest host MODE=none STOPPED=0
    BOUND=()
    while IFS= read -r line; do
        if [[ -z $line || $line == "#"* ]]; then
            continue
        elif [[ $line == '$ '* ]]; then
            transcript_command "${line#\$ }" || return 1
        elif [[ $line =~ ^([a-z]+)\$\ make\ client$ ]]; then
            tty_start "${BASH_REMATCH[1]}" || return 1
            MODE=client
        elif [[ $line =~ ^([a-z]+)\$\ nc\ ([^ ]+)\ ([0-9]+)$ ]]; then
            name=${BASH_REMATCH[1]} host=${BASH_REMATCH[2]}
            connect "$name" "$host" || return 1
            MODE=client
        elif [[ $line =~ ^([a-z]+)\>\ ?(.*)$ ]]; then
            name=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
            if [[ -n ${TTY_PID[$name]:-} ]]; then
                tty_type "$name" "$rest"
            elif [[ $rest == "^C" ]]; then
                disconnect "$name"
            else
                send "$name" "$rest"
            fi
            MODE=client
        elif [[ $line =~ ^([a-z]+)\ *\|\ ?(.*)$ ]]; then
            name=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
            if [[ -n ${TTY_PID[$name]:-} ]]; then
                tty_expect "$name" "$rest" || return 1
            else
                transcript_expect "$name" "$rest" || return 1
            fi
            MODE=client
        elif [[ $MODE == make ]]; then
            # make repeats the server's first line: it must be the same.
            if [[ $line =~ (listening\ on\ [^ ]+) ]]; then
                transcript_match "$(head -n 1 "$SERVER_LOG")" "${BASH_REMATCH[1]}" || {
                    fail "the transcript has '${BASH_REMATCH[1]}'," \
                        "the server said '$(head -n 1 "$SERVER_LOG")'"
                    return 1
                }
            fi
        elif [[ $MODE == log ]]; then
            transcript_in_log "$line" || return 1
        elif [[ $MODE == stop ]]; then
            : # what make stop says
        else
            fail "a transcript line that says nothing of who shows it: '$line'"
            return 1
        fi
    done <"$1"
    # Leave the server as the reader would: every client gone, then stopped.
    tty_stop_all
    for name in "${!FD[@]}"; do
        disconnect "$name"
    done
    stop_server
}

# replay_transcripts README: replays every transcript of README, in order.
replay_transcripts() {
    local readme=$1 in_block=0 line count=0 block
    block=$BATS_TEST_TMPDIR/transcript
    while IFS= read -r line; do
        if ((in_block)) && [[ $line == '```' ]]; then
            in_block=0
            count=$((count + 1))
            replay_transcript "$block" || {
                tty_stop_all
                fail "in transcript $count of $readme"
                return 1
            }
        elif ((in_block)); then
            printf '%s\n' "$line" >>"$block"
        elif [[ $line == '```transcript' ]]; then
            in_block=1
            : >"$block"
        fi
    done <"$readme"
    ((count > 0)) || skip "this README has no transcript"
}
