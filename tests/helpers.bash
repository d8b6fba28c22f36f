# tests/helpers.bash - what every suite shares.
#
# Each test starts its own server on a free port (start_server), talks to it
# through clients that are plain bash /dev/tcp descriptors, and checks what
# arrives with expectations that wait up to $TIMEOUT seconds for a line.
# Nothing waits a fixed time: a test waits for the output it expects, and
# fails if that does not come in time.
#
# teardown stops the server with SIGTERM and fails the test if the server
# crashed, did not exit with status 0, or a sanitizer or valgrind reported
# an error.
#
# STEP_DIR is the step under test and STEP_NUM its number; tests/run sets
# both. One suite can be run by hand, for example:
#   STEP_DIR=step3-broadcast bats tests/step2.bats

: "${STEP_DIR:?set STEP_DIR to the step directory under test}"
STEP_NUM=${STEP_NUM:-$(basename "$STEP_DIR" | sed -n 's/^step\([0-9]*\)-.*/\1/p')}
: "${STEP_NUM:?set STEP_NUM to the number of the step under test}"

SERVER_CMD=("$STEP_DIR/server")
if [[ -n ${VALGRIND:-} ]]; then
    SERVER_CMD=(valgrind -q --error-exitcode=99 --leak-check=full
        --show-leak-kinds=all --errors-for-leak-kinds=all "${SERVER_CMD[@]}")
    TIMEOUT=${TIMEOUT:-30}
fi
TIMEOUT=${TIMEOUT:-5} # seconds to wait for something that should happen

bats_require_minimum_version 1.5.0

declare -gA FD=()   # client name -> descriptor
declare -gA ADDR=() # client name -> its address as the server writes it
SERVER_PID=""

# ------------------------------------------------------------ Reporting

