/*
 * loadgen.c - a load generator for the chat server: many clients, one thread.
 *
 * It connects N clients to the server at once and waits until each one has
 * heard every join notice it is due. Then S of them send M lines each, as
 * fast as the server takes them or at a steady rate, while every client
 * checks that it receives every line of every sender exactly once, in
 * order and intact, and notes how long each line took to arrive. It can
 * then stay connected in silence, to see what an idle room costs the
 * server. What it measured is printed in words, then once more as a line
 * of key=value pairs for scripts.
 *
 * Like the server, it is one poll() loop over non-blocking sockets, so it
 * holds ten thousand connections without a thread for each.
 *
 * Usage: loadgen [-ip ADDR] [-port PORT] [-clients N] [-senders S]
 *                [-lines M] [-rate R] [-size BYTES] [-idle SECONDS]
 *                [-pid PID] [-timeout SECONDS] [-settle SECONDS]
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* -------------------------------------------------------------- Settings */

#define DEFAULT_IP      "127.0.0.1"
#define DEFAULT_PORT    "8888"
#define DEFAULT_CLIENTS 100
#define DEFAULT_SIZE    64  /* bytes of text in each line a sender sends */
#define DEFAULT_TIMEOUT 120 /* seconds the joins, or the lines, may take */
#define DEFAULT_SETTLE  10  /* seconds without news before giving up */

#define MAX_CLIENTS 60000 /* about the number of ports a machine lends out */
#define MAX_LINES   1000000000L
#define MIN_SIZE    48 /* room for the sender, sequence number and time */
#define MAX_SIZE    1024
#define MAX_RATE    1000000L /* lines per second, one a microsecond */
#define MAX_SECONDS 86400    /* a day: the longest -timeout, -settle, -idle */

#define SPARE_FDS   16          /* besides the clients': stdio, /proc */
#define READ_CHUNK  (64 * 1024) /* bytes taken from a socket per read() */
#define SEND_CHUNK  (16 * 1024) /* bytes a sender writes per write() */
#define MAX_WAIT_MS 100 /* the loop looks at the clock at least this often */

/* Connections opened per loop turn: between batches, the clients already
 * connected read what the server sent them. */
#define CONNECT_BATCH 256

/* A client that misses this many join notices in a row has them counted
 * as damaged rather than lost: it is too far from the server's order. */
#define MAX_NOTICE_GAP 64

#define ADDR_LEN    64 /* "[IPv6%scope]:port" and its NUL */
#define NOTICE_LEN  (2 * ADDR_LEN + sizeof " is online")
#define MAX_IN      (2 * ADDR_LEN + sizeof ": " + MAX_SIZE) /* longest line */
#define SHOWN_LEN   120 /* bytes of an unexpected line kept to show */
#define PORT_COUNT  65536
#define PORT_DIGITS 5

#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL
#define NS_PER_US 1000LL

/* ------------------------------------------------------------- The state */

/* One connection to the server, and what it has received so far. */
struct client {
    int fd;                   /* its socket, -1 before opening or once lost */
    bool connecting;          /* connect() has not finished yet */
    char addr[ADDR_LEN];      /* its address as the server names it */
    char notice[NOTICE_LEN];  /* "[ADDR]ADDR is online" */
    size_t notice_len;        /* bytes in it */
    long last_notice;         /* whose join the last notice told, or -1 */
    unsigned long notices;    /* join notices received in order */
    long long last_notice_ns; /* when the last of them arrived */
    char partial[MAX_IN];     /* the start of a line whose end is to come */
    size_t partial_len;       /* bytes in it */
    bool skipping;            /* dropping a line too long to check */
};

/* What a sending client has sent, and what waits to leave. */
struct sender {
    unsigned long composed;  /* lines written into out so far */
    char out[SEND_CHUNK];    /* lines the socket has not taken yet */
    size_t out_len, out_off; /* bytes in it, and bytes of them sent */
    long long first_due_ns;  /* with -rate: when its first line is due */
};

/*
 * Latencies, counted in buckets fine enough to tell 1% apart, so that any
 * number of them takes the same memory. Values under 2 * HIST_SUB
 * microseconds have a bucket each; above that, every doubling of the value
 * is cut into HIST_SUB buckets.
 */
#define HIST_SUB_BITS 7
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct histogram {
    unsigned long long count[HIST_BUCKETS];
    unsigned long long total;
    long long max_us;
};

/* What the run has seen. */
struct tally {
    size_t connected, lost_clients;
    long long first_connect_ns, last_connected_ns, joins_drained_ns;
    unsigned long long notices, notices_expected, notices_damaged;
    struct histogram join_wait; /* per client: last connect to all notices */
    unsigned long long sent, delivered, damaged, deliveries_expected;
    long long first_send_ns, last_delivery_ns;
    struct histogram latency; /* per delivery: send to receipt */
    long long last_news_ns;   /* when bytes last moved either way */
    char first_unexpected[SHOWN_LEN];
    char first_loss[SHOWN_LEN]; /* why the first lost client went */
    char gave_up[SHOWN_LEN];    /* why a phase ended before it was done */
};

/* What the server's /proc files told; -1 where they told nothing. */
struct server_usage {
    long peak_rss_kb, rss_kb, drained_rss_kb;
    double cpu_s, idle_cpu_s;
    double busy_cpu_s;         /* CPU time when last seen growing */
    long long busy_checked_ns; /* and when it was last looked at */
};

struct options {
    const char *ip, *port;
    long clients, senders, lines, rate, size, idle, pid, timeout, settle;
};

enum phase { JOINING, SENDING, IDLING };

