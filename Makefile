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
	@echo "make stepN        build step N and start its server in the background"
	@echo "                  on $(IP):$(PORT) (IP=, PORT= to change, ARGS= for more"
	@echo "                  options, such as ARGS='-timeout 10'), log in stepN-*/server.log"
	@echo "make stop         stop that server"
	@echo "make run          the finished server ($(LAST)) in the foreground"
	@echo "make client       the menu client, against $(IP):$(PORT)"
	@echo "make all          build every step"
	@echo "make test         every suite against every step that has its feature"
	@echo "make test-stepN   suites 1..N against step N"
	@echo "make test SANITIZE=1   the same, built with ASan and UBSan"
	@echo "make memcheck     suites 1..N against the last step (or STEP=N), under valgrind"
	@echo "make diff STEP=N  what step N changed since step N-1"
	@echo "make clean        remove every build output and log"

# make stepN: build step N, stop any server an earlier `make stepN` started,
# and start step N's in the background; return once it listens, or fail
# saying why.
step%:
	@dir="$(call step_dir,$*)"; \
	if [ -z "$$dir" ]; then echo "error: there is no step $*" >&2; exit 1; fi; \
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
	exit 1

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

client:
	@dir="$(call step_dir,9)"; \
	if [ -z "$$dir" ]; then echo "error: the client comes with step 9" >&2; exit 1; fi; \
	$(MAKE) --no-print-directory -s -C "$$dir" client && \
	"$$dir/client" -ip $(IP) -port $(PORT)

test:
	@tests/run $(STEPS)

test-step%:
	@dir="$(call step_dir,$*)"; \
	if [ -z "$$dir" ]; then echo "error: there is no step $*" >&2; exit 1; fi; \
	tests/run "$$dir"

memcheck:
	@command -v valgrind >/dev/null || { echo "error: install valgrind" >&2; exit 1; }
	@dir="$(if $(STEP),$(call step_dir,$(STEP)),$(LAST))"; \
	if [ -z "$$dir" ]; then echo "error: there is no step $(STEP)" >&2; exit 1; fi; \
	VALGRIND=1 tests/run "$$dir"

# The code step N changed: README.md is prose, the rest are build outputs.
diff:
	@if [ -z "$(STEP)" ]; then echo "usage: make diff STEP=N" >&2; exit 2; fi
	@new="$(call step_dir,$(STEP))"; \
	old="$(call step_dir,$(shell expr $(STEP) - 1 2>/dev/null))"; \
	if [ -z "$$new" ]; then echo "error: there is no step $(STEP)" >&2; exit 2; fi; \
	if [ -z "$$old" ]; then \
		echo "error: step $(STEP) is the first: read $$new/README.md" >&2; exit 2; \
	fi; \
	diff -ruN -x README.md -x server -x client -x '*.o' -x '*.log' \
		-x '*.dSYM' -x .build-flags "$$old" "$$new"; \
	status=$$?; [ $$status -le 1 ] || [ $$status -gt 128 ]

clean:
	@for s in $(STEPS); do $(MAKE) --no-print-directory -s -C $$s clean; done

.PHONY: all help stop run client test memcheck diff clean
