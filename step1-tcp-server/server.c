/*
 * server.c - a TCP server that accepts connections and keeps them open.
 *
 * One thread serves every client: a poll() loop sleeps until a socket is
 * ready, and does what can be done without waiting. Nothing is said to
 * anyone yet: arrivals and departures are logged, what clients send dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
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

/* One connected client. */
struct user {
    int fd;                        /* its socket */
    char addr[ADDR_LEN];           /* "127.0.0.1:50312" or "[::1]:50312" */
    char close_reason[REASON_LEN]; /* set once the user is to be closed */
};

static const char *listen_ip = DEFAULT_IP, *listen_port = DEFAULT_PORT;
static int listener = -1;   /* the listening socket */
static struct user **users; /* everyone connected, oldest first */
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

/* ------------------------------------------------------------- The users */

/* Reads what u's socket holds and throws it away: unread, it would stall
 * the client. At the end of the stream (0) or an error, u is marked to be
 * closed: taking it out of the table now would shift it under the loop. */
static void user_read(struct user *u)
{
    char chunk[READ_CHUNK];
    ssize_t n = read(u->fd, chunk, sizeof chunk);

    if (n == 0 ||
        (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        snprintf(u->close_reason, sizeof u->close_reason, "%s",
                 n == 0 ? "left" : strerror(errno));
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
            printf("disconnected %s (%s)\n", u->addr, u->close_reason);
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
            printf("error: cannot take in %s: %s\n", addr, strerror(errno));
            close(fd);
            continue;
        }
        printf("connected %s\n", addr);
    }
}

/* -------------------------------------------------------------- The loop */

/* The listener's slot in the poll set; one slot per user follows, in order. */
enum { LISTEN_SLOT, FIRST_USER_SLOT };

static struct pollfd *pollfds; /* what poll() waits for */

/* Fills pollfds for the next turn: newcomers on the listener, input from
 * every user. */
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
    for (size_t i = 0; i < user_count; i++)
        pollfds[FIRST_USER_SLOT + i] = (struct pollfd){users[i]->fd, POLLIN, 0};
}

/* The event loop, for ever. Each turn sleeps in poll() until a socket is
 * ready, reads, takes in newcomers and lets go of the users who left. */
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
        for (size_t i = 0; i < polled; i++)
            if (pollfds[FIRST_USER_SLOT + i].revents &
                (POLLIN | POLLERR | POLLHUP))
                user_read(users[i]);
        if (pollfds[LISTEN_SLOT].revents & POLLIN)
            accept_newcomers();
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
    /* One line at a time, even into a file or a pipe: the log is read live. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("listening on %s\n", addr);
    serve();
}