static struct options opt = {
    .ip = DEFAULT_IP,
    .port = DEFAULT_PORT,
    .clients = DEFAULT_CLIENTS,
    .size = DEFAULT_SIZE,
    .timeout = DEFAULT_TIMEOUT,
    .settle = DEFAULT_SETTLE,
};
static struct addrinfo *server_ai; /* where the server listens */
static char server_addr[ADDR_LEN]; /* the same, as text for messages */
static struct client *clients;
static struct sender *senders;
static struct pollfd *pollfds;  /* slot i is clients[i] */
static long *next_arrival;      /* who joined after whom, or -1 */
static unsigned long *next_seq; /* [receiver * senders + sender] */
static unsigned short port_owner[PORT_COUNT]; /* client index + 1, or 0 */
static size_t opened; /* clients whose connect() began */
static enum phase phase = JOINING;
static struct tally tally;
static struct server_usage server_usage = {-1, -1, -1, -1, -1, -1, 0};
static char chunk[READ_CHUNK];

/* ---------------------------------------------------- Errors and the time */

/* Says what could not be done and why, and ends the program. */
static void die(const char *format, ...)
{
    va_list args;

    fprintf(stderr, "error: ");
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n");
    exit(1);
}

/*
 * Nanoseconds on the monotonic clock: setting the date does not move it,
 * and every process on the machine reads the same one, so a time written
 * into a line by one client can be compared with the time another one
 * receives it.
 */
static long long now_ns(void)
{
    struct timespec now;

    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
        die("cannot read the monotonic clock: %s", strerror(errno));
    return (long long)now.tv_sec * NS_PER_S + now.tv_nsec;
}

static double seconds(long long ns)
{
    return (double)ns / NS_PER_S;
}

/* ----------------------------------------------------------- The options */

static void usage_text(FILE *out)
{
    fprintf(
        out,
        "usage: loadgen [-ip ADDR] [-port PORT] [-clients N] [-senders S]\n"
        "               [-lines M] [-rate R] [-size BYTES] [-idle SECONDS]\n"
        "               [-pid PID] [-timeout SECONDS] [-settle SECONDS]\n"
        "  -ip ADDR        the server's address (default %s)\n"
        "  -port PORT      the server's port (default %s)\n"
        "  -clients N      clients to connect at once (default %d)\n"
        "  -senders S      how many of them send lines (default 0)\n"
        "  -lines M        lines each sender sends (default 0)\n"
        "  -rate R         lines per second per sender; 0, the default:\n"
        "                  as fast as the server takes them\n"
        "  -size BYTES     bytes of text per line, %d to %d (default %d)\n"
        "  -idle SECONDS   then stay connected in silence that long\n"
        "  -pid PID        the server's process: read its memory and CPU\n"
        "                  time in /proc/PID\n"
        "  -timeout SECONDS  give up on the joins, or on the lines, after\n"
        "                  that long (default %d)\n"
        "  -settle SECONDS   give up once nothing has arrived, and the\n"
        "                  server has done no work, for that long (default "
        "%d)\n",
        DEFAULT_IP, DEFAULT_PORT, DEFAULT_CLIENTS, MIN_SIZE, MAX_SIZE,
        DEFAULT_SIZE, DEFAULT_TIMEOUT, DEFAULT_SETTLE);
}

/* Reports a mistake on the command line and exits with status 2. */
static void usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "error: %s %s\n", what, arg);
    usage_text(stderr);
    exit(2);
}

/*
 * If argv[*i] is the option -NAME (or --NAME), returns its value, taken
 * from "-NAME=VALUE" or else from the next argument, as the server does.
 * Returns NULL if argv[*i] is not that option.
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

/* A whole number from min to max, or a usage error naming the option. */
static long number_option(const char *text, long min, long max,
                          const char *name)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min ||
        value > max) {
        char what[80];

        snprintf(what, sizeof what, "invalid %s (use %ld to %ld):", name, min,
                 max);
        usage_error(what, text);
    }
    return value;
}

/* The options that take a number, with their names and ranges. */
struct number_option {
    const char *name;
    long *value;
    long min, max;
};

static void parse_options(int argc, char **argv)
{
    struct number_option numbers[] = {
        {"clients", &opt.clients, 1, MAX_CLIENTS},
        {"senders", &opt.senders, 0, MAX_CLIENTS},
        {"lines", &opt.lines, 0, MAX_LINES},
        {"rate", &opt.rate, 0, MAX_RATE},
        {"size", &opt.size, MIN_SIZE, MAX_SIZE},
        {"idle", &opt.idle, 0, MAX_SECONDS},
        {"pid", &opt.pid, 1, INT_MAX},
        {"timeout", &opt.timeout, 1, MAX_SECONDS},
        {"settle", &opt.settle, 1, MAX_SECONDS},
    };
    size_t count = sizeof numbers / sizeof numbers[0];

    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        size_t n = 0;

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_text(stdout);
            exit(0);
        } else if ((value = option_value(argc, argv, &i, "ip"))) {
            opt.ip = value;
            continue;
        } else if ((value = option_value(argc, argv, &i, "port"))) {
            opt.port = value;
            continue;
        }
        while (n < count &&
               !(value = option_value(argc, argv, &i, numbers[n].name)))
            n++;
        if (n == count)
            usage_error("unknown option", argv[i]);
        *numbers[n].value = number_option(value, numbers[n].min, numbers[n].max,
                                          numbers[n].name);
    }
    if (opt.senders > opt.clients)
        usage_error("more senders than clients:", "use -senders <= -clients");
}

/* ------------------------------------------------------------- Addresses */

/* Writes "host:port", with brackets around an IPv6 host, as the server. */
static void join_host_port(const char *host, const char *port, char *out,
                           size_t size)
{
    const char *format = strchr(host, ':') ? "[%s]:%s" : "%s:%s";

    snprintf(out, size, format, host, port);
}

/* Finds the server's socket address from -ip and -port. */
static void resolve_server(void)
{
    struct addrinfo hints;
    int err;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    join_host_port(opt.ip, opt.port, server_addr, sizeof server_addr);
    err = getaddrinfo(opt.ip, opt.port, &hints, &server_ai);
    if (err != 0)
        die("cannot connect to %s: %s", server_addr, gai_strerror(err));
}

/*
 * Learns the address the server will call client c by: the local end of its
 * socket, in the server's format. Its port alone tells our clients apart,
 * so port_owner maps it back to the client.
 */
