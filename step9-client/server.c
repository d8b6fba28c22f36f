/*
 * server.c - a group chat server: every line a user sends reaches everyone.
 *
 * One thread serves every client: a poll() loop sleeps until a socket is
 * ready or a timer is due, and does what can be done without waiting. This
 * file holds the listener, the log, the loop and the online table; what a
 * user does, from arriving to leaving, is in user.c. SIGINT and SIGTERM
 * end the server in order: everyone gets what was queued, then a goodbye.
 * A user who sends no line for -timeout seconds is told why and closed,
 * and a server out of descriptors says so to newcomers instead of spinning.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "user.h"

/* -------------------------------------------------------------- Settings */

#define DEFAULT_IP   "127.0.0.1"
#define DEFAULT_PORT "8888"

#define DEFAULT_TIMEOUT "300"     /* seconds a user may stay silent */
#define MAX_TIMEOUT     "2000000" /* times 1000, it fits poll()'s int */
#define ACCEPT_PAUSE    1000      /* ms not listening when out of files */
#define SERVER_FULL     "error: server is full\n"

#define LINES_PER_TURN 16    /* lines handled for each user in a turn */
#define LOG_SIZE       65536 /* bytes of log waiting for stdout */
#define SHUTDOWN_MS    2000  /* the grace of a shutdown, for the log too */

static const char *listen_ip = DEFAULT_IP, *listen_port = DEFAULT_PORT;
static const char *idle_timeout = DEFAULT_TIMEOUT;
static int listener = -1;           /* the listening socket */
static int spare_fd = -1;           /* a descriptor held back, see below */
static long long paused_until;      /* not listening until then, in ms */
static int wake_pipe[2] = {-1, -1}; /* signal handler -> poll loop */
static long long stopping_at;       /* when shutdown began; 0 before */
static struct user **users;         /* the online table, oldest first */
static size_t user_count;

/* ----------------------------------------------------------- The options */

static const char usage[] =
    "usage: server [-ip ADDR] [-port PORT] [-timeout SECONDS]\n"
    "  -ip ADDR    address to listen on (default " DEFAULT_IP ")\n"
    "  -port PORT  port to listen on, 0 for any free one"
    " (default " DEFAULT_PORT ")\n"
    "  -timeout N  disconnect users silent for N seconds, 0 never"
    " (default " DEFAULT_TIMEOUT ")\n";

/* Reports a mistake on the command line and exits with status 2. */
static void usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "error: %s %s\n%s", what, arg, usage);
    exit(2);
}

/* Sets the options from the command line: "-port 9000", "-port=9000". */
static void parse_options(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *option = argv[i], *value = strchr(option, '=');
        const char **slot;

        if (strcmp(option, "-h") == 0) {
            printf("%s", usage);
            exit(0);
        }
        if (value)
            *value++ = '\0'; /* "-port=9000": "-port" and "9000" */
        slot = strcmp(option, "-ip") == 0        ? &listen_ip
               : strcmp(option, "-port") == 0    ? &listen_port
               : strcmp(option, "-timeout") == 0 ? &idle_timeout
                                                 : NULL;
        if (!slot)
            usage_error("unknown option", option);
        if (!value && ++i == argc)
            usage_error("missing value for", option);
        *slot = value ? value : argv[i];
    }
    /* A port is a number of 1 to 5 digits, at most 65535. */
    if (!listen_port[0] || listen_port[strspn(listen_port, "0123456789")] ||
        strlen(listen_port) > 5 || atol(listen_port) > 65535)
        usage_error("invalid port (use 0-65535):", listen_port);
    /* A timeout is a number of seconds, at most MAX_TIMEOUT. */
    if (!idle_timeout[0] || idle_timeout[strspn(idle_timeout, "0123456789")] ||
        strlen(idle_timeout) > strlen(MAX_TIMEOUT) ||
        atol(idle_timeout) > atol(MAX_TIMEOUT))
        usage_error("invalid timeout (use 0 to " MAX_TIMEOUT " seconds):",
                    idle_timeout);
}

/* ------------------------------------------------------------- Listening */

