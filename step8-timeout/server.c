/*
 * server.c - a group chat server: every line a user sends reaches everyone.
 *
 * One thread serves every client. A poll() loop waits until one of the
 * sockets is ready, does what can be done without waiting, and goes back to
 * poll(). This file holds the listener, the loop and the online table; what
 * a user does, from arriving to leaving, is in user.c. A user who sends
 * nothing for -timeout seconds is told why and disconnected.
 *
 * Usage: server [-ip ADDR] [-port PORT] [-timeout SECONDS]
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
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

#define SERVER_FULL "error: server is full\n"

/* ------------------------------------------------------------- The state */

static int listener = -1;           /* the listening socket */
static int wake_pipe[2] = {-1, -1}; /* signal handler -> poll loop */
static int spare_fd = -1;           /* a descriptor held back, see below */
static bool accepting = true;       /* false while no descriptor is free */

static struct user **users; /* the online table, oldest first */
static size_t user_count, user_cap;

/* ----------------------------------------------------------- The options */

struct options {
    const char *ip;
    const char *port;
    const char *timeout;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: server [-ip ADDR] [-port PORT] [-timeout SECONDS]\n"
                 "  -ip ADDR    address to listen on (default " DEFAULT_IP ")\n"
                 "  -port PORT  port to listen on, 0 for any free one"
                 " (default " DEFAULT_PORT ")\n"
                 "  -timeout N  disconnect users silent for N seconds, 0 never"
                 " (default " DEFAULT_TIMEOUT ")\n");
}

/* Reports a mistake on the command line and exits with status 2. */
static void usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "error: %s %s\n", what, arg);
    usage(stderr);
    exit(2);
}

/*
 * If argv[*i] is the option -NAME (or --NAME), returns its value, taken
 * from "-NAME=VALUE" or else from the next argument, as Go's flag package
 * does. Returns NULL if argv[*i] is not that option.
 */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    const char *arg = argv[*i];
    size_t len = strlen(name);

    if (arg[0] != '-')
        return NULL;
    arg += arg[1] == '-' ? 2 : 1;
    if (strncmp(arg, name, len) != 0)
        return NULL;
    if (arg[len] == '=')
        return arg + len + 1;
    if (arg[len] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        usage_error("missing value for", argv[*i]);
    return argv[++*i];
}

/* A port is a number from 0 to 65535; 0 asks the system for a free one. */
static bool port_is_valid(const char *port)
{
    size_t len = strspn(port, "0123456789");

    return len > 0 && len <= 5 && port[len] == '\0' && atol(port) <= 65535;
}

/* A timeout is a whole number of seconds, up to MAX_TIMEOUT. */
static bool timeout_is_valid(const char *seconds)
{
    size_t len = strspn(seconds, "0123456789");

    return len > 0 && len <= strlen(MAX_TIMEOUT) && seconds[len] == '\0' &&
           atol(seconds) <= atol(MAX_TIMEOUT);
}

static void parse_options(int argc, char **argv, struct options *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *value;

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if ((value = option_value(argc, argv, &i, "ip"))) {
            opts->ip = value;
        } else if ((value = option_value(argc, argv, &i, "port"))) {
            opts->port = value;
        } else if ((value = option_value(argc, argv, &i, "timeout"))) {
            opts->timeout = value;
        } else {
            usage_error("unknown option", argv[i]);
        }
    }
    if (!port_is_valid(opts->port))
        usage_error("invalid port (use 0-65535):", opts->port);
    if (!timeout_is_valid(opts->timeout))
        usage_error("invalid timeout (use 0 to " MAX_TIMEOUT " seconds):",
                    opts->timeout);
}

/* ------------------------------------------------------------- Addresses */

/*
 * Writes "host:port" into out, with brackets around an IPv6 host,
 * "[::1]:8888", so that the port stands apart from the address's own colons.
 */