static void learn_own_address(size_t i)
{
    struct client *c = &clients[i];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[ADDR_LEN], port[sizeof "65535"];
    int err;

    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0)
        die("cannot learn the address of client %zu: %s", i + 1,
            strerror(errno));
    err = getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port,
                      sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    if (err != 0)
        die("cannot learn the address of client %zu: %s", i + 1,
            gai_strerror(err));
    join_host_port(host, port, c->addr, sizeof c->addr);
    c->notice_len = (size_t)snprintf(c->notice, sizeof c->notice,
                                     "[%s]%s is online", c->addr, c->addr);
    port_owner[atoi(port)] = (unsigned short)(i + 1);
}

/* ------------------------------------------------------------ Descriptors */

/*
 * Raises the soft limit on open descriptors to what the clients need: it
 * is often 1024, while the hard limit, the most an ordinary user may ask
 * for, is often far higher.
 */
static void raise_fd_limit(void)
{
    struct rlimit lim;
    rlim_t need = (rlim_t)opt.clients + SPARE_FDS;

    if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
        die("cannot read the limit on open descriptors: %s", strerror(errno));
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= need)
        return;
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need)
        die("cannot open %ld clients: they need %llu descriptors, and the "
            "hard limit is %llu (ulimit -Hn); raise it as root (ulimit -Hn, "
            "or nofile in /etc/security/limits.conf) or use fewer clients",
            opt.clients, (unsigned long long)need,
            (unsigned long long)lim.rlim_max);
    lim.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
        die("cannot raise the limit on open descriptors to %llu: %s",
            (unsigned long long)need, strerror(errno));
}

/* -------------------------------------------------- The server's usage */

/*
 * Reads the server's resident memory and its peak from /proc/PID/status,
 * in kB. Systems without /proc leave them at -1, shown as "n/a".
 */
static void read_server_memory(void)
{
    char path[64], line[256];
    FILE *f;

    if (opt.pid == 0)
        return;
    snprintf(path, sizeof path, "/proc/%ld/status", opt.pid);
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            server_usage.rss_kb = atol(line + 6);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            server_usage.peak_rss_kb = atol(line + 6);
    }
    fclose(f);
}

/*
 * The CPU time the server has used, user and system, in seconds, from
 * /proc/PID/stat; -1 if there is no such file. The fields are counted
 * after the ")" that ends the program's name, which may hold spaces.
 */
static double server_cpu_seconds(void)
{
    char path[64], line[1024];
    unsigned long long user_ticks, system_ticks;
    long ticks_per_s = sysconf(_SC_CLK_TCK);
    const char *after_name;
    FILE *f;
    bool read_ok;

    if (opt.pid == 0 || ticks_per_s <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", opt.pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    read_ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    after_name = read_ok ? strrchr(line, ')') : NULL;
    /* Fields 14 and 15 of the file: utime and stime, in clock ticks. */
    if (!after_name || sscanf(after_name + 1,
                              " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                              "%*s %llu %llu",
                              &user_ticks, &system_ticks) != 2)
        return -1;
    return (double)(user_ticks + system_ticks) / (double)ticks_per_s;
}

/* ------------------------------------------------------------ Histograms */

/* The position of the highest bit set in v, v > 0. */
static unsigned floor_log2(uint64_t v)
{
    unsigned log = 0;

    for (unsigned step = 32; step > 0; step /= 2) {
        if (v >> step) {
            v >>= step;
            log += step;
        }
    }
    return log;
}

static size_t bucket_of(uint64_t us)
{
    unsigned shift;

    if (us < 2 * HIST_SUB)
        return (size_t)us;
    shift = floor_log2(us) - HIST_SUB_BITS;
    return (size_t)(shift + 1) * HIST_SUB + (size_t)((us >> shift) - HIST_SUB);
}

/* The highest value that falls into bucket b. */
static long long bucket_top(size_t b)
{
    unsigned shift;

    if (b < 2 * HIST_SUB)
        return (long long)b;
    shift = (unsigned)(b / HIST_SUB - 1);
    return (long long)((((uint64_t)(b % HIST_SUB + HIST_SUB) + 1) << shift) -
                       1);
}

static void histogram_add(struct histogram *h, long long ns)
{
    long long us = ns > 0 ? ns / NS_PER_US : 0;

    h->count[bucket_of((uint64_t)us)]++;
    h->total++;
    if (us > h->max_us)
        h->max_us = us;
}

/* The value under which a fraction of all values lie, in microseconds. */
static long long histogram_percentile(const struct histogram *h,
                                      double fraction)
{
    unsigned long long rank = (unsigned long long)(fraction * h->total);
    unsigned long long seen = 0;

    if (rank == 0)
        rank = 1;
    for (size_t b = 0; b < HIST_BUCKETS; b++) {
        seen += h->count[b];
        if (seen >= rank)
            return bucket_top(b) < h->max_us ? bucket_top(b) : h->max_us;
    }
    return h->max_us;
}

/* --------------------------------------------------------------- Clients */

/* Makes reads and writes on fd return at once, with EAGAIN, if they
 * would have to wait: the loop must never stop for one client. */
static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Says why a socket for client i could not be opened, and what to do. */
static void die_opening(size_t i, const char *what)
{
    int err = errno;
    const char *hint = "";

    if (err == EMFILE || err == ENFILE)
        hint = " (raise the limit on open descriptors, or use fewer clients)";
    else if (err == EADDRNOTAVAIL)
        hint = " (the machine has no local port left; use fewer clients)";
    die("cannot %s %s: %s (client %zu of %ld)%s", what, server_addr,
        strerror(err), i + 1, opt.clients, hint);
}

/*
 * Opens client i's socket and starts connecting it. On a non-blocking
 * socket connect() returns at once; the loop learns from poll() when the
 * connection is made.
 */
static void open_client(size_t i, long long now)
{
    struct client *c = &clients[i];

    c->fd = socket(server_ai->ai_family, server_ai->ai_socktype,
                   server_ai->ai_protocol);
    if (c->fd < 0)
        die_opening(i, "open a socket to");
    if (set_nonblocking(c->fd) < 0)
        die_opening(i, "set up a socket to");
    if (connect(c->fd, server_ai->ai_addr, server_ai->ai_addrlen) < 0 &&
        errno != EINPROGRESS && errno != EINTR)
        die_opening(i, "connect to");
    c->connecting = true;
    c->last_notice = -1;
    learn_own_address(i);
    if (i == 0)
        tally.first_connect_ns = now;
}

/* Starts the next batch of connections, if some are left to open. */
static void open_more_clients(long long now)
{
    size_t batch_end = opened + CONNECT_BATCH;

    while (opened < (size_t)opt.clients && opened < batch_end)
        open_client(opened++, now);
}

/* poll() says client i's connect() has finished: did it succeed? */
static void finish_connecting(size_t i, long long now)
{
    struct client *c = &clients[i];
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        errno = err;
        die_opening(i, "connect to");
    }
    c->connecting = false;
    tally.connected++;
    tally.last_connected_ns = now;
    tally.last_news_ns = now;
}