/* Writes "host:port", or "[host]:port" to set an IPv6 host's colons apart. */
static void join_host_port(const char *host, const char *port, char *out)
{
    snprintf(out, ADDR_LEN, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
             port);
}

/* Writes a socket address as text, as join_host_port() does. */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *out)
{
    char host[ADDR_LEN], port[sizeof "65535"];

    if (getnameinfo(sa, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(out, ADDR_LEN, "an unknown address");
    else
        join_host_port(host, port, out);
}

/* Makes every read, write and accept on fd return at once, with EAGAIN
 * when it would have to wait: the one thread must never stop for one. */
static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Returns a socket listening on ip:port, or -1 after saying why not. */
static int listen_on(const char *ip, const char *port)
{
    struct addrinfo hints = {0}, *found, *ai;
    char where[ADDR_LEN];
    int fd = -1, yes = 1, err;

    join_host_port(ip, port, where);
    /* The text made into socket addresses, IPv4 or IPv6 as the text is. */
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    err = getaddrinfo(ip, port, &hints, &found);
    if (err != 0) {
        fprintf(stderr, "error: cannot listen on %s: %s\n", where,
                gai_strerror(err));
        return -1;
    }
    for (ai = found; ai && fd < 0; ai = ai->ai_next) {
        /* A socket: one end of a TCP connection (SOCK_STREAM). */
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        /* SO_REUSEADDR lets a restarted server bind() while its old
         * connections linger in TIME_WAIT. bind() takes the address;
         * listen() queues the clients that connect, for accept(). */
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            listen(fd, SOMAXCONN) < 0 || set_nonblocking(fd) < 0) {
            err = errno; /* close() may change errno */
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        fprintf(stderr, "error: cannot listen on %s: %s\n", where,
                strerror(err));
    freeaddrinfo(found);
    return fd;
}

/*
 * Lets the server hold as many connections as the system allows: the soft
 * limit on open descriptors is often 1024, the hard limit far higher. Some
 * systems (macOS) refuse an unlimited value; the soft limit then stays.
 */
static void raise_fd_limit(void)
{
    struct rlimit lim;

    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

/* --------------------------------------------------------------- Signals */

/*
 * SIGINT and SIGTERM ask the server to stop. A signal handler may safely do
 * very little, and a flag it set could be missed if the signal landed just
 * before poll() began to wait. So the handler writes a byte into a pipe
 * that poll() watches, and the loop wakes up and shuts down in its own time.
 */
static void on_stop_signal(int sig)
{
    int saved_errno = errno;

    (void)sig;
    if (write(wake_pipe[1], "", 1) < 0) {
        /* The pipe is full, so a wake-up is already waiting. */
    }
    errno = saved_errno;
}

static int catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    if (pipe(wake_pipe) < 0 || set_nonblocking(wake_pipe[0]) < 0 ||
        set_nonblocking(wake_pipe[1]) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGTERM, &sa, NULL) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- The log */

/*
 * The log on stdout is one more reader that may stop reading: a pipe that
 * nobody empties, a terminal paused with Ctrl-S. Its lines wait here, and
 * are written when poll() says stdout has room, PIPE_BUF bytes at most at a
 * time, which a pipe or a terminal then takes without blocking. Lines that
 * find the buffer full are dropped and counted.
 */
static char log_text[LOG_SIZE];
static size_t log_len;            /* bytes waiting in log_text */
static unsigned long log_dropped; /* lines lost since the last one kept */

/* Adds to the log how many lines were dropped, once there is room. */
static bool log_tell_dropped(void)
{
    size_t room = sizeof log_text - log_len;

    if (log_dropped == 0)
        return true;
    if (room < MAX_MESSAGE)
        return false;
    log_len += (size_t)snprintf(log_text + log_len, room,
                                "(%lu lines of log dropped)\n", log_dropped);
    log_dropped = 0;
    return true;
}

static void log_printf(const char *format, ...) PRINTF_LIKE(1, 2);

static void log_printf(const char *format, ...)
{
    size_t room;
    va_list args;
    int n;

    if (!log_tell_dropped()) {
        log_dropped++;
        return;
    }
    room = sizeof log_text - log_len;
    va_start(args, format);
    n = vsnprintf(log_text + log_len, room, format, args);
    va_end(args);
    if (n < 0 || (size_t)n + 1 >= room) { /* no room for it and its LF */
        log_dropped++;
        return;
    }
    log_text[log_len + (size_t)n] = '\n';
    log_len += (size_t)n + 1;
}

/* Writes what stdout takes of the log now: poll() said it has room. */
static void log_flush(void)
{
    ssize_t n =
        write(STDOUT_FILENO, log_text, log_len < PIPE_BUF ? log_len : PIPE_BUF);

    if (n < 0 && errno != EAGAIN && errno != EINTR)
        n = (ssize_t)log_len; /* nobody will ever read it: let it go */
    if (n > 0) {
        log_len -= (size_t)n;
        memmove(log_text, log_text + n, log_len);
        log_tell_dropped();
    }
}

/* Writes what stdout takes of the log without waiting: its last lines, as
 * the server ends. */
static void log_drain(void)
{
    struct pollfd out = {STDOUT_FILENO, POLLOUT, 0};

    while (log_len > 0 && poll(&out, 1, 0) > 0)
        log_flush();
}

/* ------------------------------------------------------ The online table */

/* Appends u to the table, which so stays in order of arrival. */
bool server_add_user(struct user *u)
{
    struct user **grown = realloc(users, (user_count + 1) * sizeof *grown);

    if (!grown)
        return false;
    users = grown;
    users[user_count++] = u;
    return true;
}

/* The table itself, lent to user.c to read. */
struct user **server_online(size_t *count)
{
    *count = user_count;
    return users;
}

/* Users being closed have left already: their names are free. */
struct user *server_find_user(const char *name)
{
    for (size_t i = 0; i < user_count; i++)
        if (!user_is_closing(users[i]) && strcmp(users[i]->name, name) == 0)
            return users[i];
    return NULL;
}

/*
 * Milliseconds from some fixed moment, on a clock that setting the date
 * does not move. clock_gettime() fails only for a clock the system lacks,
 * and every system this code is for has CLOCK_MONOTONIC.
 */
long long now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- Newcomers */

/*
 * accept() failed for lack of descriptors. A connection left in the queue
 * would make poll() report the listener ready again at once, and the loop
 * would spin. The spare descriptor held back for this moment is released,
 * which makes room to accept the newcomer, tell it why it cannot stay and
 * close it; then the spare is taken again. Returns false if a newcomer is
 * still waiting.
 */
static bool turn_away_newcomer(void)
{
    int fd;
    bool nobody_waiting;

    if (spare_fd >= 0)
        close(spare_fd);
    fd = accept(listener, NULL, NULL);
    /* The first accept() can fail for lack of a descriptor before it looks
     * for a connection: there may be none waiting at all. */
    nobody_waiting = fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (fd >= 0) {
        log_printf("turned away a connection: server is full");
        /* Nothing else was written to it: the line fits, and it cannot
         * block. If the client is gone, there is nobody to tell. */
        if (write(fd, SERVER_FULL, strlen(SERVER_FULL)) < 0) {
        }
        close(fd);
    }
    spare_fd = open("/dev/null", O_RDONLY);
    return fd >= 0 || nobody_waiting;
}

/* Takes in every client waiting in the listener's queue. */
static void accept_newcomers(void)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char addr[ADDR_LEN];
        struct user *u = NULL;
        /* The next client in the queue: a new socket, and its address. */
        int fd = accept(listener, (struct sockaddr *)&ss, &len);

        /* Out of descriptors, the newcomer is turned away; if even that
         * fails, the server stops listening for a while, rather than fail
         * again on every turn. */
        if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                       errno == ENOMEM)) {
            if (!turn_away_newcomer())
                paused_until = now_ms() + ACCEPT_PAUSE;
            return;
        }
        if (fd < 0) /* EAGAIN: nobody else waits (or EINTR: next turn) */
            return;
        format_addr((struct sockaddr *)&ss, len, addr);
        if (set_nonblocking(fd) < 0 || !(u = user_new(fd, addr)) ||
            !user_online(u)) {
            log_printf("error: cannot take in %s: %s", addr, strerror(errno));
            if (u)
                user_free(u);
            else
                close(fd);
            continue;
        }
        log_printf("connected %s", addr);
    }
}