static void join_host_port(const char *host, const char *port, char *out,
                           size_t size)
{
    const char *format = strchr(host, ':') ? "[%s]:%s" : "%s:%s";

    snprintf(out, size, format, host, port);
}

/* Writes a socket address as text, in the form of join_host_port(). */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *out,
                        size_t size)
{
    char host[ADDR_LEN], port[sizeof "65535"];
    int err = getnameinfo(sa, len, host, sizeof host, port, sizeof port,
                          NI_NUMERICHOST | NI_NUMERICSERV);

    if (err != 0)
        snprintf(out, size, "unknown address (%s)", gai_strerror(err));
    else
        join_host_port(host, port, out, size);
}

/* ------------------------------------------------------------- Listening */

/*
 * Makes every read, write and accept on fd return at once, with EAGAIN
 * when it would have to wait: the server must never stop for one client.
 */
static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Opens one non-blocking listening socket; -1 with errno set on failure. */
static int open_listener(const struct addrinfo *ai)
{
    int yes = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);

    if (fd < 0)
        return -1;
    /*
     * After a restart the old connections linger for a while in TIME_WAIT;
     * without SO_REUSEADDR, bind() would refuse the port until they are gone.
     */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        listen(fd, SOMAXCONN) < 0 || set_nonblocking(fd) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/*
 * Listens on ip:port. getaddrinfo() turns the text into socket addresses,
 * IPv4 or IPv6 alike, and the first one that works is used. Returns the
 * listening socket, or -1 after saying on stderr why there is none.
 */
static int listen_on(const char *ip, const char *port)
{
    struct addrinfo hints, *found;
    char where[ADDR_LEN];
    int fd = -1, err;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    join_host_port(ip, port, where, sizeof where);

    err = getaddrinfo(ip, port, &hints, &found);
    if (err != 0) {
        fprintf(stderr, "error: cannot listen on %s: %s\n", where,
                gai_strerror(err));
        return -1;
    }
    for (struct addrinfo *ai = found; ai && fd < 0; ai = ai->ai_next)
        fd = open_listener(ai);
    if (fd < 0)
        fprintf(stderr, "error: cannot listen on %s: %s\n", where,
                strerror(errno));
    freeaddrinfo(found);
    return fd;
}

/* Prints the address really listened on: with port 0 the system chose. */
static void print_listening(void)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[ADDR_LEN];

    if (getsockname(listener, (struct sockaddr *)&ss, &len) < 0) {
        perror("error: getsockname");
        return;
    }
    format_addr((struct sockaddr *)&ss, len, addr, sizeof addr);
    printf("listening on %s\n", addr);
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
 * before poll() began to wait. So the handler writes a byte into a pipe that
 * poll() watches, and the loop wakes up and shuts down in its own time.
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
    /*
     * Writing to a socket whose peer has gone raises SIGPIPE, which would
     * kill the server. Ignored, it turns into an EPIPE error from write().
     */
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -1;
    if (pipe(wake_pipe) < 0 || set_nonblocking(wake_pipe[0]) < 0 ||
        set_nonblocking(wake_pipe[1]) < 0)
        return -1;
    sa.sa_handler = on_stop_signal;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------ The online table */

/* Appends u to the table, which so stays in order of arrival. */
bool server_add_user(struct user *u)
{
    if (user_count == user_cap) {
        size_t cap = user_cap ? 2 * user_cap : 16;
        struct user **grown = realloc(users, cap * sizeof *grown);

        if (!grown)
            return false;
        users = grown;
        user_cap = cap;
    }
    users[user_count++] = u;
    return true;
}

/* Takes u out of the table; the others keep their order. */
void server_remove_user(struct user *u)
{
    size_t i = 0;

    while (i < user_count && users[i] != u)
        i++;
    if (i == user_count)
        return;
    memmove(&users[i], &users[i + 1], (user_count - i - 1) * sizeof *users);
    user_count--;
}

/* The table itself, lent to users to read: who lists it. */
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