/* The server closed client i, or its socket failed: it is lost. */
static void lose_client(size_t i, const char *why)
{
    struct client *c = &clients[i];

    if (tally.lost_clients++ == 0)
        snprintf(tally.first_loss, sizeof tally.first_loss,
                 "client %zu (%s) %s", i + 1, c->addr, why);
    close(c->fd);
    c->fd = -1;
}

/* ------------------------------------------------------- Reading lines */

/* Keeps the first line nobody expected, to show it in the report. */
static void note_unexpected(const char *line, size_t len)
{
    if (tally.first_unexpected[0] == '\0')
        snprintf(tally.first_unexpected, sizeof tally.first_unexpected, "%.*s",
                 (int)len, line);
}

/*
 * Finds which of our clients the address at the start of text names, and
 * its length, up to the "]" that closes it. The address may hold brackets
 * of its own, "[::1]:50312", so it ends at the first "]" that is not
 * followed by ":". Returns the client's index, or -1.
 */
static long client_named(const char *text, size_t len, size_t *addr_len)
{
    const char *end = text, *stop = text + len, *digits;
    long port = 0, i;

    while (end < stop && !(*end == ']' && (end + 1 == stop || end[1] != ':')))
        end++;
    if (end == stop)
        return -1;
    *addr_len = (size_t)(end - text);
    /* The port: the digits between the last ':' and the "]". */
    digits = end;
    while (digits > text && end - digits < PORT_DIGITS && digits[-1] >= '0' &&
           digits[-1] <= '9')
        digits--;
    if (digits == end || digits == text || digits[-1] != ':')
        return -1;
    for (const char *p = digits; p < end; p++)
        port = port * 10 + (*p - '0');
    if (port >= PORT_COUNT || port_owner[port] == 0)
        return -1;
    i = (long)port_owner[port] - 1;
    if (strlen(clients[i].addr) != *addr_len ||
        memcmp(clients[i].addr, text, *addr_len) != 0)
        return -1;
    return i;
}

/* Client c has received, in order, the notice that client who joined. */
static void count_notice(struct client *c, long who, long long now)
{
    c->last_notice = who;
    c->notices++;
    c->last_notice_ns = now;
    tally.notices++;
    if (tally.notices == tally.notices_expected)
        tally.joins_drained_ns = now;
}

/* The notice client c is due next, or -1 when the order is not known. */
static long notice_due(const struct client *c)
{
    if (c->last_notice < 0)
        return c - clients;
    return next_arrival[c->last_notice];
}

/* Whether who joined a few places after client from, as far as the order
 * of arrival is known: then the notices between them were lost. */
static bool joined_soon_after(long from, long who)
{
    long x = next_arrival[from];

    for (int steps = 0; x >= 0 && steps < MAX_NOTICE_GAP; steps++) {
        if (x == who)
            return true;
        x = next_arrival[x];
    }
    return false;
}

/*
 * A join notice that is not the one client c was due. Each client hears
 * its own join first, then those of everyone who came after it, in the
 * server's order; the first client to hear who came after whom teaches it
 * to the others. A notice found a little further along that order means
 * the ones between were lost; one that breaks the order is damaged. Either
 * way, the client goes on from the notice it got.
 */
static void check_notice(struct client *c, long who, long long now)
{
    long due = notice_due(c);

    if (due < 0 && who != c->last_notice) {
        next_arrival[c->last_notice] = who;
        count_notice(c, who, now);
    } else if (due >= 0 && joined_soon_after(due, who)) {
        count_notice(c, who, now);
    } else {
        tally.notices_damaged++;
        c->last_notice = who;
    }
}

/* A line that is wrong: it counts against the notices while the clients
 * join, against the lines afterwards. */
static void count_damage(const char *line, size_t len)
{
    note_unexpected(line, len);
    if (phase == JOINING)
        tally.notices_damaged++;
    else
        tally.damaged++;
}

/* Reads a number in decimal followed by a space; false if there is none. */
static bool parse_field(const char **p, const char *end, long long *value)
{
    const char *start = *p;

    *value = 0;
    while (*p < end && **p >= '0' && **p <= '9' && *value < LLONG_MAX / 10)
        *value = *value * 10 + (*(*p)++ - '0');
    if (*p == start || *p == end || **p != ' ')
        return false;
    (*p)++;
    return true;
}

/* The byte at position pos of the padding of line seq. */
static char pad_byte(unsigned long seq, size_t pos)
{
    return (char)('a' + (seq + pos) % 26);
}

/*
 * Checks the text of a line as a sender wrote it: "SENDER SEQ TIME "
 * padded to -size bytes with letters that depend on SEQ. Returns false if
 * it is not such a line.
 */
static bool parse_payload(const char *text, size_t len, long long *sender,
                          long long *seq, long long *sent_ns)
{
    const char *p = text, *end = text + len;

    if (len != (size_t)opt.size || !parse_field(&p, end, sender) ||
        !parse_field(&p, end, seq) || !parse_field(&p, end, sent_ns))
        return false;
    for (size_t pos = (size_t)(p - text); pos < len; pos++)
        if (text[pos] != pad_byte((unsigned long)*seq, pos))
            return false;
    return *sender < opt.senders && *seq < opt.lines;
}