/* -------------------------------------------------------------- The loop */

/* The first slots of the poll set; one slot per user follows, in order. */
enum { WAKE_SLOT, LISTEN_SLOT, LOG_SLOT, FIRST_USER_SLOT };

static struct pollfd *pollfds; /* what poll() waits for */

/* Fills pollfds for the next turn: a signal, newcomers (but during a
 * shutdown or a pause), input from every user with no line waiting, and
 * room to write in stdout, while the log waits, and in the socket of each
 * user whose output waits. */
static void watch_list(long long now)
{
    size_t need = FIRST_USER_SLOT + user_count;
    struct pollfd *grown = realloc(pollfds, need * sizeof *grown);

    if (!grown) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    pollfds = grown;
    pollfds[WAKE_SLOT] = (struct pollfd){wake_pipe[0], POLLIN, 0};
    pollfds[LISTEN_SLOT] = (struct pollfd){
        stopping_at || now < paused_until ? -1 : listener, POLLIN, 0};
    pollfds[LOG_SLOT] =
        (struct pollfd){log_len ? STDOUT_FILENO : -1, POLLOUT, 0};
    for (size_t i = 0; i < user_count; i++) {
        /* Ask whether a socket has room only when output waits: an idle
         * socket always has room, and poll() would never sleep. */
        short events = user_has_output(users[i]) ? POLLOUT : 0;

        if (!users[i]->in_ended && !user_has_line(users[i]))
            events |= POLLIN;
        pollfds[FIRST_USER_SLOT + i] = (struct pollfd){users[i]->fd, events, 0};
    }
}

