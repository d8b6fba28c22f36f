/*
 * server.c - a TCP server that keeps a table of the users online.
 *
 * One thread serves every client: a poll() loop sleeps until a socket is
 * ready, and does what can be done without waiting. Each connection is a
 * user, named after its address, and everyone hears of each arrival. What
 * the server says is kept once, and each user reads it at its own pace.
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
#include <sys/socket.h>
#include <unistd.h>

/* -------------------------------------------------------------- Settings */

#define DEFAULT_IP   "127.0.0.1"
#define DEFAULT_PORT "8888"

#define ADDR_LEN   80    /* "[IPv6%scope]:port" and its NUL */
#define REASON_LEN 64    /* why a user was disconnected, for the log */
#define READ_CHUNK 16384 /* bytes taken from a socket in one read() */

#define MAX_MESSAGE  256           /* bytes in a line the server sends */
#define OUTPUT_MIN   4096          /* first size of the shared output */
#define OUTPUT_LIMIT (1024 * 1024) /* unsent bytes before a user is dropped */
#define LOG_SIZE     65536         /* bytes of log waiting for stdout */

/* Lets gcc and clang check the arguments of a printf-like function: its
 * format is argument f, the values start at argument v. */
#ifdef __GNUC__
#define PRINTF_LIKE(f, v) __attribute__((format(printf, f, v)))
#else
#define PRINTF_LIKE(f, v)
#endif

/* One connected client. */
struct user {
    int fd;                        /* its socket */
    char addr[ADDR_LEN];           /* "127.0.0.1:50312" or "[::1]:50312" */
    char name[ADDR_LEN];           /* what the others call it */
    size_t out_pos;                /* how far it has read the output */
    bool out_blocked;              /* its socket was full at the last try */
    char close_reason[REASON_LEN]; /* set once the user is to be closed */
};

static const char *listen_ip = DEFAULT_IP, *listen_port = DEFAULT_PORT;
static int listener = -1;   /* the listening socket */
static struct user **users; /* the online table, oldest first */
static size_t user_count;

/* ----------------------------------------------------------- The options */

static const char usage[] =
    "usage: server [-ip ADDR] [-port PORT]\n"
    "  -ip ADDR    address to listen on (default " DEFAULT_IP ")\n"
    "  -port PORT  port to listen on, 0 for any free one"
    " (default " DEFAULT_PORT ")\n";

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
        slot = strcmp(option, "-ip") == 0     ? &listen_ip
               : strcmp(option, "-port") == 0 ? &listen_port
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

/* ----------------------------------------------------- The shared output */

/*
 * Everything the server says goes into one output, in the order it says
 * it, and is kept there once, however many users are to hear it. Each
 * user reads the output from its own position, out_pos; what every user
 * has read is freed.
 */
static char *output;            /* what some user has not read yet */
static size_t out_len, out_cap; /* bytes in it, and room for */

/* Adds a line and its LF to the output; false when memory runs out. */
static bool output_add(const char *line)
{
    size_t len = strlen(line);
    size_t cap = out_cap ? out_cap : OUTPUT_MIN;

    while (cap < out_len + len + 1)
        cap *= 2;
    if (cap > out_cap) {
        char *grown = realloc(output, cap);

        if (!grown)
            return false;
        output = grown;
        out_cap = cap;
    }
    memcpy(output + out_len, line, len);
    output[out_len + len] = '\n';
    out_len += len + 1;
    return true;
}

/* Queues a line for everyone online. */
static void user_broadcast(const char *format, ...) PRINTF_LIKE(1, 2);

static void user_broadcast(const char *format, ...)
{
    char line[MAX_MESSAGE];
    va_list args;

    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    if (!output_add(line))
        fprintf(stderr, "error: out of memory: a line for everyone is lost\n");
}

/* Marks u to be closed at the end of the turn: taking it out of the table
 * now would shift the table under the loop. The first reason is logged. */
static void user_close(struct user *u, const char *reason)
{
    if (u->close_reason[0] == '\0')
        snprintf(u->close_reason, sizeof u->close_reason, "%s", reason);
}

/*
 * Writes as much of u's output as its socket takes now. What does not fit
 * waits for a later turn, when poll() reports room (POLLOUT); until then u
 * is not tried again. A user more than OUTPUT_LIMIT behind after that has
 * stopped reading, and is dropped.
 */
static void user_flush(struct user *u)
{
    size_t len;

    while (!u->out_blocked && (len = out_len - u->out_pos) > 0) {
        ssize_t n = write(u->fd, output + u->out_pos, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            u->out_blocked = true;
        } else if (n < 0) {
            user_close(u, strerror(errno));
            u->out_pos = out_len; /* nothing more can be sent */
        } else {
            u->out_pos += (size_t)n;
            u->out_blocked = (size_t)n < len; /* it took less: full */
        }
    }
    if (out_len - u->out_pos > OUTPUT_LIMIT)
        user_close(u, "too much unsent output");
}

/*
 * Frees the part of the output that every user has read. The rest moves
 * to the front only once the read part is the larger, so that each byte
 * is moved about once, however often the output is trimmed.
 */