/*
 * A line a sender sent, received by client c: "[ADDR]ADDR: TEXT", where
 * ADDR is the sender's. Each sender's lines must come in order, each once.
 */
static void check_message(struct client *c, long from, const char *text,
                          size_t len, long long now)
{
    long long sender, seq, sent_ns;
    unsigned long *expected;

    if (!parse_payload(text, len, &sender, &seq, &sent_ns) || sender != from) {
        count_damage(text, len);
        return;
    }
    expected = &next_seq[(size_t)(c - clients) * opt.senders + sender];
    if ((unsigned long)seq < *expected) {
        tally.damaged++; /* a second copy, or out of order */
        return;
    }
    *expected = (unsigned long)seq + 1;
    tally.delivered++;
    tally.last_delivery_ns = now;
    histogram_add(&tally.latency, now - sent_ns);
}

/* Client c received a line that is not the notice it was due. */
static void check_other_line(struct client *c, const char *line, size_t len,
                             long long now)
{
    size_t addr_len, rest;
    long who = -1;
    const char *name, *tail;

    if (len > 0 && line[0] == '[')
        who = client_named(line + 1, len - 1, &addr_len);
    if (who < 0) {
        count_damage(line, len);
        return;
    }
    /* Nobody renames, so the name after the address is the address. */
    name = line + 1 + addr_len + 1;
    rest = len - (size_t)(name - line);
    tail = name + addr_len;
    if (rest >= addr_len && memcmp(name, line + 1, addr_len) == 0) {
        if (rest - addr_len == strlen(" is online") &&
            memcmp(tail, " is online", rest - addr_len) == 0) {
            check_notice(c, who, now);
            return;
        }
        if (rest - addr_len >= 2 && memcmp(tail, ": ", 2) == 0) {
            check_message(c, who, tail + 2, rest - addr_len - 2, now);
            return;
        }
    }
    count_damage(line, len);
}

/*
 * One complete line for client c, without its LF. Most lines of the join
 * phase are the very notice the client is due, so that case is a single
 * comparison: with ten thousand clients they number fifty million.
 */
static void take_line(struct client *c, const char *line, size_t len,
                      long long now)
{
    long due = notice_due(c);

    if (due >= 0 && len == clients[due].notice_len &&
        memcmp(line, clients[due].notice, len) == 0)
        count_notice(c, due, now);
    else
        check_other_line(c, line, len, now);
}

/* Adds n bytes to the line client c has begun; a line too long to be one
 * of ours is counted as damaged and dropped up to its LF. */
static void keep_partial(struct client *c, const char *bytes, size_t n)
{
    if (c->skipping)
        return;
    if (n > sizeof c->partial - c->partial_len) {
        count_damage(c->partial, c->partial_len);
        c->skipping = true;
        c->partial_len = 0;
        return;
    }
    memcpy(c->partial + c->partial_len, bytes, n);
    c->partial_len += n;
}

/* Cuts n bytes received by client c into lines; the last one may be cut
 * short by the read and waits in c->partial for the rest. */
static void take_bytes(struct client *c, const char *bytes, size_t n,
                       long long now)
{
    const char *end = bytes + n;

    while (bytes < end) {
        const char *lf = memchr(bytes, '\n', (size_t)(end - bytes));

        if (!lf) {
            keep_partial(c, bytes, (size_t)(end - bytes));
            return;
        }
        if (c->partial_len > 0 || c->skipping) {
            keep_partial(c, bytes, (size_t)(lf - bytes));
            if (!c->skipping)
                take_line(c, c->partial, c->partial_len, now);
            c->partial_len = 0;
            c->skipping = false;
        } else {
            take_line(c, bytes, (size_t)(lf - bytes), now);
        }
        bytes = lf + 1;
    }
}

/*
 * Reads all that client i's socket holds, in large reads. A read that
 * does not fill the buffer has emptied the socket, so there is no need to
 * try again and be told EAGAIN.
 */
static void receive(size_t i)
{
    for (;;) {
        ssize_t n = read(clients[i].fd, chunk, sizeof chunk);

        if (n > 0) {
            long long now = now_ns();

            tally.last_news_ns = now;
            take_bytes(&clients[i], chunk, (size_t)n, now);
            if ((size_t)n < sizeof chunk)
                return;
        } else if (n == 0) {
            lose_client(i, "was disconnected by the server");
            return;
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                lose_client(i, strerror(errno));
            return;
        }
    }
}

/* ------------------------------------------------------- Sending lines */

/*
 * Appends to sender s's buffer the next line, stamped with the time now:
 * "SENDER SEQ TIME " and padding up to -size bytes, then LF.
 */
static void compose_line(struct sender *s, size_t index, long long now)
{
    char *line = s->out + s->out_len;
    int head = snprintf(line, (size_t)opt.size + 1, "%zu %lu %lld ", index,
                        s->composed, now);

    for (size_t pos = (size_t)head; pos < (size_t)opt.size; pos++)
        line[pos] = pad_byte(s->composed, pos);
    line[opt.size] = '\n';
    s->out_len += (size_t)opt.size + 1;
    s->composed++;
    tally.sent++;
    if (tally.first_send_ns == 0)
        tally.first_send_ns = now;
}

/* How many of sender index's lines should have left by now. */
static unsigned long lines_due(size_t index, long long now)
{
    const struct sender *s = &senders[index];
    long long interval;

    if (opt.rate == 0)
        return (unsigned long)opt.lines;
    interval = NS_PER_S / opt.rate;
    if (now < s->first_due_ns)
        return 0;
    if ((now - s->first_due_ns) / interval >= opt.lines)
        return (unsigned long)opt.lines;
    return (unsigned long)((now - s->first_due_ns) / interval + 1);
}

/* Fills sender index's empty buffer with the lines due, as many as fit. */
static void compose_due_lines(size_t index, long long now)
{
    struct sender *s = &senders[index];
    unsigned long due = lines_due(index, now);

    if (s->out_off < s->out_len)
        return;
    s->out_len = s->out_off = 0;
    while (s->composed < due &&
           sizeof s->out - s->out_len >= (size_t)opt.size + 1)
        compose_line(s, index, now);
}