/* Queues a line for everyone online. */
void server_broadcast(const char *format, ...)
{
    char line[MAX_MESSAGE];
    va_list args;

    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    for (size_t i = 0; i < user_count; i++)
        user_send_line(users[i], line);
}

/* ------------------------------------------------------------- Newcomers */

/*
 * Writes one last line to a socket and closes it. It is used only on
 * sockets nothing else was written to, so the send buffer has room and the
 * write cannot block.
 */
static void say_and_close(int fd, const char *line)
{
    if (write(fd, line, strlen(line)) < 0) {
        /* The client has already gone: nothing more to do. */
    }
    close(fd);
}

/*
 * Milliseconds from some fixed moment, on a clock that setting the date
 * does not move. clock_gettime() fails only for a clock the system lacks,
 * and every system this code is for has CLOCK_MONOTONIC.
 */
static long long now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Makes a user of a freshly accepted socket. */
static void welcome(int fd, const struct sockaddr *sa, socklen_t len)
{
    char addr[ADDR_LEN];
    struct user *u = NULL;

    format_addr(sa, len, addr, sizeof addr);
    if (set_nonblocking(fd) < 0 || !(u = user_new(fd, addr)) ||
        !user_online(u)) {
        printf("turned away %s: server is full\n", addr);
        free(u);
        say_and_close(fd, SERVER_FULL);
        return;
    }
    u->last_active = now_ms();
    printf("connected %s\n", u->addr);
}

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
        printf("turned away a connection: server is full\n");
        say_and_close(fd, SERVER_FULL);
    }
    spare_fd = open("/dev/null", O_RDONLY);
    return fd >= 0 || nobody_waiting;
}

/* Accepts every connection waiting on the listener. */
static void accept_newcomers(void)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept(listener, (struct sockaddr *)&ss, &len);

        if (fd >= 0) {
            welcome(fd, (struct sockaddr *)&ss, len);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                   errno == ENOMEM) {
            /* If the newcomer cannot even be turned away, stop listening
             * until a user leaves, rather than fail on every turn. */
            if (!turn_away_newcomer())
                accepting = false;
            return;
        } else if (errno != EINTR && errno != ECONNABORTED) {
            return; /* EAGAIN: nobody else is waiting */
        }
    }
}

/* A user left, so a descriptor is free again: listen again if we stopped. */
static void resume_accepting(void)
{
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY);
    accepting = true;
}

/* -------------------------------------------------------------- The loop */

/* The first slots of the poll set; one slot per user follows, in order. */
enum { WAKE_SLOT, LISTEN_SLOT, FIRST_USER_SLOT };

static struct pollfd *pollfds;
static size_t pollfd_cap;

/* Fills pollfds with what the next poll() waits for. */
static bool watch_list(void)
{
    size_t need = FIRST_USER_SLOT + user_count;

    if (need > pollfd_cap) {
        struct pollfd *grown = realloc(pollfds, need * sizeof *grown);

        if (!grown)
            return false;
        pollfds = grown;
        pollfd_cap = need;
    }
    pollfds[WAKE_SLOT].fd = wake_pipe[0];
    pollfds[LISTEN_SLOT].fd = accepting ? listener : -1; /* -1: skipped */
    for (size_t i = 0; i < need; i++)
        pollfds[i].events = POLLIN;
    /* Ask whether a socket has room only when there is output waiting:
     * an idle socket always has room, and poll() would never sleep. */
    for (size_t i = 0; i < user_count; i++) {
        pollfds[FIRST_USER_SLOT + i].fd = users[i]->fd;
        if (users[i]->out_len > 0)
            pollfds[FIRST_USER_SLOT + i].events |= POLLOUT;
    }
    return true;
}

static void flush_users(void)
{
    for (size_t i = 0; i < user_count; i++)
        user_flush(users[i]);
}

/*
 * How long poll() may wait: until the first user's silence runs out, or
 * for ever (-1) when no one can time out. One timer for everyone, kept by
 * the loop itself: no thread, no signal, no timer per user.
 */
