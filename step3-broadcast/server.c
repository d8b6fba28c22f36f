/*
 * server.c - a group chat server: every line a user sends reaches everyone.
 *
 * One thread serves every client: a poll() loop sleeps until a socket is
 * ready, and does what can be done without waiting. Each connection is a
 * user, named after its address, and everyone hears of each arrival and of
 * each line a user sends. What the server says is kept once, and each user
 * reads it at its own pace.
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

#define ADDR_LEN   80 /* "[IPv6%scope]:port" and its NUL */
#define REASON_LEN 64 /* why a user was disconnected, for the log */

#define MAX_LINE       4096             /* bytes a user's line may hold */
#define INPUT_SIZE     (MAX_LINE + 2)   /* such a line, its CR and its LF */
#define LINES_PER_TURN 16               /* handled for each user in a turn */
#define MAX_MESSAGE    (MAX_LINE + 256) /* bytes in a line the server sends */
#define OUTPUT_MIN     4096             /* first size of the shared output */
#define OUTPUT_LIMIT   (1024 * 1024) /* unsent bytes before a user is dropped */
#define LOG_SIZE       65536         /* bytes of log waiting for stdout */

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
    char *in;                      /* bytes read, not yet handled, or NULL */
    size_t in_start, in_len;       /* where they start in it, and how many */
    bool in_skipping;              /* dropping a too long line up to LF */
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

/* ----------------------------------------------------------------- Lines */

/* Whether c is a control character: C0 but TAB, DEL, or C1. */
static bool is_control(unsigned long c)
{
    return (c < 0x20 && c != '\t') || (c >= 0x7f && c <= 0x9f);
}

/*
 * Decodes the UTF-8 sequence at s, n bytes long at most: returns its
 * length and puts its code point in *c, or returns 0 if it is not valid
 * UTF-8: a stray continuation byte, a sequence cut short, an overlong
 * form, a surrogate, or a code point past U+10FFFF.
 */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned long *c)
{
    size_t len = s[0] < 0x80   ? 1
                 : s[0] < 0xc2 ? 0
                 : s[0] < 0xe0 ? 2
                 : s[0] < 0xf0 ? 3
                 : s[0] < 0xf5 ? 4
                               : 0;

    if (len == 0 || len > n)
        return 0;
    *c = len == 1 ? s[0] : s[0] & (0x3f >> (len - 1)); /* the lead's bits */
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *c = *c << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && *c < 0x800) || (*c >= 0xd800 && *c <= 0xdfff) ||
        (len == 4 && (*c < 0x10000 || *c > 0x10ffff)))
        return 0;
    return len;
}

/*
 * Cleans text of len bytes in place, so that nothing but text reaches
 * anyone's screen: control characters go, and so does every byte that is
 * not part of a valid UTF-8 sequence. Returns the new length; text then
 * ends in a NUL.
 */
static size_t clean_text(char *text, size_t len)
{
    size_t kept = 0, i = 0;

    while (i < len) {
        unsigned long c;
        size_t n = utf8_decode((unsigned char *)text + i, len - i, &c);

        if (n > 0 && !is_control(c)) {
            memmove(text + kept, text + i, n);
            kept += n;
        }
        i += n > 0 ? n : 1;
    }
    text[kept] = '\0';
    return kept;
}

/* Acts on one complete line from u: each is a public message. */
static void user_handle_line(struct user *u, char *line, size_t len)
{
    if (clean_text(line, len) > 0)
        user_broadcast("[%s]%s: %s", u->addr, u->name, line);
}

/* Forgets the first n bytes of u's input; an empty buffer is freed. */
static void user_consume(struct user *u, size_t n)
{
    u->in_start += n;
    u->in_len -= n;
    if (u->in_len == 0) {
        free(u->in);
        u->in = NULL;
        u->in_start = 0;
    }
}

/*
 * Whether a whole line waits in u's input. The loop reads no more from u
 * until it has been handled: a user who sends much at once cannot get
 * ahead of the others, and TCP itself slows the sender down.
 */
static bool user_has_line(const struct user *u)
{
    return u->in_len > 0 && memchr(u->in + u->in_start, '\n', u->in_len);
}

/*
 * Handles the first line in u's input, if a whole one has come, and
 * returns true; returns false if its LF has not come yet. The line is
 * passed on without its CR, ending in a NUL, with its length: a NUL byte
 * sent by the client may stand in the middle. A line too long to fit is
 * dropped whole, up to its LF, and nobody is told, not even its sender.
 */
static bool user_take_line(struct user *u)
{
    char *line, *lf;
    size_t len;

    if (u->in_len == 0)
        return false;
    line = u->in + u->in_start;
    lf = memchr(line, '\n', u->in_len);
    len = lf ? (size_t)(lf - line) : 0;
    if (!lf) {
        if (u->in_len == INPUT_SIZE)
            u->in_skipping = true; /* too long: dropped up to its LF */
        if (u->in_skipping)
            user_consume(u, u->in_len);
        return false;
    }
    if (len > 0 && line[len - 1] == '\r')
        len--;
    line[len] = '\0';
    if (u->in_skipping)
        u->in_skipping = false;
    else if (len > 0 && len <= MAX_LINE)
        user_handle_line(u, line, len);
    user_consume(u, (size_t)(lf - line) + 1);
    return true;
}

/* ------------------------------------------------------------- The users */

/*
 * Reads what u's socket holds into its input buffer, after the bytes
 * waiting there. The end of the stream (0) or an error closes u; EAGAIN
 * only means there was nothing after all.
 */
static void user_read(struct user *u)
{
    ssize_t n;

    if (!u->in && !(u->in = malloc(INPUT_SIZE))) {
        user_close(u, "out of memory");
        return;
    }
    memmove(u->in, u->in + u->in_start, u->in_len);
    u->in_start = 0;
    n = read(u->fd, u->in + u->in_len, INPUT_SIZE - u->in_len);
    if (n > 0)
        u->in_len += (size_t)n;
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
            free(u->in);
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
 * every user with no line waiting, and room to write in stdout, while the
 * log waits, and in the socket of each user whose output waits. */
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
        short events = users[i]->out_pos < out_len ? POLLOUT : 0;

        if (!user_has_line(users[i]))
            events |= POLLIN;
        pollfds[FIRST_USER_SLOT + i] = (struct pollfd){users[i]->fd, events, 0};
    }
}

/* How long poll() may sleep: not at all while a line waits to be handled,
 * else for ever (-1), until a socket is ready. */
static int poll_timeout(void)
{
    for (size_t i = 0; i < user_count; i++)
        if (user_has_line(users[i]))
            return 0;
    return -1;
}

/*
 * Handles the lines that wait in the users' input, LINES_PER_TURN at most
 * for each user: the one thread takes turns among them, so a user who
 * sends a burst cannot crowd out the others, and the output of one turn
 * stays small.
 */
static void take_lines(void)
{
    for (size_t i = 0; i < user_count; i++)
        for (int n = 0; n < LINES_PER_TURN; n++)
            if (!user_take_line(users[i]))
                break;
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
 * ready, reads, handles a line from each user who sent one, takes in
 * newcomers, writes what the turn produced and lets go of the users who
 * left. */
static void serve(void)
{
    for (;;) {
        /* Users accepted during this turn have no slot until the next. */
        size_t polled = user_count;

        watch_list();
        if (poll(pollfds, FIRST_USER_SLOT + polled, poll_timeout()) < 0 &&
            errno != EINTR) {
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
        take_lines();
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