/*
 * Writes what the socket of sender index takes of its lines. They are
 * stamped with the time they are written, not the time the loop turn
 * began: reading every socket may have taken a while since.
 */
static void send_lines(size_t index)
{
    struct sender *s = &senders[index];
    long long now = now_ns();

    if (clients[index].fd < 0 || clients[index].connecting)
        return;
    compose_due_lines(index, now);
    while (s->out_off < s->out_len) {
        ssize_t n = write(clients[index].fd, s->out + s->out_off,
                          s->out_len - s->out_off);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                lose_client(index, strerror(errno));
            return;
        }
        s->out_off += (size_t)n;
        tally.last_news_ns = now;
        compose_due_lines(index, now);
    }
}

/* Whether sender index has lines it could write now. */
static bool has_lines_due(size_t index, long long now)
{
    const struct sender *s = &senders[index];

    return s->out_off < s->out_len || s->composed < lines_due(index, now);
}

/* When the next line of any sender is due, with -rate; else -1. */
static long long next_due_ns(void)
{
    long long interval, soonest = -1;

    if (opt.rate == 0)
        return -1;
    interval = NS_PER_S / opt.rate;
    for (long i = 0; i < opt.senders; i++) {
        const struct sender *s = &senders[i];
        long long due = s->first_due_ns + (long long)s->composed * interval;

        if (s->composed < (unsigned long)opt.lines &&
            (soonest < 0 || due < soonest))
            soonest = due;
    }
    return soonest;
}

/* ------------------------------------------------------------- The loop */

/* Fills pollfds with what the next poll() waits for. */
static void watch_list(long long now)
{
    for (size_t i = 0; i < opened; i++) {
        const struct client *c = &clients[i];
        bool sending =
            phase == SENDING && (long)i < opt.senders && has_lines_due(i, now);

        pollfds[i].fd = c->fd;
        pollfds[i].events = POLLIN;
        /* Ask whether a socket has room only when something is to be
         * written: an idle socket always has room, and poll() would
         * never sleep. */
        if (c->connecting || sending)
            pollfds[i].events |= POLLOUT;
    }
}

/*
 * How long poll() may sleep: not at all while clients are still to be
 * opened, and with -rate not past the next line due, rounded up so as not
 * to wake a little early and find nothing due yet.
 */
static int poll_wait_ms(long long now)
{
    long long due = phase == SENDING ? next_due_ns() : -1;
    long long wait;

    if (opened < (size_t)opt.clients)
        return 0;
    if (due < 0)
        return MAX_WAIT_MS;
    if (due <= now)
        return 0;
    wait = (due - now + NS_PER_MS - 1) / NS_PER_MS;
    return wait < MAX_WAIT_MS ? (int)wait : MAX_WAIT_MS;
}

/*
 * One turn of the loop: opens the next clients, waits until a socket is
 * ready, then finishes connections, reads every socket that has something
 * and lets the senders write.
 */
static void loop_turn(void)
{
    long long now = now_ns();

    open_more_clients(now);
    watch_list(now);
    if (poll(pollfds, opened, poll_wait_ms(now)) < 0) {
        if (errno == EINTR)
            return;
        die("cannot wait for the sockets (poll): %s", strerror(errno));
    }
    now = now_ns();
    for (size_t i = 0; i < opened; i++) {
        short ready = pollfds[i].revents;

        if (clients[i].fd < 0 || ready == 0)
            continue;
        if (clients[i].connecting)
            finish_connecting(i, now);
        if (ready & (POLLIN | POLLHUP | POLLERR))
            receive(i);
    }
    if (phase == SENDING)
        for (long i = 0; i < opt.senders; i++)
            if (has_lines_due((size_t)i, now))
                send_lines((size_t)i);
}

/* ------------------------------------------------------------ The phases */

static bool joins_done(void)
{
    return tally.connected == (size_t)opt.clients &&
           tally.notices >= tally.notices_expected;
}

static bool lines_done(void)
{
    return tally.delivered >= tally.deliveries_expected;
}

/* Whether there is nothing left for us to do but wait for the server. */
static bool all_sent(void)
{
    for (long i = 0; phase == SENDING && i < opt.senders; i++)
        if (senders[i].composed < (unsigned long)opt.lines ||
            senders[i].out_off < senders[i].out_len)
            return false;
    return opened == (size_t)opt.clients;
}

/*
 * A server that is still at work counts as news: one that queues every
 * notice before it sends any may be silent for many seconds, and must not
 * be taken for one that lost them. Its CPU time is looked at now and then.
 */
static void watch_server_work(long long now)
{
    double cpu;

    if (now - server_usage.busy_checked_ns < MAX_WAIT_MS * NS_PER_MS)
        return;
    server_usage.busy_checked_ns = now;
    cpu = server_cpu_seconds();
    if (cpu > server_usage.busy_cpu_s && server_usage.busy_cpu_s >= 0)
        tally.last_news_ns = now;
    server_usage.busy_cpu_s = cpu;
}

/*
 * Turns the loop until done() says so. Gives up, returning false, after
 * -timeout seconds, or once all was sent and then for -settle seconds
 * nothing arrived and the server did no work.
 */
static bool run_until(bool (*done)(void), const char *what)
{
    long long start = now_ns(), now = start;
    const char *why = NULL;

    tally.last_news_ns = start;
    while (!done() && !why) {
        watch_server_work(now);
        if (now - start > opt.timeout * NS_PER_S)
            why = "it took longer than -timeout";
        else if (all_sent() && now - tally.last_news_ns > opt.settle * NS_PER_S)
            why = "for -settle seconds nothing arrived and the server did "
                  "no work";
        else
            loop_turn();
        now = now_ns();
    }
    if (why && tally.gave_up[0] == '\0')
        snprintf(tally.gave_up, sizeof tally.gave_up, "gave up on %s: %s", what,
                 why);
    return !why;
}