# fail MESSAGE...: prints the messages, a line each, and which client has
# each address that they mention, then fails.
fail() {
    local name who=()
    printf '%s\n' "$@" >&2
    for name in "${!ADDR[@]}"; do
        [[ $* == *"${ADDR[$name]}"* ]] && who+=("$name is ${ADDR[$name]}")
    done
    if ((${#who[@]})); then
        local IFS=,
        printf '(where %s)\n' "${who[*]}" | sed 's/,/, /g' >&2
    fi
    return 1
}

# Skips the test from step N on: a later step changed what it checks.
skip_from_step() {
    if ((STEP_NUM >= $1)); then
        skip "$2"
    fi
}

# repeat TEXT N: TEXT N times over, without a newline.
repeat() {
    local spaces
    printf -v spaces '%*s' "$2" ''
    printf '%s' "${spaces// /$1}"
}

# said NAME TEXT: the public message TEXT from the client's user, as long
# as it is named after its address.
said() {
    printf '[%s]%s: %s' "${ADDR[$1]}" "${ADDR[$1]}" "$2"
}

# Bats runs a trap before every command of a test, to know where the test
# stands if it fails. Over the thousands of commands of a suite's helpers,
# that trap costs a third of the suites' time. So setup turns it off, and
# where_failed says the same once, from the trap Bats runs when a command
# fails: the line of the test, and the check that failed there.
setup() {
    local on_error
    trap - DEBUG
    on_error=$(trap -p ERR) # trap -- 'WHAT BATS DOES' ERR
    on_error=${on_error#"trap -- '"}
    on_error=${on_error%"' ERR"}
    trap "where_failed; $on_error" ERR
}

# where_failed: prints "failed at FILE:LINE: COMMAND" for the command that
# just failed: in the test itself, or else in the helper it was in.
where_failed() {
    local frame=0 at file line="" where=""
    while at=$(caller "$frame"); do
        file=${at##* } line=${at%% *}
        if [[ $file == "$BATS_TEST_SOURCE" ]]; then
            where=${BATS_TEST_FILENAME##*/}:$line
            break
        fi
        [[ -n $where ]] || where=${file##*/}:$line
        frame=$((frame + 1))
    done
    printf 'failed at %s: %s\n' "$where" "$BASH_COMMAND" >&2
}

# ------------------------------------------------------------ The server

# start_server [ARGS...]: starts the step's server on a free port with
# ARGS, and waits for its "listening on" line. Sets PORT and SERVER_PID;
# the server's stdout goes on into $SERVER_LOG. With SERVER_FD_LIMIT set,
# the server may open at most that many descriptors; SERVER_SOFT_FD_LIMIT
# sets only the soft limit, which a server may raise. With LOG_UNREAD set,
# nobody reads the server's stdout after that first line, until
# read_log_again.
start_server() {
    # One pipe serves every server of the suite in turn: each is stopped,
    # and its log read to the end, before the next starts.
    local fifo=$BATS_FILE_TMPDIR/server.out first out
    LOG_FD="" LOG_PID=""
    SERVER_LOG=$BATS_TEST_TMPDIR/server.log
    SERVER_ERR=$BATS_TEST_TMPDIR/server.err
    [[ -p $fifo ]] || mkfifo "$fifo"
    (
        if [[ -n ${SERVER_FD_LIMIT:-} ]]; then
            ulimit -n "$SERVER_FD_LIMIT" || exit 1
        fi
        if [[ -n ${SERVER_SOFT_FD_LIMIT:-} ]]; then
            ulimit -Sn "$SERVER_SOFT_FD_LIMIT" || exit 1
        fi
        exec "${SERVER_CMD[@]}" -port 0 "$@"
    ) >"$fifo" 2>"$SERVER_ERR" 3>&- &
    SERVER_PID=$!
    exec {out}<"$fifo"
    if ! IFS= read -r -t "$TIMEOUT" -u "$out" first; then
        exec {out}<&-
        fail "the server did not start:" "$(cat "$SERVER_ERR")"
        return 1
    fi
    if ! [[ $first =~ ^listening\ on\ (.+):([0-9]+)$ ]]; then
        exec {out}<&-
        fail "the server's first line is not 'listening on ADDR': $first"
        return 1
    fi
    PORT=${BASH_REMATCH[2]}
    printf '%s\n' "$first" >"$SERVER_LOG"
    LOG_FD=$out
    [[ -n ${LOG_UNREAD:-} ]] || read_log_again
}

# read_log_again: goes on reading the server's stdout into $SERVER_LOG.
read_log_again() {
    (
        close_clients_but
        exec cat <&"$LOG_FD" >>"$SERVER_LOG" 3>&-
    ) &
    LOG_PID=$!
    exec {LOG_FD}<&-
}

# close_clients_but [NAME...]: in a subshell about to run something in the
# background, closes the clients' descriptors but those named: a socket
# that a background process keeps open is never seen to close, and the
# server would wait for its client to leave.
close_clients_but() {
    local name
    for name in "${!FD[@]}"; do
        [[ " $* " == *" $name "* ]] || eval "exec ${FD[$name]}<&-"
    done
}

# signal_server [SIGNAL]: sends the server SIGNAL (SIGTERM unless told),
# without waiting for it to exit: stop_server does that.
signal_server() {
    kill -"${1:-TERM}" "$SERVER_PID"
}

# running PID: whether the child PID has not exited yet. Until it is
# reaped, a child that exited is a zombie, in state Z. /proc tells without
# starting a process, which matters in a loop; elsewhere, ps does.
running() {
    local stat
    if [[ -d /proc/self ]]; then
        read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
        stat=${stat##*) } # the state follows the command's name
    else
        stat=$(ps -o stat= -p "$1") || return 1
    fi
    [[ $stat != Z* ]]
}

# nap SECONDS: waits SECONDS without starting a process, as sleep would:
# read times out on a pipe that nothing is written to. The polling loops
# of a suite nap thousands of times, and a process each time adds up.
nap() {
    if [[ -z ${NAP_FD:-} ]]; then
        [[ -p $BATS_FILE_TMPDIR/nap ]] || mkfifo "$BATS_FILE_TMPDIR/nap"
        # Open for reading and writing, the open does not wait for a writer.
        exec {NAP_FD}<>"$BATS_FILE_TMPDIR/nap"
    fi
    read -r -t "$1" -u "$NAP_FD" _ || true
}

# wait_or_kill PID: waits for a child to exit, for $TIMEOUT seconds at
# most, then kills it. Returns the child's exit status. It watches the
# child rather than starting a watchdog process, which could outlive the
# test holding the descriptors Bats waits on.
wait_or_kill() {
    local pid=$1 deadline=$((SECONDS + TIMEOUT)) status=0
    while running "$pid"; do
        if ((SECONDS > deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        nap 0.01
    done
    wait "$pid" || status=$?
    return "$status"
}

# stop_server [SIGNAL]: stops the server (SIGTERM unless told otherwise)
# and fails unless it exits with status 0 and nothing was reported.
stop_server() {
    local signal=${1:-TERM} status=0 expected=0
    [[ -n $SERVER_PID ]] || return 0
    # Before step 4 the server has no shutdown of its own: the signal ends
    # it, and the shell reports that as status 128 + the signal's number.
    if ((STEP_NUM < 4)); then
        expected=$((128 + $(kill -l "$signal")))
    fi
    kill -"$signal" "$SERVER_PID" 2>/dev/null || true
    wait_or_kill "$SERVER_PID" || status=$?
    SERVER_PID=""
    [[ -n $LOG_PID || -z ${LOG_FD:-} ]] || read_log_again
    [[ -z $LOG_PID ]] || wait "$LOG_PID" || true
    local errors=""
    read -r -d '' errors <"$SERVER_ERR" || true
    if [[ $errors =~ Sanitizer|runtime\ error|(^|$'\n')==[0-9]+== ]]; then
        fail "the server reported errors:" "$(cat "$SERVER_ERR")"
        return 1
    fi
    if ((status != expected)); then
        fail "the server exited with status $status:" "$(cat "$SERVER_ERR")"
        return 1
    fi
}

# wait_for_log REGEX [COUNT]: waits until COUNT lines (1 unless told) of
# the server's log match REGEX. Like every loop here that waits for a line
# of the log, it naps 10 ms the first time, as the line is often about to
# come, and 50 ms at a time after that.
wait_for_log() {
    local pause=0.01 pattern=$1 count=${2:-1} deadline=$((SECONDS + TIMEOUT))
    until (($(grep -cE -- "$pattern" "$SERVER_LOG") >= count)); do
        if ((SECONDS > deadline)); then
            fail "the log never had $count line(s) matching '$pattern':" \
                "$(cat "$SERVER_LOG")"
            return 1
        fi
        nap "$pause"
        pause=0.05
    done
}

# regex_quote TEXT: TEXT with every character special to grep -E escaped.
regex_quote() {
    local text=$1 c
    text=${text//\\/\\\\}
    for c in '[' ']' '.' '*' '^' '$' '+' '?' '(' ')' '{' '}' '|'; do
        text=${text//"$c"/"\\$c"}
    done
    printf '%s' "$text"
}

# wait_for_log_line LINE: waits until the server's log has exactly LINE.
wait_for_log_line() {
    local pause=0.01 deadline=$((SECONDS + TIMEOUT))
    until grep -qxF -- "$1" "$SERVER_LOG"; do
        if ((SECONDS > deadline)); then
            fail "the log never had the line '$1':" "$(cat "$SERVER_LOG")"
            return 1
        fi
        nap "$pause"
        pause=0.05
    done
}

# send_paced NAME COUNT PAD PREFIX READER...: NAME sends COUNT lines,
# "00001 PAD" and so on, 250 at a time; each part goes only once every
# READER's file (see read_all) has the part before it, heard from PREFIX.
# So the readers keep up, however slow this machine.
send_paced() {
    local name=$1 n=$2 pad=$3 prefix=$4 from reader
    shift 4
    for ((from = 1; from <= n; from += 250)); do
        awk -v pad="$pad" -v from=$from -v to=$((from + 249 < n ? from + 249 : n)) \
            'BEGIN { for (k = from; k <= to; k++) printf "%05d %s\n", k, pad }' \
            >&"${FD[$name]}"
        for reader in "$@"; do
            wait_for_file_lines "$BATS_TEST_TMPDIR/$reader" "^$(regex_quote "$prefix")" \
                $((from + 249 < n ? from + 249 : n)) || return 1
        done
    done
}

# wait_for_file_lines FILE REGEX COUNT: waits until COUNT lines of FILE
# match REGEX, for TIMEOUT seconds after the last one came.
wait_for_file_lines() {
    local got last=-1 deadline
    while true; do
        # grep -c fails when no line matches yet: that is zero so far.
        got=$(grep -cE -- "$2" "$1" || true)
        ((got >= $3)) && return 0
        if ((got != last)); then
            last=$got
            deadline=$((SECONDS + TIMEOUT))
        elif ((SECONDS > deadline)); then
            fail "$1 has $got lines matching '$2', not $3"
            return 1
        fi
        nap 0.05
    done
}

# The processor time a process has used so far, in clock ticks (Linux).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# -------------------------------------------------------------- Clients

# connect NAME [HOST]: opens a TCP connection to the server; FD[NAME] is
# its descriptor.
connect() {
    local fd
    exec {fd}<>"/dev/tcp/${2:-127.0.0.1}/$PORT" || {
        fail "$1: cannot connect to ${2:-127.0.0.1} port $PORT"
        return 1
    }
    FD[$1]=$fd
}

# connect_many PREFIX LAST [FIRST]: connects the clients PREFIX1 (or
# PREFIXFIRST) to PREFIXLAST.
connect_many() {
    local i
    for ((i = ${3:-1}; i <= $2; i++)); do
        connect "$1$i" || return 1
    done
}

# visit COUNT: COUNT clients, one after another, connect and leave at once.
visit() {
    local i
    for ((i = 0; i < $1; i++)); do
        connect visitor && disconnect visitor || return 1
    done
}

# read_all_into NAME FILE: from now on, everything the client receives goes
# into FILE, read as fast as it comes, in the background.
read_all_into() {
    : >"$2" # made now, so a wait on FILE never races the reader's start
    (
        close_clients_but "$1"
        exec cat <&"${FD[$1]}" >"$2"
    ) &
}

# The program of read_all: it reads each descriptor of its arguments,
# given with the file to write to, until the end of each.
READ_ALL_PERL='
    use IO::Select;
    my ($ready, %to) = (IO::Select->new);
    while (my ($fd, $file) = splice(@ARGV, 0, 2)) {
        open(my $in, "<&=", $fd) or die "fd $fd: $!";
        open(my $out, ">", $file) or die "$file: $!";
        $ready->add($in);
        $to{fileno $in} = $out;
    }
    while ($ready->count) {
        for my $in ($ready->can_read) {
            my $n = sysread($in, my $bytes, 65536);
            if ($n) { syswrite($to{fileno $in}, $bytes) } else { $ready->remove($in) }
        }
    }'

# read_all NAME...: from now on, everything each client receives goes into
# a file of the test's named after the client, read as fast as it comes,
# in the background. One perl process reads them all, where there is perl:
# a process for each client costs seconds for hundreds of clients.
read_all() {
    local name pairs=()
    for name in "$@"; do
        pairs+=("${FD[$name]}" "$BATS_TEST_TMPDIR/$name")
        : >"$BATS_TEST_TMPDIR/$name" # made now, as in read_all_into
    done
    (
        close_clients_but "$@"
        if command -v perl >/dev/null; then
            exec perl -e "$READ_ALL_PERL" "${pairs[@]}"
        fi
        for name in "$@"; do
            cat <&"${FD[$name]}" >"$BATS_TEST_TMPDIR/$name" &
        done
        wait
    ) &
}

# read_all_many PREFIX COUNT: read_all for the clients PREFIX1 to
# PREFIXCOUNT.
read_all_many() {
    local i names=()
    for ((i = 1; i <= $2; i++)); do
        names+=("$1$i")
    done
    read_all "${names[@]}"
}

# wait_last_line LINE FILE...: waits until every FILE ends with LINE.
wait_last_line() {
    local pause=0.01 line=$1 deadline=$((SECONDS + TIMEOUT)) got
    shift
    until got=$(tail -q -n 1 "$@" | grep -cxF -- "$line") && ((got == $#)); do
        if ((SECONDS > deadline)); then
            fail "only $got of $# clients ended with '$line'"
            return 1
        fi
        nap "$pause"
        pause=0.05
    done
}

# join NAME [HOST]: connects and reads the newcomer's first line, the news
# of its own arrival, "[ADDR]ADDR is online". ADDR[NAME] is then its address.
join() {
    local line
    connect "$@" || return 1
    read_line "$1" line || {
        fail "$1: expected its own arrival, got $READ_ERROR"
        return 1
    }
    # The line is "[" ADDR "]" ADDR " is online": ADDR is half of the rest.
    local body=${line#[}
    body=${body% is online}
    local addr=${body:0:$((${#body} / 2))}
    if [[ $line != "[$addr]$addr is online" ]]; then
        fail "$1: expected '[ADDR]ADDR is online', got '$line'"
        return 1
    fi
    ADDR[$1]=$addr
}

# disconnect NAME: closes the client's connection.
disconnect() {
    local fd=${FD[$1]}
    exec {fd}<&-
    unset "FD[$1]"
}

# send NAME TEXT: sends TEXT and a LF, in one write.
send() {
    printf '%s\n' "$2" >&"${FD[$1]}"
}

# send_bytes NAME FORMAT [ARGS...]: sends exactly what printf makes of
# FORMAT, escapes included ('\r', '\x1b'), and no LF of its own.
send_bytes() {
    local name=$1
    shift
    # shellcheck disable=SC2059
    printf "$@" >&"${FD[$name]}"
}

# read_line NAME VAR [SECONDS]: reads the client's next line into VAR.
# On failure READ_ERROR says why: nothing came in time, or the stream ended.
read_line() {
    local -n line_=$2
    local status=0
    IFS= read -r -t "${3:-$TIMEOUT}" -u "${FD[$1]}" line_ || status=$?
    if ((status > 128)); then
        READ_ERROR="nothing within ${3:-$TIMEOUT}s"
    elif ((status != 0)); then
        READ_ERROR="the end of the stream${line_:+ after '$line_'}"
    fi
    return "$status"
}

# expect NAME LINE: the client's next line is exactly LINE.
expect() {
    local got
    read_line "$1" got || {
        fail "$1: expected '$2'" "$1: got $READ_ERROR"
        return 1
    }
    [[ $got == "$2" ]] || fail "$1: expected '$2'" "$1:      got '$got'"
}

# expect_match NAME REGEX: the client's next line matches REGEX.
expect_match() {
    local got
    read_line "$1" got || {
        fail "$1: expected a line matching '$2'" "$1: got $READ_ERROR"
        return 1
    }
    [[ $got =~ $2 ]] || fail "$1: expected a line matching '$2'" \
        "$1:                         got '$got'"
}

# wait_for NAME LINE: skips the client's lines until one is exactly LINE.
wait_for() {
    local got seen=()
    while read_line "$1" got; do
        [[ $got == "$2" ]] && return 0
        seen+=("$got")
    done
    fail "$1: never got '$2'" "$1: got $READ_ERROR, after:" "${seen[@]}"
}

# expect_message NAME LINE: the client's next line that is not news of
# someone arriving or leaving is exactly LINE. For suites that run on later
# steps, where users leaving are announced too.
expect_message() {
    local got
    while read_line "$1" got; do
        [[ $got =~ ^\[[^]]+\][^\ ]+\ is\ (online|offline)$ ]] && continue
        [[ $got == "$2" ]] && return 0
        fail "$1: expected '$2'" "$1:      got '$got'"
        return 1
    done
    fail "$1: expected '$2'" "$1: got $READ_ERROR"
}

# expect_silence NAME [SECONDS]: nothing arrives for a while (0.3s unless
# told). Where a later line can prove the point, prefer to expect that line:
# the server keeps order, so nothing can have slipped in before it.
expect_silence() {
    local got status=0
    IFS= read -r -t "${2:-0.3}" -u "${FD[$1]}" got || status=$?
    if ((status == 0)); then
        fail "$1: expected nothing, got '$got'"
    elif ((status <= 128)); then
        fail "$1: expected nothing, but the connection was closed"
    fi
}

# expect_eof NAME: the server closes the connection, with nothing more sent.
expect_eof() {
    local got status=0
    IFS= read -r -t "$TIMEOUT" -u "${FD[$1]}" got || status=$?
    if ((status == 0)); then
        fail "$1: expected the connection to close, got '$got'"
    elif ((status > 128)); then
        fail "$1: the connection was still open after ${TIMEOUT}s"
    elif [[ -n $got ]]; then
        fail "$1: expected the connection to close, got '$got' without LF"
    fi
}

# read_lines NAME COUNT: prints the client's next COUNT lines. It reads
# ahead in large blocks, so it is fast, but anything after those lines is
# lost: use it only for the last thing a client reads.
read_lines() {
    timeout "$TIMEOUT" head -n "$2" <&"${FD[$1]}"
}

# format_is_checked FUNCTION CALL: the compiler checks the arguments of
# the step's FUNCTION against its format, as it does printf's. CALL, a call
# of it with an argument missing, is added to a copy of the file that
# defines it, which must then fail to compile under -Werror=format.
format_is_checked() {
    local function=$1 copy=$BATS_TEST_TMPDIR/source file out
    mkdir -p "$copy"
    cp "$STEP_DIR"/*.[ch] "$copy"/
    file=$(grep -lE "^(static )?void $function\(" "$copy"/*.c | head -n 1)
    [[ -n $file ]] || skip "this copy of the step has no function $function()"
    printf '\nvoid format_probe(void);\nvoid format_probe(void)\n{\n    %s;\n}\n' \
        "$2" >>"$file"
    if out=$("${CC:-cc}" -std=c99 -D_POSIX_C_SOURCE=200809L -Wformat \
        -Werror=format -c -o /dev/null "$file" 2>&1); then
        fail "$2, with an argument missing, compiles without a word:" \
            "$function() needs a format attribute, as printf has"
    elif [[ $out != *format* ]]; then
        fail "$2 does not compile, but not for its format:" "$out"
    fi
}

teardown() {
    local name
    for name in "${!FD[@]}"; do
        disconnect "$name"
    done
    stop_server
}