/* Lowers *soonest to due if due is earlier; -1 stands for never. */
static void keep_earliest(long long *soonest, long long due)
{
    if (due >= 0 && (*soonest < 0 || due < *soonest))
        *soonest = due;
}

/*
 * How long poll() may sleep: not at all while a line waits to be handled;
 * else until the first timer is due: the end of a shutdown or of a pause
 * in listening, a closing user's grace, a user's silence running out.
 * -1: for ever.
 */
static int poll_timeout(int idle_seconds, long long now)
{
    long long soonest = -1;

    if (stopping_at != 0)
        keep_earliest(&soonest, stopping_at + SHUTDOWN_MS);
    if (now < paused_until)
        keep_earliest(&soonest, paused_until);
    for (size_t i = 0; i < user_count; i++) {
        if (user_has_line(users[i]))
            return 0;
        if (user_is_closing(users[i]))
            keep_earliest(&soonest, users[i]->close_deadline);
        else if (idle_seconds > 0)
            keep_earliest(&soonest,
                          users[i]->last_active + idle_seconds * 1000LL);
    }
    if (soonest < 0)
        return -1;
    return soonest > now ? (int)(soonest - now) : 0;
}

/*
 * Handles the lines that wait in the users' input, LINES_PER_TURN at most
 * for each user: the one thread takes turns among them, so a user who
 * sends a burst cannot crowd out the others, and the output of one turn
 * stays small. Only a whole line counts as activity.
 */
static void take_lines(long long now)
{
    for (size_t i = 0; i < user_count; i++) {
        for (int n = 0; n < LINES_PER_TURN; n++) {
            if (!user_take_line(users[i]))
                break;
            users[i]->last_active = now;
        }
    }
}

/* Tells the users silent for idle_seconds why they go, and closes them. */
static void kick_idle_users(int idle_seconds, long long now)
{
    if (idle_seconds == 0)
        return;
    for (size_t i = 0; i < user_count; i++) {
        struct user *u = users[i];

        if (!user_is_closing(u) &&
            now - u->last_active >= idle_seconds * 1000LL) {
            user_send(u, "disconnected: idle for %d seconds", idle_seconds);
            user_leave(u, "idle");
        }
    }
}

/* Writes to every user what its socket takes of its output, and frees what
 * all have read. */
static void flush_users(void)
{
    for (size_t i = 0; i < user_count; i++)
        user_flush(users[i]);
    output_trim();
}