/* Connects every client and waits until each has heard every join it is
 * due: the first to arrive hears all N, the last only its own. */
static bool run_joins(void)
{
    unsigned long long n = (unsigned long long)opt.clients;
    bool done;

    tally.notices_expected = n * (n + 1) / 2;
    done = run_until(joins_done, "the joins");
    read_server_memory();
    server_usage.drained_rss_kb = server_usage.rss_kb;
    for (long i = 0; i < opt.clients; i++)
        histogram_add(&tally.join_wait,
                      clients[i].last_notice_ns - tally.last_connected_ns);
    return done;
}

/* The senders send their lines; every client, senders too, should receive
 * every one of them. With -rate, the senders take turns evenly. */
static bool run_lines(void)
{
    long long start = now_ns();

    if (opt.senders == 0 || opt.lines == 0)
        return true;
    tally.deliveries_expected = (unsigned long long)opt.senders *
                                (unsigned long long)opt.lines *
                                (unsigned long long)opt.clients;
    for (long i = 0; i < opt.senders && opt.rate > 0; i++)
        senders[i].first_due_ns = start + NS_PER_S / opt.rate * i / opt.senders;
    phase = SENDING;
    return run_until(lines_done, "the lines");
}

/* Stays connected without a word for -idle seconds, and notes the CPU
 * time the server spent meanwhile: a server at rest should spend none. */
static void run_idle(void)
{
    double cpu_before = server_cpu_seconds(), cpu_after;
    long long end = now_ns() + opt.idle * NS_PER_S;

    if (opt.idle == 0)
        return;
    phase = IDLING;
    while (now_ns() < end)
        loop_turn();
    cpu_after = server_cpu_seconds();
    if (cpu_before >= 0 && cpu_after >= 0)
        server_usage.idle_cpu_s = cpu_after - cpu_before;
}

/* ------------------------------------------------------------ The report */

/* What the report says, worked out from the tally; -1 where there is
 * nothing to say. */
struct figures {
    double connect_s, join_s, notices_per_s;
    unsigned long long notices_lost, lost;
    double send_s, deliveries_per_s;
    double join_ms[3], latency_ms[3]; /* p50, p99 and max */
    double loadgen_cpu_s;
};

/* What neither arrived intact nor arrived damaged: a line that arrived
 * twice must not hide one that never came, as far as counts can tell. */
static unsigned long long missing(unsigned long long expected,
                                  unsigned long long intact,
                                  unsigned long long damaged)
{
    return expected > intact + damaged ? expected - intact - damaged : 0;
}

/* The median, the 99th percentile and the maximum, in milliseconds. */
static void percentiles_ms(const struct histogram *h, double out[3])
{
    out[0] = h->total ? histogram_percentile(h, 0.50) / 1e3 : -1;
    out[1] = h->total ? histogram_percentile(h, 0.99) / 1e3 : -1;
    out[2] = h->total ? h->max_us / 1e3 : -1;
}

/* Per second over ns nanoseconds; -1 when there is no span of time. */
static double per_second(unsigned long long count, long long ns)
{
    return ns > 0 ? (double)count / seconds(ns) : -1;
}

/* The CPU time this program has used, in seconds. */
static double own_cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void work_out(struct figures *f)
{
    bool drained = tally.joins_drained_ns > 0;
    bool delivered = tally.delivered > 0;
    long long send_span = tally.last_delivery_ns - tally.first_send_ns;

    f->connect_s = seconds(tally.last_connected_ns - tally.first_connect_ns);
    f->join_s = drained
                    ? seconds(tally.joins_drained_ns - tally.last_connected_ns)
                    : -1;
    f->notices_per_s =
        drained ? per_second(tally.notices,
                             tally.joins_drained_ns - tally.first_connect_ns)
                : -1;
    f->notices_lost =
        missing(tally.notices_expected, tally.notices, tally.notices_damaged);
    f->lost =
        missing(tally.deliveries_expected, tally.delivered, tally.damaged);
    f->send_s = delivered ? seconds(send_span) : -1;
    f->deliveries_per_s =
        delivered ? per_second(tally.delivered, send_span) : -1;
    if (drained)
        percentiles_ms(&tally.join_wait, f->join_ms);
    else
        f->join_ms[0] = f->join_ms[1] = f->join_ms[2] = -1;
    percentiles_ms(&tally.latency, f->latency_ms);
    f->loadgen_cpu_s = own_cpu_seconds();
}

/* Writes "12.3 MB", or "n/a", for an amount of memory in kB. */
static const char *megabytes(long kb, char *out, size_t size)
{
    if (kb < 0)
        snprintf(out, size, "n/a");
    else
        snprintf(out, size, "%.1f MB", kb / 1024.0);
    return out;
}

static void print_joins(const struct figures *f)
{
    printf("joins:  %zu of %ld clients connected in %.3f s; %llu of %llu "
           "notices arrived, %llu lost, %llu damaged",
           tally.connected, opt.clients, f->connect_s, tally.notices,
           tally.notices_expected, f->notices_lost, tally.notices_damaged);
    if (f->join_s < 0) {
        printf("\n");
        return;
    }
    printf(", all %.3f s after the last connect\n", f->join_s);
    printf("        each client had all its notices %.2f ms after the last "
           "connect (p50), %.2f ms (p99), %.2f ms (max)\n",
           f->join_ms[0], f->join_ms[1], f->join_ms[2]);
}

