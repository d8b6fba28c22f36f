# tests/model.bash - runs tests/model.c, the randomized test of the server
# against a model of its protocol, from a Bats suite. Load it after
# helpers.bash:
#
#   load helpers
#   load model
#
#   @test "..." {
#       start_server
#       run_model_test -clients 20 -ops 2000 -seconds 5
#   }
#
# run_model_test builds tests/model.c into tests/.model on first use, and
# runs it against the server the test started (on $PORT) with the seed in
# $MODEL_SEED, or a new one. When a check fails, the test fails with the
# program's report: the seed, the operation, which client expected what
# and what came, and how to replay it, for example:
#
#   MODEL_SEED=123 STEP_DIR=step8-timeout bats tests/step7.bats

MODEL_BIN=$BATS_TEST_DIRNAME/.model

# build_model: compiles tests/model.c, unless tests/.model is newer. Suites
# for several steps run at once: each builds under a name of its own and
# renames the result into place, so that none runs a half-written program.
build_model() {
    local source=$BATS_TEST_DIRNAME/model.c tmp=$MODEL_BIN.$BASHPID
    [[ $MODEL_BIN -nt $source ]] && return 0
    if ! "${CC:-cc}" -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra \
        -Wpedantic -o "$tmp" "$source" 2>"$tmp.err"; then
        fail "cannot build tests/model.c:" "$(cat "$tmp.err")"
        rm -f "$tmp" "$tmp.err"
        return 1
    fi
    rm -f "$tmp.err"
    mv -f "$tmp" "$MODEL_BIN"
}

# run_model_test [ARGS...]: runs the model test against the server on
# $PORT, with ARGS such as -clients N -ops N -seconds S.
run_model_test() {
    local seed=${MODEL_SEED:-$((RANDOM * 32768 + RANDOM))} report status=0
    build_model || return 1
    report=$("$MODEL_BIN" -port "$PORT" -seed "$seed" "$@" 2>&1) || status=$?
    if ((status != 0)); then
        fail "$report" "" "to run this test again with the same seed:" \
            "  MODEL_SEED=$seed STEP_DIR=$STEP_DIR bats $BATS_TEST_FILENAME \\" \
            "      --filter '$(regex_quote "$BATS_TEST_DESCRIPTION")'"
        return 1
    fi
}