/*
 * Closes, logs and forgets the closing users whose time has come: those
 * who have had everything and whose client has finished sending, so that
 * closing cannot destroy what was sent with a reset, and those whose grace
 * ran out.
 */
static void reap_closed_users(long long now)
{
    size_t kept = 0;

    for (size_t i = 0; i < user_count; i++) {
        struct user *u = users[i];

        if (!user_is_closing(u) ||
            (!(u->out_shut && u->in_ended) && now < u->close_deadline)) {
            users[kept++] = u;
        } else {
            log_printf("disconnected %s (%s)", u->addr, u->close_reason);
            user_free(u);
        }
    }
    user_count = kept;
}

/*
 * A signal asked the server to stop: everyone gets what was queued for
 * them, then the goodbye, and is closed; no newcomer is taken in.
 */
static void start_shutdown(long long now)
{
    char byte;

    while (read(wake_pipe[0], &byte, 1) > 0)
        continue; /* empty the pipe, or poll() would report it for ever */
    if (stopping_at != 0)
        return;
    stopping_at = now;
    log_printf("shutting down");
    user_broadcast("server is shutting down");
    for (size_t i = 0; i < user_count; i++)
        user_close(users[i], "server shutting down");
}

/*
 * The event loop. Each turn sleeps in poll() until a socket is ready or a
 * timer is due, reads, handles a line from each user who sent one, takes
 * in newcomers, sends the silent ones away, writes what the turn produced
 * and lets go of the users who are done. After a shutdown, it ends once
 * everyone is gone and the log is written, or the grace has run out.
 */
static void serve(int idle_seconds)
{
    for (;;) {
        /* Users accepted during this turn have no slot until the next. */
        size_t polled = user_count;
        long long now = now_ms();

        if (stopping_at != 0 && user_count == 0 &&
            (log_len == 0 || now >= stopping_at + SHUTDOWN_MS)) {
            log_drain(); /* the grace may end as the last users go */
            return;
        }
        watch_list(now);
        if (poll(pollfds, FIRST_USER_SLOT + polled,
                 poll_timeout(idle_seconds, now)) < 0 &&
            errno != EINTR) {
            perror("error: poll");
            exit(1);
        }
        now = now_ms();
        if (pollfds[LOG_SLOT].revents)
            log_flush();
        if (pollfds[WAKE_SLOT].revents & POLLIN)
            start_shutdown(now);
        for (size_t i = 0; i < polled; i++) {
            short revents = pollfds[FIRST_USER_SLOT + i].revents;

            if (revents & (POLLOUT | POLLERR | POLLHUP))
                users[i]->out_blocked = false; /* room: try again */
            if (revents & (POLLIN | POLLERR | POLLHUP))
                user_read(users[i]);
        }
        take_lines(now);
        if (pollfds[LISTEN_SLOT].revents & POLLIN)
            accept_newcomers();
        kick_idle_users(idle_seconds, now);
        flush_users();
        reap_closed_users(now);
    }
}

/* Frees everything, down to the last byte, once everyone is gone. */
static void free_all(void)
{
    output_free();
    free(users);
    free(pollfds);
    close(listener);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    if (spare_fd >= 0)
        close(spare_fd);
}

int main(int argc, char **argv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[ADDR_LEN];

    parse_options(argc, argv);
    raise_fd_limit();
    listener = listen_on(listen_ip, listen_port);
    if (listener < 0)
        return 1;
    /* The address really taken: with port 0, the system chose the port. */
    if (getsockname(listener, (struct sockaddr *)&ss, &len) < 0) {
        perror("error: getsockname");
        return 1;
    }
    format_addr((struct sockaddr *)&ss, len, addr);
    /* Writing to a socket whose client has gone raises SIGPIPE, which would
     * kill the server. Ignored, it turns into an EPIPE error from write(). */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || catch_signals() < 0) {
        perror("error: cannot set up signal handling");
        return 1;
    }
    /* Without a spare, a full server stops listening for a while,
     * instead of telling newcomers why they cannot stay. */
    spare_fd = open("/dev/null", O_RDONLY);
    log_printf("listening on %s", addr);
    serve(atoi(idle_timeout));
    free_all();
    return 0;
}