static void print_lines(const struct figures *f)
{
    if (tally.deliveries_expected == 0)
        return;
    printf("lines:  %ld x %ld lines (senders x lines) of %ld bytes, %s: "
           "%llu of %llu deliveries, %llu lost, %llu damaged",
           opt.senders, opt.lines, opt.size,
           opt.rate ? "at a steady rate" : "as fast as possible",
           tally.delivered, tally.deliveries_expected, f->lost, tally.damaged);
    if (f->send_s >= 0)
        printf(", in %.3f s (%.0f/s)\n", f->send_s, f->deliveries_per_s);
    else
        printf("\n");
    if (f->latency_ms[0] >= 0)
        printf("        latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               f->latency_ms[0], f->latency_ms[1], f->latency_ms[2]);
}

static void print_server(void)
{
    char peak[32], drained[32], final[32];

    printf("server: peak RSS %s, %s after the joins, %s at the end",
           megabytes(server_usage.peak_rss_kb, peak, sizeof peak),
           megabytes(server_usage.drained_rss_kb, drained, sizeof drained),
           megabytes(server_usage.rss_kb, final, sizeof final));
    if (server_usage.idle_cpu_s >= 0)
        printf("; %.2f s of CPU in %ld s idle", server_usage.idle_cpu_s,
               opt.idle);
    printf("\n");
    if (tally.gave_up[0] != '\0')
        printf("ended:  %s\n", tally.gave_up);
    if (tally.lost_clients > 0)
        printf("lost:   %zu clients; the first: %s\n", tally.lost_clients,
               tally.first_loss);
    if (tally.first_unexpected[0] != '\0')
        printf("odd:    the first unexpected line: %s\n",
               tally.first_unexpected);
}

/* Prints " key=value", or " key=n/a" for a value below zero. */
static void print_pair(const char *key, double value, const char *format)
{
    printf(" %s=", key);
    if (value < 0)
        printf("n/a");
    else
        printf(format, value);
}

/* The same figures again, on one line of key=value pairs for scripts. */
static void print_result_line(const struct figures *f, bool ok)
{
    printf("result clients=%ld senders=%ld lines=%ld size=%ld rate=%ld "
           "connected=%zu lost_clients=%zu",
           opt.clients, opt.senders, opt.lines, opt.size, opt.rate,
           tally.connected, tally.lost_clients);
    print_pair("connect_s", f->connect_s, "%.3f");
    print_pair("join_s", f->join_s, "%.3f");
    printf(" notices=%llu notices_expected=%llu notices_lost=%llu "
           "notices_damaged=%llu",
           tally.notices, tally.notices_expected, f->notices_lost,
           tally.notices_damaged);
    print_pair("notices_per_s", f->notices_per_s, "%.0f");
    print_pair("join_p50_ms", f->join_ms[0], "%.3f");
    print_pair("join_p99_ms", f->join_ms[1], "%.3f");
    print_pair("join_max_ms", f->join_ms[2], "%.3f");
    printf(" sent=%llu deliveries=%llu delivered=%llu lost=%llu damaged=%llu",
           tally.sent, tally.deliveries_expected, tally.delivered, f->lost,
           tally.damaged);
    print_pair("send_s", f->send_s, "%.3f");
    print_pair("deliveries_per_s", f->deliveries_per_s, "%.0f");
    print_pair("p50_ms", f->latency_ms[0], "%.3f");
    print_pair("p99_ms", f->latency_ms[1], "%.3f");
    print_pair("max_ms", f->latency_ms[2], "%.3f");
    printf(" idle_s=%ld", opt.idle);
    print_pair("idle_cpu_s", server_usage.idle_cpu_s, "%.2f");
    print_pair("peak_rss_kb", server_usage.peak_rss_kb, "%.0f");
    print_pair("drained_rss_kb", server_usage.drained_rss_kb, "%.0f");
    print_pair("final_rss_kb", server_usage.rss_kb, "%.0f");
    print_pair("server_cpu_s", server_usage.cpu_s, "%.2f");
    print_pair("loadgen_cpu_s", f->loadgen_cpu_s, "%.2f");
    printf(" status=%s\n", ok ? "ok" : "failed");
}

/* ------------------------------------------------------------------ Main */

/* Allocates what the run keeps per client and per sender. */
static void allocate(void)
{
    size_t n = (size_t)opt.clients, s = (size_t)opt.senders;

    clients = calloc(n, sizeof *clients);
    pollfds = calloc(n, sizeof *pollfds);
    next_arrival = malloc(n * sizeof *next_arrival);
    senders = calloc(s ? s : 1, sizeof *senders);
    next_seq = calloc(s ? n * s : 1, sizeof *next_seq);
    if (!clients || !pollfds || !next_arrival || !senders || !next_seq)
        die("cannot allocate memory for %zu clients", n);
    for (size_t i = 0; i < n; i++) {
        clients[i].fd = -1;
        next_arrival[i] = -1;
    }
}

/* Closes every connection and frees what allocate() took. */
static void release(void)
{
    for (size_t i = 0; i < opened; i++)
        if (clients[i].fd >= 0)
            close(clients[i].fd);
    free(clients);
    free(pollfds);
    free(next_arrival);
    free(senders);
    free(next_seq);
    freeaddrinfo(server_ai);
}

/* Whether everything arrived, once and intact, and nobody was lost. */
static bool run_succeeded(const struct figures *f, bool joined, bool sent)
{
    return joined && sent && f->notices_lost == 0 &&
           tally.notices_damaged == 0 && f->lost == 0 && tally.damaged == 0 &&
           tally.lost_clients == 0;
}

/*
 * Connects the clients, has the senders send and then everybody rest, as
 * the options say, and reports. Exits with 0 if every notice and every
 * line arrived as it should, 1 if not or on an error, 2 on a usage error.
 */
int main(int argc, char **argv)
{
    struct sigaction ignore;
    struct figures figures;
    bool joined, sent, ok;

    parse_options(argc, argv);
    raise_fd_limit();
    /* A write to a socket the server has closed raises SIGPIPE, which
     * would end the run; ignored, it becomes an EPIPE error instead. */
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &ignore, NULL) < 0)
        die("cannot ignore SIGPIPE: %s", strerror(errno));
    resolve_server();
    allocate();

    joined = run_joins();
    sent = run_lines();
    run_idle();
    read_server_memory();
    server_usage.cpu_s = server_cpu_seconds();

    work_out(&figures);
    ok = run_succeeded(&figures, joined, sent);
    printf("loadgen: %ld clients of %s\n", opt.clients, server_addr);
    print_joins(&figures);
    print_lines(&figures);
    print_server();
    print_result_line(&figures, ok);
    release();
    return ok ? 0 : 1;
}
