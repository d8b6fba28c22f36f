# Builds, runs, tests and compares the steps of the tutorial.
# `make help` lists the targets.

STEPS := $(shell ls -d step[0-9]*-*/ 2>/dev/null | sed 's:/$$::' | sort -V)
LAST  := $(lastword $(STEPS))
IP    ?= 127.0.0.1
PORT  ?= 8888
ARGS  ?=

# The pid and directory of the server that `make stepN` left running.
PIDFILE := .server.pid

# $(call step_dir,N): the directory of step N, or nothing.
step_dir = $(filter step$(1)-%,$(STEPS))

all:
	@for s in $(STEPS); do $(MAKE) --no-print-directory -C $$s || exit 1; done

help:
	@echo "Follow along:"
	@echo "  make stepN          build step N and start its server in the background"
	@echo "                      on $(IP):$(PORT) (IP=, PORT= to change, ARGS= for more"
	@echo "                      options, such as ARGS='-timeout 10'); log in stepN-*/server.log"
	@echo "  make stop           stop that server"
	@echo "  make run            the finished server ($(LAST)) in the foreground"
	@echo "  make client         the menu client, against $(IP):$(PORT)"
	@echo "Study a step:"
	@echo "  make diff STEP=N    what step N changed since step N-1, moved code shown"
	@echo "                      as moved; in colour in a terminal (COLOR=1 keeps it in a pipe)"
	@echo "  make test-stepN     the suites of steps 1..N against step N"
	@echo "Check your own work:"
	@echo "  make check STEP=N DIR=path        your copy of step N, with suites 1..N"
	@echo "  make check EXERCISE=NAME DIR=path your solution of exercises/NAME"
	@echo "Everything:"
	@echo "  make all            build every step"
	@echo "  make test           every suite against every step that has its feature"
	@echo "  make test SANITIZE=1  the same, built with ASan and UBSan"
	@echo "  make memcheck       suites 1..N against the last step (or STEP=N), under valgrind"
	@echo "  make bench          the load table of the finished server"
	@echo "  make fuzz           fuzz the input code (FUZZ_SECONDS=N, default 60)"
	@echo "  make lint           cppcheck, clang-tidy and a clang-format check of every C file"
	@echo "  make clean          remove every build output and log"

# make stepN: build step N, stop any server an earlier `make stepN` started,
# and start step N's in the background; return once it listens, or fail
# saying why.
step%:
	@dir="$(call step_dir,$*)"; \
	if [ -z "$$dir" ]; then \
		echo "error: there is no step '$*': try make step1 to make step$(words $(STEPS))" >&2; \
		exit 1; \
	fi; \
	$(MAKE) --no-print-directory -s -C "$$dir" || exit 1; \
	$(MAKE) --no-print-directory -s stop; \
	"$$dir/server" -ip "$(IP)" -port "$(PORT)" $(ARGS) >"$$dir/server.log" 2>&1 & \
	echo "$$! $$dir" >$(PIDFILE); \
	for i in $$(seq 50); do \
		if grep -q '^listening on' "$$dir/server.log"; then \
			echo "$$dir: $$(head -n 1 $$dir/server.log)" \
			     "(log in $$dir/server.log, \`make stop\` to stop it)"; \
			exit 0; \
		fi; \
		if grep -q '^error' "$$dir/server.log"; then break; fi; \
		sleep 0.1; \
	done; \
	rm -f $(PIDFILE); \
	echo "error: the $$dir server did not start:" >&2; \
	cat "$$dir/server.log" >&2; \
	if grep -q 'in use' "$$dir/server.log"; then \
		echo "Another program has port $(PORT): stop it, or choose another port," \
		     "such as make step$* PORT=9000" >&2; \
	fi; \
	exit 1

# `make step 3`: make would try to build a file named 3.
step:
	@echo "error: write the step's number right after the word: make step3" >&2
	@exit 2

stop:
	@if [ -f $(PIDFILE) ]; then \
		read pid dir <$(PIDFILE); rm -f $(PIDFILE); \
		case "$$(ps -o comm= -p $$pid 2>/dev/null)" in *server) \
			kill $$pid; \
			while kill -0 $$pid 2>/dev/null; do sleep 0.1; done; \
			echo "stopped the $$dir server";; \
		esac; \
	fi

run:
	@$(MAKE) --no-print-directory -s -C $(LAST)
	$(LAST)/server -ip $(IP) -port $(PORT) $(ARGS)

# Status 1 is the client's "the server closed the connection" or "cannot
# connect": it has said so itself, and make need not add an error of its own.
client:
	@dir="$(call step_dir,9)"; \
	if [ -z "$$dir" ]; then echo "error: the client comes with step 9" >&2; exit 1; fi; \
	$(MAKE) --no-print-directory -s -C "$$dir" client && \
	{ "$$dir/client" -ip $(IP) -port $(PORT) || [ $$? -eq 1 ]; }

test:
	@tests/run $(STEPS)

test-step%:
	@dir="$(call step_dir,$*)"; \
	if [ -z "$$dir" ]; then echo "error: there is no step '$*'" >&2; exit 1; fi; \
	tests/run "$$dir"

# make check STEP=N DIR=path, or make check EXERCISE=NAME DIR=path.
check:
	@if [ -z "$(DIR)" ] || { [ -z "$(STEP)" ] && [ -z "$(EXERCISE)" ]; }; then \
		echo "usage: make check STEP=N DIR=path       (your copy of step N)" >&2; \
		echo "       make check EXERCISE=NAME DIR=path (your solution of an exercise)" >&2; \
		exit 2; \
	fi
	@if [ -n "$(EXERCISE)" ]; then \
		suite=exercises/$(EXERCISE)/$(EXERCISE).bats; \
		if [ ! -f "$$suite" ]; then \
			echo "error: there is no exercise '$(EXERCISE)': the exercises are" \
			     "$$(ls exercises 2>/dev/null | tr '\n' ' ')" >&2; exit 2; \
		fi; \
		tests/run --step 9 --also "$$suite" "$(DIR)"; \
	else \
		tests/run --step "$(STEP)" "$(DIR)"; \
	fi

memcheck:
	@command -v valgrind >/dev/null || { echo "error: install valgrind" >&2; exit 1; }
	@dir="$(if $(STEP),$(call step_dir,$(STEP)),$(LAST))"; \
	if [ -z "$$dir" ]; then echo "error: there is no step $(STEP)" >&2; exit 1; fi; \
	VALGRIND=1 tests/run "$$dir"

diff:
	@if [ -z "$(STEP)" ]; then echo "usage: make diff STEP=N, such as make diff STEP=4" >&2; exit 2; fi
	@tools/stepdiff "$(STEP)"

bench:
	@bench/run

fuzz:
	@fuzz/run

lint:
	@lint/run

clean:
	@for s in $(STEPS); do $(MAKE) --no-print-directory -s -C $$s clean; done
	@$(MAKE) --no-print-directory -s -C bench clean
	@rm -rf tests/.model

.PHONY: all help step stop run client test check memcheck diff bench fuzz lint clean