static int poll_timeout(int idle_seconds, long long now)
{
    long long soonest = -1;

    if (idle_seconds == 0)
        return -1;
    for (size_t i = 0; i < user_count; i++) {
        long long left = users[i]->last_active + idle_seconds * 1000LL - now;

        if (left < 0)
            left = 0;
        if (soonest < 0 || left < soonest)
            soonest = left;
    }
    return (int)soonest;
}

/* Tells the users silent for idle_seconds why they go, and marks them. */
static void kick_idle_users(int idle_seconds, long long now)
{
    if (idle_seconds == 0)
        return;
    for (size_t i = 0; i < user_count; i++) {
        struct user *u = users[i];

        if (!user_is_closing(u) &&
            now - u->last_active >= idle_seconds * 1000LL) {
            user_send(u, "disconnected: idle for %d seconds", idle_seconds);
            user_close(u, "idle");
        }
    }
}

/* Frees and forgets every user marked for closing. */
static void reap_closed_users(void)
{
    size_t i = 0;

    while (i < user_count) {
        struct user *u = users[i];

        if (!user_is_closing(u)) {
            i++;
            continue;
        }
        printf("disconnected %s (%s)\n", u->addr, u->close_reason);
        user_offline(u);
        user_free(u);
        resume_accepting();
        /* The news of u leaving may have overflowed another user's buffer
         * and marked that one for closing, maybe one already passed. */
        i = 0;
    }
}

/*
 * The event loop. Each turn waits in poll() until a socket is ready or a
 * user's silence runs out, then serves the users whose sockets have
 * something to read, takes in the newcomers, sends the silent ones away,
 * sends what the turn produced and lets go of the users who left. Returns
 * the exit status.
 */
static int serve(int idle_seconds)
{
    for (;;) {
        /* Users accepted during this turn have no slot until the next. */
        size_t polled = user_count;
        long long now;

        if (!watch_list()) {
            fprintf(stderr, "error: out of memory\n");
            return 1;
        }
        if (poll(pollfds, FIRST_USER_SLOT + polled,
                 poll_timeout(idle_seconds, now_ms())) < 0) {
            if (errno == EINTR)
                continue;
            perror("error: poll");
            return 1;
        }
        now = now_ms();
        for (size_t i = 0; i < polled; i++) {
            if (pollfds[FIRST_USER_SLOT + i].revents &
                (POLLIN | POLLHUP | POLLERR)) {
                users[i]->last_active = now;
                user_read(users[i]);
            }
        }
        if (pollfds[LISTEN_SLOT].revents & POLLIN)
            accept_newcomers();
        kick_idle_users(idle_seconds, now);
        flush_users();
        reap_closed_users();
        if (pollfds[WAKE_SLOT].revents & POLLIN)
            return 0;
    }
}

/*
 * Says goodbye to everyone and frees everything, down to the last byte.
 * Each socket gets one try at taking the goodbye: waiting for a client that
 * does not read would hold up the shutdown.
 */
static void shut_down(void)
{
    printf("shutting down\n");
    server_broadcast("server is shutting down");
    flush_users();
    for (size_t i = 0; i < user_count; i++)
        user_free(users[i]);
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
    struct options opts = {DEFAULT_IP, DEFAULT_PORT, DEFAULT_TIMEOUT};
    int status;

    parse_options(argc, argv, &opts);
    /* One line at a time, even into a file or a pipe: the log is read live. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_fd_limit();

    listener = listen_on(opts.ip, opts.port);
    if (listener < 0)
        return 1;
    if (catch_signals() < 0) {
        perror("error: cannot set up signal handling");
        return 1;
    }
    /* Without a spare, a full server stops listening until a user leaves,
     * instead of telling newcomers why they cannot stay. */
    spare_fd = open("/dev/null", O_RDONLY);
    print_listening();

    status = serve(atoi(opts.timeout));
    shut_down();
    return status;
}