static void output_trim(void)
{
    size_t done = out_len;

    for (size_t i = 0; i < user_count; i++)
        if (users[i]->out_pos < done)
            done = users[i]->out_pos;
    if (done == 0 || (done < out_len && done < out_len - done))
        return;
    memmove(output, output + done, out_len - done);
    out_len -= done;
    for (size_t i = 0; i < user_count; i++)
        users[i]->out_pos -= done;
    if (out_len == 0) {
        free(output); /* an idle server holds no output */
        output = NULL;
        out_cap = 0;
    }
}

/* ------------------------------------------------------------- The users */

/* Reads what u's socket holds and throws it away: unread, it would stall
 * the client. The end of the stream (0) or an error closes u. */
static void user_read(struct user *u)
{
    char chunk[READ_CHUNK];
    ssize_t n = read(u->fd, chunk, sizeof chunk);

    if (n == 0 ||
        (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        user_close(u, n == 0 ? "left" : strerror(errno));
}

/* Closes, logs and forgets every user marked for closing. */
static void reap_closed_users(void)
{
    size_t kept = 0;

    for (size_t i = 0; i < user_count; i++) {
        struct user *u = users[i];

        if (u->close_reason[0] == '\0') {
            users[kept++] = u;
        } else {
            log_printf("disconnected %s (%s)", u->addr, u->close_reason);
            close(u->fd);
            free(u);
        }
    }
    user_count = kept;
}

/* Adds a user for a new socket at the end of the table, in order of
 * arrival. Returns false when memory runs out. */
static bool user_add(int fd, const char *addr)
{
    struct user *u = calloc(1, sizeof *u);
    struct user **grown = realloc(users, (user_count + 1) * sizeof *grown);

    if (grown)
        users = grown;
    if (!u || !grown) {
        free(u);
        return false;
    }
    u->fd = fd;
    snprintf(u->addr, sizeof u->addr, "%s", addr);
    snprintf(u->name, sizeof u->name, "%s", addr);
    u->out_pos = out_len; /* it hears what is said from now on */
    users[user_count++] = u;
    return true;
}

/* Takes in every client waiting in the listener's queue. */
static void accept_newcomers(void)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char addr[ADDR_LEN];
        /* The next client in the queue: a new socket, and its address. */
        int fd = accept(listener, (struct sockaddr *)&ss, &len);

        /* EAGAIN: nobody else waits (or EINTR: next turn). A shortcut: out
         * of descriptors (EMFILE), the newcomer stays queued and the loop
         * spins until a user leaves. */
        if (fd < 0)
            return;
        format_addr((struct sockaddr *)&ss, len, addr);
        if (set_nonblocking(fd) < 0 || !user_add(fd, addr)) {
            log_printf("error: cannot take in %s: %s", addr, strerror(errno));
            close(fd);
            continue;
        }
        log_printf("connected %s", addr);
        /* Everyone hears of the arrival, the newcomer too, whose name is
         * its address for now. */
        user_broadcast("[%s]%s is online", addr, addr);
    }
}

/* -------------------------------------------------------------- The loop */

/* The first slots of the poll set; one slot per user follows, in order. */
enum { LISTEN_SLOT, LOG_SLOT, FIRST_USER_SLOT };

static struct pollfd *pollfds; /* what poll() waits for */

/* Fills pollfds for the next turn: newcomers on the listener, input from
 * every user, and room to write in stdout, while the log waits, and in the
 * socket of each user whose output waits. */
static void watch_list(void)
{
    size_t need = FIRST_USER_SLOT + user_count;
    struct pollfd *grown = realloc(pollfds, need * sizeof *grown);

    if (!grown) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    pollfds = grown;
    pollfds[LISTEN_SLOT] = (struct pollfd){listener, POLLIN, 0};
    pollfds[LOG_SLOT] =
        (struct pollfd){log_len ? STDOUT_FILENO : -1, POLLOUT, 0};
    for (size_t i = 0; i < user_count; i++) {
        /* Ask whether a socket has room only when output waits: an idle
         * socket always has room, and poll() would never sleep. */
        short events = users[i]->out_pos < out_len ? POLLIN | POLLOUT : POLLIN;

        pollfds[FIRST_USER_SLOT + i] = (struct pollfd){users[i]->fd, events, 0};
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

/* The event loop, for ever. Each turn sleeps in poll() until a socket is
 * ready, reads, takes in newcomers, writes what the turn produced and lets
 * go of the users who left. */
static void serve(void)
{
    for (;;) {
        /* Users accepted during this turn have no slot until the next. */
        size_t polled = user_count;

        watch_list();
        if (poll(pollfds, FIRST_USER_SLOT + polled, -1) < 0 && errno != EINTR) {
            perror("error: poll");
            exit(1);
        }
        if (pollfds[LOG_SLOT].revents)
            log_flush();
        for (size_t i = 0; i < polled; i++) {
            short revents = pollfds[FIRST_USER_SLOT + i].revents;

            if (revents & (POLLOUT | POLLERR | POLLHUP))
                users[i]->out_blocked = false; /* room: try again */
            if (revents & (POLLIN | POLLERR | POLLHUP))
                user_read(users[i]);
        }
        if (pollfds[LISTEN_SLOT].revents & POLLIN)
            accept_newcomers();
        flush_users();
        reap_closed_users();
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[ADDR_LEN];

    parse_options(argc, argv);
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
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("error: cannot ignore SIGPIPE");
        return 1;
    }
    log_printf("listening on %s", addr);
    serve();
}
