/*
 * model.c - a randomized, seeded test of the chat server against a model
 * of its protocol.
 *
 *   model [-ip ADDR] [-port PORT] [-seed N] [-clients N] [-ops N]
 *         [-seconds S] [-v]
 *
 * It connects to a server that is already running, with nobody else on it,
 * and plays many clients at once. They join over time (at most -clients
 * online at once), and at random send public messages, who, rename|NAME and
 * to|NAME|TEXT, right or wrong; empty, CRLF, dirty and overlong lines; a
 * line cut into several writes, several lines in one write; and they leave,
 * by closing or by a half-close after a last line. Every line any client
 * receives is checked against a model of the protocol (README.md, and the
 * READMEs of steps 3 to 7). After -ops operations or -seconds seconds,
 * whichever comes first, every client leaves, and the test passes once all
 * has added up. -v prints each operation as it starts.
 *
 * The seed is printed first. The same seed replays the same choices; how
 * the clients' lines interleave on the server may differ from run to run.
 * Exit status: 0 when every check passed; 1 when one failed, after a report
 * on stderr of the seed, the operation, the client that expected what and
 * what arrived, and the command that replays it; 2 for a usage error or a
 * test that could not run at all.
 *
 * Nobody can know in advance in which order the server will take the lines
 * of different clients, so the model checks what the protocol guarantees:
 * - One order. Client 0, the watcher, joins first and stays to the end, so
 *   it hears every broadcast: arrivals, public messages, renames and
 *   departures. What it hears is the reference order, and every other
 *   client must hear exactly a stretch of it, from its own arrival until it
 *   leaves: nothing missing, nothing added, nothing moved.
 * - Every broadcast is checked as it joins the reference order: arrivals in
 *   the order the clients connected, messages and departures from users who
 *   are online under the name they carry, a new name only when it is valid
 *   and nobody else online has it, one departure for each client that left.
 * - One operation at a time. A client sends its next operation (a line, or
 *   a few) only when the last one has been answered, so it knows which line
 *   each echo or answer belongs to, and that they come in the order sent.
 * - What depends on the others is settled by what the server said. Whether
 *   a rename finds its name free, or to|NAME finds NAME online, depends on
 *   what others did a moment before. The model accepts either answer, notes
 *   where it came in the reference order, and checks it against the state
 *   of the chat at that point: who was online then, under which names.
 *
 * It is test code, written for POSIX and libc alone, like the server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* -------------------------------------------------------------- Settings */

#define DEFAULT_IP      "127.0.0.1"
#define DEFAULT_PORT    "8888"
#define DEFAULT_CLIENTS 20   /* online at once, the watcher included */
#define DEFAULT_OPS     2000 /* operations, all clients together */
#define DEFAULT_SECONDS 5    /* to start operations in */
#define MAX_CLIENTS     1000
#define MAX_OPS         10000000
#define MAX_SECONDS     3600
#define NEW_SEED_LIMIT  1000000000 /* a seed made up is below, to be short */

/* The protocol, word for word as the steps' READMEs give it. */
#define MAX_LINE     4096 /* bytes a line may hold before its LF */
#define MAX_NAME     32   /* bytes in a name */
#define ERR_TOO_LONG "error: line too long (max 4096 bytes)"
#define ERR_USAGE    "error: usage: to|NAME|TEXT"
#define ERR_TAKEN    "error: name \"%s\" is already taken"
#define ERR_NO_USER  "error: no user named \"%s\""
#define ERR_INVALID_NAME                                                       \
    "error: invalid name: use 1-32 bytes of UTF-8, no spaces, no control or "  \
    "invisible characters, no '|'"

#define WAIT_MS      10000 /* the longest wait for anything expected */
#define MAX_PAUSE_MS 5     /* between the pieces of a cut operation */
#define TURN_MS      100   /* the loop looks at the clock this often */

#define ADDR_LEN       80               /* "[IPv6%scope]:port" and its NUL */
#define HEARD_MAX      (MAX_LINE + 512) /* the longest line the server sends */
#define READ_CHUNK     65536            /* bytes taken from a socket at once */
#define READS_A_TURN   16               /* reads from one socket in a turn */
#define MAX_SEVERAL    4                /* lines chosen for "several at once" */
#define MAX_WORDS      4                /* in a message */
#define MAX_LINES      (2 * MAX_SEVERAL + 1) /* lines in one operation */
#define MAX_CUTS       5   /* an operation goes in 6 writes at most */
#define RECENT_LINES   6   /* lines a client keeps for a report */
#define SHOW_BYTES     100 /* of a line, shown in a report */
#define SHOW_SLOTS     4   /* lines shown in one message at most */
#define PORT_COUNT     65536
#define MAX_PORT_TRIES 1000     /* sockets opened to find a port not used yet */
#define NONE           SIZE_MAX /* no place in the reference order (yet) */

#define HALF_LINE "half a line" /* sent without an LF by some leavers */

/* Odds, in percent. */
#define CUT_PERCENT   30 /* an operation is sent in several writes */
#define LIKE_PERCENT  25 /* a public message looks like a command */
#define DIRTY_PERCENT 33 /* a public message has dirt between its words */
#define DIRT_PERCENT  20 /* a word of a private message has dirt before it */
#define CRLF_PERCENT  20 /* a line ends in CR LF */
#define TAIL_PERCENT  50 /* a leaver sends half a line before it goes */
#define EXACT_PERCENT 30 /* a long line has exactly MAX_LINE bytes */

#define EXIT_PASSED  0
#define EXIT_FAILED  1
#define EXIT_TROUBLE 2 /* a usage error, or the test cannot run */

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Lets gcc and clang check the arguments of a printf-like function, and
 * know that a function never returns. */
#ifdef __GNUC__
#define PRINTF_LIKE(f, v) __attribute__((format(printf, f, v)))
#define NO_RETURN         __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, v)
#define NO_RETURN
#endif

/* ------------------------------------------------------------- The state */

/* What the model expects in answer to one line a client sends. */
enum answer {
    ANSWER_NOTHING, /* an empty line, or one of control characters only */
    ANSWER_ECHO,    /* a public message: "[ADDR]NAME: TEXT", to all */
    ANSWER_ERROR,   /* one line, known in advance, to the sender alone */
    ANSWER_RENAME,  /* "[ADDR]OLD is now known as NEW" to all, or taken */
    ANSWER_WHO,     /* "[ADDR]NAME is online", for each user online */
    ANSWER_WHISPER, /* nothing (it went to NAME), or "no user named" */
    ANSWER_TO_SELF, /* to|MYNAME|TEXT: "[ADDR]MYNAME (private): TEXT" */
};

/* A private message sent to a name, kept so that whoever receives it can
 * be checked: one recipient, by the name it has when the server takes it. */
struct whisper {
    struct client *from;
    char *to;   /* NAME, as sent */
    char *text; /* TEXT, as the recipient should read it */
    int op;     /* the operation that sent it */
    char *what; /* and what that operation sent */
    enum { WHISPER_PENDING, WHISPER_REFUSED, WHISPER_SENT } outcome;
    size_t first, last;    /* the sender's broadcasts heard around it */
    struct client *reader; /* who received it, once someone did */
};

/* A line of an operation, and the answer it waits for. */
struct line {
    enum answer answer;
    char *text; /* ECHO, TO_SELF: the text as relayed; ERROR: the line;
                   RENAME: the new name; WHISPER: unused */
    struct whisper *whisper; /* WHISPER: its record */
};

/* One "[ADDR]NAME is online" line of an answer to who. */
struct who_entry {
    struct client *user;
    char *name;
};

/* A name taken by a rename, and where in the reference order. */
struct rename {
    size_t at;
    char *name;
};

enum client_state {
    JOINING,  /* connecting, or waiting to hear its own arrival */
    ACTIVE,   /* online, doing one operation after another */
    QUITTING, /* half-closed: reading until the server closes */
    GONE,     /* closed: it hears no more */
};

struct rng {
    uint64_t state;
};

/* One client: its connection, what it is doing, what it has heard. */
struct client {
    int serial; /* 0 is the watcher; the others in order of arrival */
    int fd;     /* its socket, -1 once closed */
    enum client_state state;
    bool connected;      /* connect() has finished */
    char addr[ADDR_LEN]; /* as the server writes it */
    char *name;          /* its name, as it knows it from its own lines */
    struct rng rng;      /* its own random choices */
    unsigned seq;        /* numbers its messages, to tell them apart */
    long long deadline;  /* for what it waits for, in ms */

    /* The operation under way, or the last one. */
    int op;     /* its number in the run; 0 before the first */
    char *what; /* what it sent, for a report */
    bool busy;  /* lines of it are still unanswered */
    struct line lines[MAX_LINES];
    int line_count, next_line;
    size_t line_since;     /* broadcasts heard when the line became next */
    bool quit_after;       /* a half-close follows its last byte */
    struct who_entry *who; /* the answer to who, while it comes */
    size_t who_count, who_cap, who_anchor;
    bool who_open;

    /* Bytes to send, in pieces cut where the operation says. */
    char *out;
    size_t out_len, out_sent, out_cap;
    size_t cuts[MAX_CUTS];
    int cut_count, next_cut;
    long long next_piece; /* when the next piece may go, in ms */

    /* What it heard. */
    char *partial; /* the start of a line whose LF has not come */
    size_t partial_len, partial_cap;
    char *recent[RECENT_LINES]; /* its last lines, shown in a report */
    int recent_next;
    int newest_arrival; /* the newest client it heard arrive */
    size_t heard;       /* broadcasts it heard */
    size_t checked;     /* of them, found in the reference order */
    char **unchecked;   /* the rest, waiting for the watcher to hear them */
    size_t unchecked_head, unchecked_len, unchecked_cap;
    unsigned long own_heard; /* its own messages and renames it heard */
    bool heard_all; /* it read until the server closed its connection */
    int left_op;    /* the operation by which it left, or 0 */

    /* Its life in the reference order. */
    size_t joined, left; /* where it arrived and left, or NONE */
    struct rename *renames;
    size_t rename_count, rename_cap;
    unsigned long own_relayed; /* its messages and renames there */
};

/* A check that needs the reference order to have come that far. */
enum fact_kind {
    FACT_WHO,     /* the answer to who lists who was online then */
    FACT_TAKEN,   /* the name refused as taken was someone else's then */
    FACT_NO_USER, /* nobody had the name then */
    FACT_SENDER,  /* a private message carries its sender's name then */
    FACT_LEFT,    /* a leaver heard everything up to its departure */
};

struct fact {
    enum fact_kind kind;
    struct client *c;      /* whose lines showed it */
    size_t anchor;         /* the broadcasts c had heard then */
    int op;                /* the operation it belongs to */
    char *what;            /* and what that operation sent */
    char *name;            /* TAKEN, NO_USER, SENDER: the name */
    struct client *sender; /* SENDER: who sent the private message */
    struct who_entry *who; /* WHO: the answer */
    size_t who_count;
};

/* A line as the model reads it: who it is about, and what it says. */
enum heard_kind {
    HEARD_ONLINE,    /* "[ADDR]ADDR is online": an arrival, to all */
    HEARD_OFFLINE,   /* "[ADDR]NAME is offline", to all */
    HEARD_PUBLIC,    /* "[ADDR]NAME: TEXT", to all */
    HEARD_RENAME,    /* "[ADDR]OLD is now known as NEW", to all */
    HEARD_WHO_ENTRY, /* "[ADDR]NAME is online" in an answer to who */
    HEARD_PRIVATE,   /* "[ADDR]NAME (private): TEXT" */
    HEARD_OTHER,     /* anything else, such as an error */
};

struct heard {
    enum heard_kind kind;
    struct client *from; /* the client whose address leads the line */
    const char *name;    /* NAME, or OLD */
    const char *text;    /* TEXT, or NEW */
    char copy[HEARD_MAX + 1];
};

struct options {
    const char *ip, *port;
    unsigned long long seed;
    long clients, ops, seconds;
    bool verbose;
};

static struct options opt = {
    .ip = DEFAULT_IP,
    .port = DEFAULT_PORT,
    .clients = DEFAULT_CLIENTS,
    .ops = DEFAULT_OPS,
    .seconds = DEFAULT_SECONDS,
};
static char replay[512];           /* the command that runs the test again */
static long long run_start;        /* when the run began, in ms */
static struct addrinfo *server_ai; /* where the server listens */

static struct client **clients; /* every client of the run, by serial */
static size_t client_count, client_cap;
static struct client *watcher;
static struct client *by_port[PORT_COUNT]; /* who uses each local port */
static int ops_started;

static char **order; /* the reference order: every broadcast, as the
                        watcher heard them */
static size_t order_len, order_cap;
static int next_arrival; /* the client whose arrival is due next there */

static struct fact **facts; /* checks that wait for the reference order */
static size_t fact_count, fact_cap;
static struct whisper **whispers;
static size_t whisper_count, whisper_cap;

/* What the run checked, told at the end of a run that passed. */
static struct tally {
    unsigned long lines;     /* lines heard, every one as the model said */
    unsigned long who;       /* answers to who */
    unsigned long renamed;   /* names taken */
    unsigned long taken;     /* names refused as someone else's */
    unsigned long whispered; /* private messages delivered */
    unsigned long refused;   /* private messages to nobody of that name */
    unsigned long left;      /* departures */
} tally;

/* ------------------------------------------------------------- Utilities */

static long long now_ms(void)
{
    struct timespec now;

    if (clock_gettime(CLOCK_MONOTONIC, &now) < 0) {
        perror("model: clock_gettime");
        exit(EXIT_TROUBLE);
    }
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "model: out of memory\n");
        exit(EXIT_TROUBLE);
    }
    return p;
}

/* Makes room in array for need elements of size bytes; returns it. */
static void *grow(void *array, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap ? *cap : 16;

    if (need <= *cap)
        return array;
    while (n < need)
        n *= 2;
    array = must(realloc(array, n * size));
    *cap = n;
    return array;
}

static char *copy(const char *s)
{
    return must(strdup(s));
}

/* Appends len bytes to a growing buffer of *len bytes, kept NUL-ended. */
static void append(char **buf, size_t *len, size_t *cap, const void *bytes,
                   size_t n)
{
    *buf = grow(*buf, cap, *len + n + 1, 1);
    memcpy(*buf + *len, bytes, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* A growing string, for texts made in several steps. */
struct text {
    char *s;
    size_t len, cap;
};

static void text_add(struct text *t, const void *bytes, size_t n)
{
    append(&t->s, &t->len, &t->cap, bytes, n);
}

static void text_addf(struct text *t, const char *format, ...)
    PRINTF_LIKE(2, 3);

static void text_addf(struct text *t, const char *format, ...)
{
    va_list args;
    int n;

    va_start(args, format);
    n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (n < 0) {
        fprintf(stderr, "model: cannot format '%s'\n", format);
        exit(EXIT_TROUBLE);
    }
    t->s = grow(t->s, &t->cap, t->len + (size_t)n + 1, 1);
    va_start(args, format);
    vsnprintf(t->s + t->len, (size_t)n + 1, format, args);
    va_end(args);
    t->len += (size_t)n;
}

/* The text made so far, handed over; t is empty again. */
static char *text_take(struct text *t)
{
    char *s = t->s ? t->s : copy("");

    *t = (struct text){0};
    return s;
}

/* ------------------------------------------------------ Random choices */

/*
 * splitmix64: a small generator whose every output is a thorough mix of a
 * counter, so that seeds next to each other give unrelated runs. Each
 * client has its own, seeded from the run's seed and its serial, so that
 * what one client chooses does not depend on how often the others chose.
 */
#define RNG_STEP  0x9e3779b97f4a7c15ULL
#define RNG_MIX_1 0xbf58476d1ce4e5b9ULL
#define RNG_MIX_2 0x94d049bb133111ebULL

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->state += RNG_STEP);

    z = (z ^ (z >> 30)) * RNG_MIX_1;
    z = (z ^ (z >> 27)) * RNG_MIX_2;
    return z ^ (z >> 31);
}

/* A number from 0 to n - 1; 0 when n is 0. */
static unsigned rng_below(struct rng *r, size_t n)
{
    return n > 0 ? (unsigned)(rng_next(r) % n) : 0;
}

static bool rng_percent(struct rng *r, unsigned percent)
{
    return rng_below(r, 100) < percent;
}

/* Heads or tails. */
static bool rng_coin(struct rng *r)
{
    return rng_next(r) & 1;
}

/* An index below count, each chosen as often as weights[index] says. */
static unsigned rng_weighted(struct rng *r, const unsigned *weights,
                             unsigned count)
{
    unsigned total = 0, pick, k;

    for (k = 0; k < count; k++)
        total += weights[k];
    pick = rng_below(r, total);
    for (k = 0; pick >= weights[k]; k++)
        pick -= weights[k];
    return k;
}

/* ---------------------------------------------------------- The protocol */

/*
 * Decodes the UTF-8 character at s, n bytes at most: returns its length
 * and puts its code point in *cp, or returns 0 when the bytes there are no
 * valid UTF-8 (a stray continuation byte, a sequence cut short, an
 * overlong form, a surrogate, a code point past U+10FFFF).
 */
static size_t utf8_char(const unsigned char *s, size_t n, unsigned long *cp)
{
    size_t len;
    unsigned long c;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, c = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, c = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, c = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10ffff ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* C0 controls but TAB, DEL, and the C1 range. */
static bool is_control(unsigned long cp)
{
    return (cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f);
}

/* The invisible and direction-changing characters that spoof names. */
static bool is_invisible(unsigned long cp)
{
    return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0xfeff;
}

/*
 * Text as the server relays it: control characters and bytes that are no
 * UTF-8 removed, or, with show set, each turned into '?', as in the name of
 * an unknown user.
 */
static char *clean(const char *raw, size_t len, bool show)
{
    struct text t = {0};
    size_t i = 0;

    text_add(&t, "", 0);
    while (i < len) {
        unsigned long cp;
        size_t n = utf8_char((const unsigned char *)raw + i, len - i, &cp);

        if (n > 0 && !is_control(cp))
            text_add(&t, raw + i, n);
        else if (show)
            text_add(&t, "?", 1);
        i += n > 0 ? n : 1;
    }
    return text_take(&t);
}

/* 1 to MAX_NAME bytes of UTF-8: no space, control, invisible or '|'. */
static bool name_is_valid(const char *name, size_t len)
{
    size_t n;

    if (len == 0 || len > MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i += n) {
        unsigned long cp;

        n = utf8_char((const unsigned char *)name + i, len - i, &cp);
        if (n == 0 || cp == ' ' || cp == '\t' || cp == '|' || is_control(cp) ||
            is_invisible(cp))
            return false;
    }
    return true;
}

/* Shaped like an address, "IPv4:port" or "[IPv6]:port": kept for
 * newcomers, so taken. */
static bool name_is_address(const char *name)
{
    const char *colon = strrchr(name, ':');
    size_t host_len = colon ? (size_t)(colon - name) : 0;
    unsigned char ip[sizeof(struct in6_addr)];
    char host[ADDR_LEN];

    if (!colon || colon[1] == '\0' || host_len >= sizeof host ||
        colon[1 + strspn(colon + 1, "0123456789")] != '\0')
        return false;
    if (host_len > 2 && name[0] == '[' && name[host_len - 1] == ']') {
        snprintf(host, sizeof host, "%.*s", (int)host_len - 2, name + 1);
        return inet_pton(AF_INET6, host, ip) == 1;
    }
    snprintf(host, sizeof host, "%.*s", (int)host_len, name);
    return inet_pton(AF_INET, host, ip) == 1;
}

static char *format(const char *fmt, ...) PRINTF_LIKE(1, 2);

static char *format(const char *fmt, ...)
{
    struct text t = {0};
    va_list args;
    char line[HEARD_MAX + 1];

    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    text_add(&t, line, strlen(line));
    return text_take(&t);
}

/* ------------------------------------------------------------- Reporting */

/*
 * Bytes as a terminal can show them: valid UTF-8 as is, other bytes and
 * control characters as escapes (\r, \x1b), cut short past SHOW_BYTES.
 * The result lives in one of SHOW_SLOTS buffers used in turn, so that one
 * message can show several lines.
 */
static const char *shown(const char *bytes, size_t len)
{
    static char slots[SHOW_SLOTS][SHOW_BYTES * 4 + 64];
    static int turn;
    char *out = slots[turn++ % SHOW_SLOTS];
    size_t o = 0, i = 0;

    while (i < len && i < SHOW_BYTES) {
        unsigned long cp;
        size_t n = utf8_char((const unsigned char *)bytes + i, len - i, &cp);
        unsigned char b = (unsigned char)bytes[i];

        if (n > 0 && !is_control(cp) && cp != '\\') {
            memcpy(out + o, bytes + i, n);
            o += n;
        } else {
            n = 1;
            o += (size_t)snprintf(out + o, sizeof slots[0] - o,
                                  b == '\r'   ? "\\r"
                                  : b == '\n' ? "\\n"
                                  : b == '\t' ? "\\t"
                                  : b == '\\' ? "\\\\"
                                              : "\\x%02x",
                                  b);
        }
        i += n;
    }
    if (i < len)
        o += (size_t)snprintf(out + o, sizeof slots[0] - o, "... (%zu bytes)",
                              len);
    out[o] = '\0';
    return out;
}

static const char *shown_line(const char *line)
{
    return shown(line, strlen(line));
}

/* "client 5 (127.0.0.1:41234, named "bob")"; the watcher says so. */
static const char *label(const struct client *c)
{
    static char slots[SHOW_SLOTS][3 * ADDR_LEN + 64];
    static int turn;
    char *out = slots[turn++ % SHOW_SLOTS];
    const char *role = c->serial == 0 ? ", the watcher" : "";

    if (!c->name)
        snprintf(out, sizeof slots[0], "client %d%s (connecting)", c->serial,
                 role);
    else if (strcmp(c->name, c->addr) == 0)
        snprintf(out, sizeof slots[0], "client %d%s (%s)", c->serial, role,
                 c->addr);
    else
        snprintf(out, sizeof slots[0], "client %d%s (%s, named \"%s\")",
                 c->serial, role, c->addr, c->name);
    return out;
}

/*
 * Ends the run with a failed check: the seed, the operation at fault and
 * what it sent, what went wrong, the last lines c heard, and how to run
 * the same test again.
 */
static void fail(const struct client *c, int op, const char *what,
                 const char *format, ...) PRINTF_LIKE(4, 5) NO_RETURN;

static void fail(const struct client *c, int op, const char *what,
                 const char *format, ...)
{
    va_list args;

    fflush(stdout);
    fprintf(stderr, "model: FAILED with seed %llu, %.1f s into the run\n",
            opt.seed, (double)(now_ms() - run_start) / 1000);
    if (c && op > 0)
        fprintf(stderr, "  at operation #%d: %s sent %s\n", op, label(c), what);
    fprintf(stderr, "  ");
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n");
    if (c && c->recent[0]) {
        fprintf(stderr, "  the last lines client %d heard, oldest first:\n",
                c->serial);
        for (int i = 0; i < RECENT_LINES; i++) {
            const char *line = c->recent[(c->recent_next + i) % RECENT_LINES];

            if (line)
                fprintf(stderr, "    '%s'\n", line);
        }
    }
    fprintf(stderr,
            "  to replay, start a fresh server on that port and run:\n"
            "    %s\n",
            replay);
    exit(EXIT_FAILED);
}

/* Fails a check about client c and the operation it is doing. */
#define FAIL(c, ...) fail((c), (c)->op, (c)->what, __VA_ARGS__)

/* Ends a run that could not be carried out. */
static void trouble(const char *format, ...) PRINTF_LIKE(1, 2) NO_RETURN;

static void trouble(const char *format, ...)
{
    va_list args;

    fprintf(stderr, "model: error: ");
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n");
    exit(EXIT_TROUBLE);
}

/* ------------------------------------------------- The reference order */

/* The reference order holds the state of the chat after each broadcast:
 * who is online, and under which name. */
static bool online_at(const struct client *x, size_t at)
{
    return x->joined != NONE && x->joined <= at &&
           (x->left == NONE || at < x->left);
}

static const char *name_at(const struct client *x, size_t at)
{
    const char *name = x->addr;

    for (size_t i = 0; i < x->rename_count && x->renames[i].at <= at; i++)
        name = x->renames[i].name;
    return name;
}

/* The user online at that point with that name, but besides; or NULL. */
static struct client *holder_at(const char *name, size_t at,
                                const struct client *besides)
{
    for (size_t i = 0; i < client_count; i++)
        if (clients[i] != besides && online_at(clients[i], at) &&
            strcmp(name_at(clients[i], at), name) == 0)
            return clients[i];
    return NULL;
}

/* For a report: what else is known of a user the reference order holds
 * online, when its client has in fact left. */
static const char *gone_hint(const struct client *x)
{
    static char hint[128];

    if (x->left != NONE || (x->state != GONE && x->state != QUITTING))
        return "";
    snprintf(hint, sizeof hint,
             " (it left at operation #%d, and the watcher has not heard it "
             "go)",
             x->left_op);
    return hint;
}

/* The list of users online at that point, as who would give it. */
static char *online_list(size_t at)
{
    struct text t = {0};

    for (size_t i = 0; i < client_count; i++)
        if (online_at(clients[i], at))
            text_addf(&t, "\n      '[%s]%s is online'%s", clients[i]->addr,
                      name_at(clients[i], at), gone_hint(clients[i]));
    return text_take(&t);
}

/* The broadcast x heard as its n-th, counting from 1, in the order. */
static size_t place_of(const struct client *x, size_t n)
{
    return x->joined + n - 1;
}

/* An arrival must come in the order the clients connected, once each,
 * and name the newcomer after its address. */
static void order_arrival(struct client *x, const char *line,
                          const struct heard *h)
{
    if (x->serial != next_arrival)
        FAIL(watcher,
             "the watcher heard '%s', but %s connected first and was "
             "not announced yet (or this one was announced before)",
             shown_line(line), label(clients[next_arrival]));
    if (strcmp(h->name, x->addr) != 0)
        FAIL(watcher, "the watcher heard '%s': a newcomer is named %s",
             shown_line(line), x->addr);
    x->joined = order_len;
    next_arrival++;
}

/* A new name must be valid, not an address, and nobody else's. */
static void order_new_name(struct client *x, const char *line, const char *name)
{
    struct client *other = holder_at(name, order_len, x);

    if (!name_is_valid(name, strlen(name)) || name_is_address(name))
        fail(x, x->op, x->what,
             "the watcher heard '%s', a rename to a name that should "
             "have been refused",
             shown_line(line));
    if (other)
        fail(x, x->op, x->what,
             "the watcher heard '%s', but %s had the name \"%s\" at that "
             "moment%s; the users online then:%s",
             shown_line(line), label(other), name, gone_hint(other),
             online_list(order_len));
    tally.renamed++;
    x->renames = grow(x->renames, &x->rename_cap, x->rename_count + 1,
                      sizeof *x->renames);
    x->renames[x->rename_count++] = (struct rename){order_len, copy(name)};
}

/* A client that stopped reading must not have lines relayed that it did
 * not hear itself: those would be half lines, or lines sent twice. */
static void order_count_own(struct client *x, const char *line)
{
    x->own_relayed++;
    if (x->state == GONE && x->own_relayed > x->own_heard)
        fail(x, x->left_op, x->what,
             "after client %d stopped sending, the watcher heard '%s', "
             "a line it never sent whole",
             x->serial, shown_line(line));
}

/* A departure must be of a client that left, and come once. */
static void order_departure(struct client *x, const char *line)
{
    if (x->state != QUITTING && x->state != GONE)
        FAIL(x, "the watcher heard '%s', but client %d did not leave",
             shown_line(line), x->serial);
    x->left = order_len;
    tally.left++;
}

/*
 * The watcher heard a broadcast: it joins the reference order, once it
 * has been checked against the state of the chat just before it.
 */
static void order_append(const char *line, const struct heard *h)
{
    struct client *x = h->from;

    if (h->kind == HEARD_ONLINE) {
        order_arrival(x, line, h);
    } else {
        if (x->joined == NONE || x->left != NONE)
            FAIL(x,
                 "the watcher heard '%s', but client %d was not online "
                 "(a departure announced twice?)",
                 shown_line(line), x->serial);
        if (strcmp(h->name, name_at(x, order_len)) != 0)
            FAIL(x, "the watcher heard '%s', but client %d is named \"%s\"",
                 shown_line(line), x->serial, name_at(x, order_len));
        if (h->kind == HEARD_RENAME)
            order_new_name(x, line, h->text);
        if (h->kind == HEARD_OFFLINE)
            order_departure(x, line);
        else
            order_count_own(x, line);
    }
    order = grow(order, &order_cap, order_len + 1, sizeof *order);
    order[order_len++] = copy(line);
}

/*
 * Compares the broadcasts c heard with the reference order, as far as the
 * watcher has heard: one output, one order, for everyone.
 */
static void check_unchecked(struct client *c)
{
    while (c->unchecked_len > 0 && c->joined != NONE &&
           place_of(c, c->checked + 1) < order_len) {
        size_t at = place_of(c, c->checked + 1);
        char *got = c->unchecked[c->unchecked_head];

        if (strcmp(got, order[at]) != 0)
            fail(c, c->op, c->what,
                 "one order for all: %s heard '%s' where the watcher heard "
                 "'%s'; both heard before it '%s'",
                 label(c), shown_line(got), shown_line(order[at]),
                 at > 0 ? shown_line(order[at - 1]) : "nothing");
        free(got);
        c->checked++;
        c->unchecked_len--;
        c->unchecked_head = c->unchecked_len ? c->unchecked_head + 1 : 0;
    }
}

/* --------------------------------------------------------------- Facts */

static struct fact *fact_new(enum fact_kind kind, struct client *c,
                             size_t anchor)
{
    struct fact *f = must(calloc(1, sizeof *f));

    f->kind = kind;
    f->c = c;
    f->anchor = anchor;
    f->op = c->op;
    f->what = copy(c->what ? c->what : "nothing");
    facts = grow(facts, &fact_cap, fact_count + 1, sizeof(struct fact *));
    facts[fact_count++] = f;
    return f;
}

/* Whether the reference order has come as far as the fact's point. */
static bool fact_ready(const struct fact *f)
{
    if (f->c->joined == NONE || f->c->checked < f->anchor)
        return false;
    return f->kind != FACT_LEFT || f->c->left != NONE;
}

static void check_who(const struct fact *f, size_t at)
{
    struct text got = {0};
    size_t n = 0;
    bool same = true;

    for (size_t i = 0; i < client_count; i++) {
        struct client *x = clients[i];

        if (!online_at(x, at))
            continue;
        if (n >= f->who_count || f->who[n].user != x ||
            strcmp(f->who[n].name, name_at(x, at)) != 0)
            same = false;
        n++;
    }
    if (same && n == f->who_count) {
        tally.who++;
        return;
    }
    for (size_t i = 0; i < f->who_count; i++)
        text_addf(&got, "\n      '[%s]%s is online'", f->who[i].user->addr,
                  shown_line(f->who[i].name));
    fail(f->c, f->op, f->what,
         "%s asked who, and heard:%s\n  but the users online at that "
         "point, oldest connection first, were:%s",
         label(f->c), got.s, online_list(at));
}

static void check_fact(const struct fact *f)
{
    size_t at = place_of(f->c, f->anchor);
    struct client *holder;

    switch (f->kind) {
    case FACT_WHO:
        check_who(f, at);
        break;
    case FACT_TAKEN:
        if (!holder_at(f->name, at, f->c))
            fail(f->c, f->op, f->what,
                 "%s was told \"%s\" is taken, but nobody else online had "
                 "it then; the users online then:%s",
                 label(f->c), f->name, online_list(at));
        tally.taken++;
        break;
    case FACT_NO_USER:
        if ((holder = holder_at(f->name, at, NULL)))
            fail(f->c, f->op, f->what,
                 "%s was told there is no user named \"%s\", but %s had "
                 "that name then%s",
                 label(f->c), f->name, label(holder), gone_hint(holder));
        tally.refused++;
        break;
    case FACT_SENDER:
        if (strcmp(name_at(f->sender, at), f->name) != 0)
            fail(f->c, f->op, f->what,
                 "%s heard a private message from \"%s\", but its sender, "
                 "client %d, was named \"%s\" then",
                 label(f->c), f->name, f->sender->serial,
                 name_at(f->sender, at));
        break;
    case FACT_LEFT:
        if (place_of(f->c, f->anchor) + 1 != f->c->left)
            fail(f->c, f->op, f->what,
                 "after its half-close, %s should hear every broadcast up "
                 "to its departure, '%s', and no more; the last it heard "
                 "was '%s'",
                 label(f->c), shown_line(order[f->c->left]),
                 shown_line(order[at]));
        break;
    }
}

/* Checks the facts the reference order now reaches, and forgets them. */
static void check_facts(void)
{
    for (size_t i = 0; i < fact_count;) {
        struct fact *f = facts[i];

        if (!fact_ready(f)) {
            i++;
            continue;
        }
        check_fact(f);
        facts[i] = facts[--fact_count];
        free(f->what);
        free(f->name);
        for (size_t k = 0; k < f->who_count; k++)
            free(f->who[k].name);
        free(f->who);
        free(f);
    }
}

/* ------------------------------------------------- Reading what is heard */

static struct client *client_by_addr(const char *addr, size_t len)
{
    const char *colon = NULL;
    long port = 0;
    struct client *x;

    for (size_t i = 0; i < len; i++)
        if (addr[i] == ':')
            colon = addr + i;
    if (!colon || colon + 1 == addr + len)
        return NULL;
    for (const char *p = colon + 1; p < addr + len; p++) {
        if (*p < '0' || *p > '9' || port >= PORT_COUNT)
            return NULL;
        port = port * 10 + (*p - '0');
    }
    x = port < PORT_COUNT ? by_port[port] : NULL;
    return x && strlen(x->addr) == len && memcmp(x->addr, addr, len) == 0
               ? x
               : NULL;
}

/* The client whose "[ADDR]" starts s, with *after set past it; or NULL.
 * An IPv6 address holds a ']' of its own: each one is tried. */
static struct client *find_speaker(char *s, char **after)
{
    if (s[0] != '[')
        return NULL;
    for (char *end = strchr(s, ']'); end && end - s <= ADDR_LEN;
         end = strchr(end + 1, ']')) {
        struct client *x = client_by_addr(s + 1, (size_t)(end - s - 1));

        if (x) {
            *after = end + 1;
            return x;
        }
    }
    return NULL;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Reads a line c heard. "[ADDR]NAME is online" is news of an arrival when
 * it names the next client c has not heard arrive yet; otherwise it is
 * part of an answer to who. Names hold no space, and the generator never
 * makes one that ends in ':', so NAME ends at the first space.
 */
static void parse_heard(const struct client *c, const char *line,
                        struct heard *h)
{
    char *name, *space;
    size_t len;

    h->kind = HEARD_OTHER;
    snprintf(h->copy, sizeof h->copy, "%s", line);
    h->from = find_speaker(h->copy, &name);
    if (!h->from || !(space = strchr(name, ' ')))
        return;
    *space = '\0';
    h->name = name;
    h->text = space + 1;
    len = strlen(name);
    if (len > 0 && name[len - 1] == ':') {
        name[len - 1] = '\0';
        h->kind = HEARD_PUBLIC;
    } else if (strcmp(h->text, "is online") == 0) {
        h->kind = h->from->serial == c->newest_arrival + 1 ? HEARD_ONLINE
                                                           : HEARD_WHO_ENTRY;
    } else if (strcmp(h->text, "is offline") == 0) {
        h->kind = HEARD_OFFLINE;
    } else if (starts_with(h->text, "is now known as ")) {
        h->text += strlen("is now known as ");
        h->kind = HEARD_RENAME;
    } else if (starts_with(h->text, "(private): ")) {
        h->text += strlen("(private): ");
        h->kind = HEARD_PRIVATE;
    }
}

/* ----------------------------------------------- A client's own answers */

static void op_finished(struct client *c);

/* Moves c on to the next line of its operation. */
static void next_line(struct client *c)
{
    c->next_line++;
    c->line_since = c->heard;
    c->deadline = now_ms() + WAIT_MS;
    if (c->next_line == c->line_count)
        op_finished(c);
}

/* The line that answers l when all goes well, or for a private message
 * the one error that may answer it; formatted for c as it is now. */
static char *expected_line(const struct client *c, const struct line *l)
{
    switch (l->answer) {
    case ANSWER_ECHO:
        return format("[%s]%s: %s", c->addr, c->name, l->text);
    case ANSWER_ERROR:
        return copy(l->text);
    case ANSWER_RENAME:
        return format("[%s]%s is now known as %s", c->addr, c->name, l->text);
    case ANSWER_TO_SELF:
        return format("[%s]%s (private): %s", c->addr, c->name, l->text);
    case ANSWER_WHISPER:
        return format(ERR_NO_USER, l->whisper->to);
    default:
        return copy("");
    }
}

/* What l waits for, in words, for a report. */
static const char *expected_words(const struct client *c, const struct line *l)
{
    static char said[2 * HEARD_MAX];
    char *line = expected_line(c, l);

    if (l->answer == ANSWER_WHO)
        snprintf(said, sizeof said,
                 "the answer to who, '[ADDR]NAME is online' for each user");
    else if (l->answer == ANSWER_RENAME)
        snprintf(said, sizeof said, "'%s' or '" ERR_TAKEN "'", shown_line(line),
                 l->text);
    else if (l->answer == ANSWER_WHISPER)
        snprintf(said, sizeof said, "nothing, or '%s'", shown_line(line));
    else if (l->answer == ANSWER_NOTHING)
        snprintf(said, sizeof said, "nothing");
    else
        snprintf(said, sizeof said, "'%s'", shown_line(line));
    free(line);
    return said;
}

static void whisper_refused(struct client *c, struct whisper *w)
{
    if (w->reader)
        FAIL(c,
             "%s was told there is no user named \"%s\", yet %s heard "
             "the message",
             label(c), w->to, label(w->reader));
    w->outcome = WHISPER_REFUSED;
    fact_new(FACT_NO_USER, c, c->heard)->name = copy(w->to);
}

static void who_add(struct client *c, const struct heard *h)
{
    if (!c->who_open) {
        c->who_open = true;
        c->who_count = 0;
        c->who_anchor = c->heard;
    }
    c->who = grow(c->who, &c->who_cap, c->who_count + 1, sizeof *c->who);
    c->who[c->who_count++] = (struct who_entry){h->from, copy(h->name)};
}

/* The answer to who ended: it is checked once the watcher is there. */
static void who_close(struct client *c)
{
    struct fact *f = fact_new(FACT_WHO, c, c->who_anchor);

    f->who = c->who;
    f->who_count = c->who_count;
    c->who = NULL;
    c->who_count = c->who_cap = 0;
    c->who_open = false;
    next_line(c);
}

/* Whether line is the one wanted, which it frees. */
static bool is_line(const char *line, char *wanted)
{
    bool same = strcmp(line, wanted) == 0;

    free(wanted);
    return same;
}

/*
 * Whether the line c heard answers l, the next line of its operation; if
 * so, what it means is noted and c moves on.
 */
static bool answers(struct client *c, struct line *l, const char *line,
                    const struct heard *h)
{
    switch (l->answer) {
    case ANSWER_NOTHING:
        return false;
    case ANSWER_WHO:
        if (h->kind != HEARD_WHO_ENTRY)
            return false;
        who_add(c, h);
        return true; /* more may come */
    case ANSWER_RENAME:
        if (is_line(line, expected_line(c, l))) {
            free(c->name);
            c->name = copy(l->text);
        } else if (is_line(line, format(ERR_TAKEN, l->text))) {
            fact_new(FACT_TAKEN, c, c->heard)->name = copy(l->text);
        } else {
            return false;
        }
        break;
    case ANSWER_WHISPER:
        if (!is_line(line, expected_line(c, l)))
            return false;
        whisper_refused(c, l->whisper);
        break;
    case ANSWER_TO_SELF:
        if (!is_line(line, expected_line(c, l)))
            return false;
        l->whisper->outcome = WHISPER_SENT;
        l->whisper->reader = c;
        tally.whispered++;
        break;
    default:
        if (!is_line(line, expected_line(c, l)))
            return false;
    }
    next_line(c);
    return true;
}

/* A line that may go unanswered is settled as such: a private message
 * that was not refused went to its recipient. */
static void settle_silent(struct client *c, struct line *l)
{
    if (l->answer == ANSWER_WHISPER) {
        l->whisper->outcome = WHISPER_SENT;
        l->whisper->first = c->line_since;
        l->whisper->last = c->heard;
    }
}

/* The later line of c's operation that line answers, counting from 1;
 * or 0. */
static int later_line_answered(const struct client *c, const char *line)
{
    for (int i = c->next_line + 1; i < c->line_count; i++) {
        const struct line *l = &c->lines[i];
        char *want = expected_line(c, l);
        bool same = l->answer != ANSWER_NOTHING && l->answer != ANSWER_WHO &&
                    strcmp(want, line) == 0;

        free(want);
        if (same)
            return i + 1;
    }
    return 0;
}

/* Fails c, which heard line where l was to be answered. */
static void fail_answer(struct client *c, const struct line *l,
                        const char *line)
{
    int later = later_line_answered(c, line);

    if (later)
        FAIL(c,
             "%s expected %s\n  as the answer to its line %d, and got "
             "'%s', the answer to its line %d: its lines were taken out "
             "of order",
             label(c), expected_words(c, l), c->next_line + 1, shown_line(line),
             later);
    FAIL(c, "%s expected %s\n  as the answer to its line %d, and got '%s'",
         label(c), expected_words(c, l), c->next_line + 1, shown_line(line));
}

/*
 * c heard a line meant for it alone, or its own echo: the answer to the
 * next line of its operation that is answered at all. The server handles
 * a sender's lines in the order sent, so lines that may go unanswered and
 * were passed over went unanswered.
 */
static void hear_answer(struct client *c, const char *line,
                        const struct heard *h)
{
    for (;;) {
        struct line *l = &c->lines[c->next_line];

        if (!c->busy)
            FAIL(c,
                 "%s heard '%s', but its operation had been answered in "
                 "full: nothing more was due",
                 label(c), shown_line(line));
        if (answers(c, l, line, h))
            return;
        if (l->answer != ANSWER_NOTHING && l->answer != ANSWER_WHISPER)
            fail_answer(c, l, line);
        settle_silent(c, l);
        next_line(c);
    }
}

/* ----------------------------------------------------- What others said */

static struct whisper *find_whisper(const struct client *from, const char *text)
{
    for (size_t i = whisper_count; i-- > 0;)
        if (whispers[i]->from == from && strcmp(whispers[i]->text, text) == 0)
            return whispers[i];
    return NULL;
}

/* A private message from another client must be meant for c, by the name
 * c has at this moment, and come once. */
static void hear_private(struct client *c, const char *line,
                         const struct heard *h)
{
    struct whisper *w = find_whisper(h->from, h->text);
    struct fact *f;

    if (!w)
        FAIL(c, "%s heard '%s', which client %d never sent", label(c),
             shown_line(line), h->from->serial);
    if (strcmp(w->to, c->name) != 0)
        fail(h->from, w->op, w->what,
             "%s heard '%s', sent to \"%s\": a private message for "
             "someone else",
             label(c), shown_line(line), w->to);
    if (w->reader)
        FAIL(c, "%s heard '%s', which %s had heard already", label(c),
             shown_line(line), label(w->reader));
    if (w->outcome == WHISPER_REFUSED)
        FAIL(c,
             "%s heard '%s', though its sender was told there was no "
             "user named \"%s\"",
             label(c), shown_line(line), w->to);
    w->reader = c;
    tally.whispered++;
    f = fact_new(FACT_SENDER, c, c->heard);
    f->name = copy(h->name);
    f->sender = h->from;
}

static void remember_line(struct client *c, const char *line)
{
    free(c->recent[c->recent_next]);
    c->recent[c->recent_next] = copy(shown_line(line));
    c->recent_next = (c->recent_next + 1) % RECENT_LINES;
    tally.lines++;
}

/*
 * c heard a broadcast. The watcher's make the reference order; everyone
 * else's wait there to be compared with it. Its own are answers too.
 */
static void hear_broadcast(struct client *c, const char *line,
                           const struct heard *h)
{
    if (c == watcher)
        order_append(line, h);
    c->heard++;
    if (c == watcher) {
        c->checked = c->heard;
    } else {
        c->unchecked = grow(c->unchecked, &c->unchecked_cap,
                            c->unchecked_head + c->unchecked_len + 1,
                            sizeof *c->unchecked);
        c->unchecked[c->unchecked_head + c->unchecked_len++] = copy(line);
    }
    if (h->kind == HEARD_ONLINE)
        c->newest_arrival = h->from->serial;
    if (h->from == c && h->kind == HEARD_OFFLINE)
        FAIL(c, "%s heard the news of its own departure, '%s'", label(c),
             shown_line(line));
    if (h->from == c && (h->kind == HEARD_PUBLIC || h->kind == HEARD_RENAME)) {
        c->own_heard++;
        hear_answer(c, line, h);
    }
}

/* c heard one whole line from the server. */
static void client_hear(struct client *c, const char *line)
{
    static struct heard h;

    remember_line(c, line);
    parse_heard(c, line, &h);
    if (c->who_open && h.kind != HEARD_WHO_ENTRY)
        who_close(c); /* the answer to who is one block of lines */
    if (c->state == JOINING) {
        if (h.kind != HEARD_ONLINE || h.from != c)
            FAIL(c,
                 "%s expected its own arrival first, '[%s]%s is online', "
                 "and got '%s'",
                 label(c), c->addr, c->addr, shown_line(line));
        c->state = ACTIVE;
    }
    if (h.kind == HEARD_ONLINE || h.kind == HEARD_OFFLINE ||
        h.kind == HEARD_PUBLIC || h.kind == HEARD_RENAME)
        hear_broadcast(c, line, &h);
    else if (h.kind == HEARD_PRIVATE && h.from != c)
        hear_private(c, line, &h);
    else
        hear_answer(c, line, &h);
}

/* ----------------------------------------------------------- Connecting */

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Writes a socket address as the server does: "host:port", "[v6]:port". */
static bool format_addr(const struct sockaddr *sa, socklen_t len, char *out)
{
    char host[ADDR_LEN], port[sizeof "65535"];

    if (getnameinfo(sa, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return false;
    snprintf(out, ADDR_LEN, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
             port);
    return true;
}

/* Finds where the server listens, once, before the run. */
static void resolve_server(void)
{
    struct addrinfo hints = {0};
    int err;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    err = getaddrinfo(opt.ip, opt.port, &hints, &server_ai);
    if (err != 0)
        trouble("cannot find %s port %s: %s", opt.ip, opt.port,
                gai_strerror(err));
}

/* A new client, not connected yet; it is the newest of the run. */
static struct client *client_new(void)
{
    struct client *c = must(calloc(1, sizeof *c));

    c->serial = (int)client_count;
    c->fd = -1;
    c->state = JOINING;
    c->rng.state = opt.seed + (uint64_t)c->serial * RNG_MIX_1;
    c->newest_arrival = c->serial - 1;
    c->joined = c->left = NONE;
    c->deadline = now_ms() + WAIT_MS;
    clients =
        grow(clients, &client_cap, client_count + 1, sizeof(struct client *));
    clients[client_count++] = c;
    return c;
}

/* The local port a socket is bound to. */
static long local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[ADDR_LEN];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        !format_addr((struct sockaddr *)&ss, len, addr))
        trouble("cannot tell the address of a client: %s", strerror(errno));
    return strtol(strrchr(addr, ':') + 1, NULL, 10);
}

/*
 * Opens a socket on a port that no client of this run has used. The server
 * calls users by their address, and two clients with one address could
 * not be told apart; yet the system may hand out the port of a client
 * that has gone. A socket that gets such a port is kept open and unused
 * until the end, so that the port is not handed out again, and another is
 * opened.
 */
static int open_socket(void)
{
    struct sockaddr_storage any = {0}; /* any address, any port */

    any.ss_family = (sa_family_t)server_ai->ai_family;
    for (int tries = 0; tries < MAX_PORT_TRIES; tries++) {
        int fd = socket(server_ai->ai_family, server_ai->ai_socktype,
                        server_ai->ai_protocol);

        if (fd < 0 || set_nonblocking(fd) < 0 ||
            bind(fd, (struct sockaddr *)&any, server_ai->ai_addrlen) < 0)
            trouble("cannot open a socket: %s", strerror(errno));
        if (!by_port[local_port(fd)])
            return fd;
    }
    trouble("the system gave %d sockets in a row a port used before",
            MAX_PORT_TRIES);
}

/* Starts connecting a new client; poll() says when it is through. */
static void client_connect(void)
{
    struct client *c = client_new();
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    c->fd = open_socket();
    if (connect(c->fd, server_ai->ai_addr, server_ai->ai_addrlen) < 0 &&
        errno != EINPROGRESS) {
        if (c->serial == 0)
            trouble("cannot connect to %s port %s: %s (is the server "
                    "running?)",
                    opt.ip, opt.port, strerror(errno));
        FAIL(c, "%s cannot connect: %s", label(c), strerror(errno));
    }
    /* The address is known now: the server may tell others about c before
     * poll() tells c that the connection went through. */
    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) < 0 ||
        !format_addr((struct sockaddr *)&ss, len, c->addr))
        trouble("cannot tell the address of a client: %s", strerror(errno));
    by_port[local_port(c->fd)] = c;
    c->name = copy(c->addr);
    if (opt.verbose)
        printf("client %d connects from %s\n", c->serial, c->addr);
}

/* The connection went through, or failed: getsockopt() says which. */
static void client_connected(struct client *c)
{
    int err = 0;
    socklen_t err_len = sizeof err;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
        err = errno;
    if (err != 0 && c->serial == 0)
        trouble("cannot connect to %s port %s: %s (is the server running?)",
                opt.ip, opt.port, strerror(err));
    if (err != 0)
        FAIL(c, "%s cannot connect: %s", label(c), strerror(err));
    c->connected = true;
}

/* Closes c's socket; from now on it hears nothing. */
static void client_close(struct client *c)
{
    if (close(c->fd) < 0)
        FAIL(c, "cannot close the socket of %s: %s", label(c), strerror(errno));
    c->fd = -1;
    c->state = GONE;
    free(c->partial);
    free(c->out);
    c->partial = c->out = NULL;
    c->partial_len = c->partial_cap = c->out_len = c->out_cap = 0;
}

/* ---------------------------------------------------------- Reading */

/* The server closed c's connection: only a client that half-closed and
 * has had all its answers expects that. */
static void hear_end(struct client *c)
{
    if (c->state != QUITTING || c->busy)
        FAIL(c, "the server closed the connection of %s%s", label(c),
             c->busy ? " before answering its operation" : "");
    if (c->partial_len > 0)
        FAIL(c, "%s heard '%s' without an LF, then the end of the stream",
             label(c), shown(c->partial, c->partial_len));
    c->heard_all = true;
    fact_new(FACT_LEFT, c, c->heard);
    client_close(c);
    if (opt.verbose)
        printf("client %d left\n", c->serial);
}

/* Splits what c read into lines, and hears each. */
static void hear_bytes(struct client *c, const char *bytes, size_t len)
{
    while (len > 0) {
        const char *lf = memchr(bytes, '\n', len);
        size_t n = lf ? (size_t)(lf - bytes) : len;

        append(&c->partial, &c->partial_len, &c->partial_cap, bytes, n);
        if (c->partial_len > HEARD_MAX)
            FAIL(c,
                 "%s heard a line longer than any the server should "
                 "send: '%s'",
                 label(c), shown(c->partial, c->partial_len));
        if (!lf)
            return;
        if (strlen(c->partial) != c->partial_len)
            FAIL(c, "%s heard a line with a NUL byte: '%s'", label(c),
                 shown(c->partial, c->partial_len));
        client_hear(c, c->partial);
        c->partial_len = 0;
        bytes = lf + 1;
        len -= n + 1;
    }
}

/* Reads what c's socket holds: every client reads as fast as it can. */
static void client_read(struct client *c)
{
    static char chunk[READ_CHUNK];

    for (int i = 0; i < READS_A_TURN && c->fd >= 0; i++) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);

        if (n > 0)
            hear_bytes(c, chunk, (size_t)n);
        else if (n == 0)
            hear_end(c);
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        else if (errno != EINTR)
            FAIL(c, "reading the connection of %s failed: %s", label(c),
                 strerror(errno));
    }
}

/* ---------------------------------------------------------- Writing */

/*
 * Writes what c's socket takes, up to the next cut; after a cut, the next
 * piece waits a few milliseconds, so that the server reads the pieces
 * apart. A half-close follows the last byte when the operation says so.
 */
static void client_write(struct client *c, long long now)
{
    while (c->out_sent < c->out_len && now >= c->next_piece) {
        size_t stop =
            c->next_cut < c->cut_count ? c->cuts[c->next_cut] : c->out_len;
        ssize_t n = write(c->fd, c->out + c->out_sent, stop - c->out_sent);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0)
            FAIL(c, "writing to the connection of %s failed: %s", label(c),
                 strerror(errno));
        c->out_sent += (size_t)n;
        if (c->out_sent == stop && c->next_cut < c->cut_count) {
            c->next_cut++;
            c->next_piece = now + 1 + rng_below(&c->rng, MAX_PAUSE_MS);
        }
    }
    if (c->out_sent == c->out_len && c->quit_after) {
        if (shutdown(c->fd, SHUT_WR) < 0)
            FAIL(c, "cannot half-close the connection of %s: %s", label(c),
                 strerror(errno));
        c->quit_after = false;
    }
}

static bool wants_to_write(const struct client *c, long long now)
{
    return c->fd >= 0 && (!c->connected ||
                          (c->out_sent < c->out_len && now >= c->next_piece));
}

/* ------------------------------------------------ Planning an operation */

/* Bytes given with their length: a NUL may stand among them. */
struct bytes {
    const char *s;
    size_t len;
};
#define BYTES(literal) (literal), sizeof(literal) - 1

/* Words of messages: UTF-8 among them, and '|' and TAB, which pass. */
static const char *const words[] = {
    "hello", "hi",   "good", "morning", "what's", "up",   "chat",  "fine",
    "héllo", "你好", "☃",    "naïve",   "Ελλάδα", "🙂", "a|b||", "tab\there",
};

/* Bytes the server must remove from a message: control characters (C0,
 * DEL, C1 raw or in UTF-8) and bytes that are no UTF-8. */
static const struct bytes dirt[] = {
    {BYTES("\x1b[31m")}, {BYTES("\x07")},
    {BYTES("\x00")},     {BYTES("\x7f")},
    {BYTES("\r")},       {BYTES("\x01")},
    {BYTES("\xc2\x85")}, {BYTES("\x85")},
    {BYTES("\xff")},     {BYTES("\xe4\xbd")},
    {BYTES("\xc0\xaf")}, {BYTES("\xed\xa0\x80")},
    {BYTES("\xfe")},     {BYTES("\xf4\x90\x80\x80")},
};

/* Public messages that only look like commands. */
static const char *const not_commands[] = {
    "who am i",   "WHO",       " who",      "whois",     "rename bob",
    "rename:bob", "to bob hi", "to:bob|hi", "TO|bob|hi",
};

/* Valid names, few enough that clients often want the same one. */
static const char *const shared_names[] = {
    "alice",
    "bob",
    "carol",
    "dave",
    "张三",
    "zoë",
    "ναυτίλος",
    "a:b",
    "x",
    "[brackets]",
    "abcdefghijklmnopqrstuvwxyz012345", /* 32 bytes */
    "éééééééééééééééé",                 /* 32 bytes */
};

/* Names to refuse: empty, with a space, TAB or '|', with a control or an
 * invisible character, with bytes that are no UTF-8, too long. */
static const struct bytes invalid_names[] = {
    {BYTES("")},
    {BYTES("two words")},
    {BYTES("tab\tname")},
    {BYTES("a|b")},
    {BYTES("bell\x07")},
    {BYTES("nul\x00name")},
    {BYTES("del\x7f")},
    {BYTES("c1\xc2\x85")},
    {BYTES("zero\xe2\x80\x8b"
           "width")},
    {BYTES("bidi\xe2\x80\xae"
           "flip\xe2\x80\xac")}, /* U+202E ... U+202C */
    {BYTES("\xef\xbb\xbf"
           "bom")},
    {BYTES("bad\xff")},
    {BYTES("cut\xe4\xbd")},
    {BYTES("overlong\xc0\xaf")},
    {BYTES("abcdefghijklmnopqrstuvwxyz0123456")}, /* 33 bytes */
    {BYTES("ééééééééééééééééx")},                 /* 33 bytes */
};

/* Names shaped like an address: kept for newcomers, so taken. */
static const char *const address_names[] = {
    "10.0.0.7:8080",
    "[::1]:8888",
    "[2001:db8::7]:443",
    "127.0.0.1:1",
};

/* Names of nobody, and names no one can have: errors known in advance. */
static const struct bytes unknown_names[] = {
    {BYTES("nobody")},   {BYTES("no such")},        {BYTES("BOB")},
    {BYTES("gh\x1bst")}, {BYTES("b\xc2\x9bo\xff")}, {BYTES("nul\x00x")},
};

/* to| without a NAME or a TEXT, or with a TEXT of control characters. */
static const char *const usage_lines[] = {
    "to|", "to|bob", "to|bob|", "to||hi", "to||", "to|bob|\x1b\x07\x7f",
};

/* A client chosen at random among those online, but c; or NULL. */
static struct client *someone_online(struct client *c)
{
    size_t n = 0, pick;

    for (size_t i = 0; i < client_count; i++)
        n += clients[i] != c && clients[i]->state == ACTIVE;
    if (n == 0)
        return NULL;
    pick = rng_below(&c->rng, n);
    for (size_t i = 0; i < client_count; i++)
        if (clients[i] != c && clients[i]->state == ACTIVE && pick-- == 0)
            return clients[i];
    return NULL;
}

/* A client that left, chosen at random; or NULL. */
static struct client *someone_gone(struct client *c)
{
    struct client *last = NULL;
    size_t n = 0, pick;

    for (size_t i = 0; i < client_count; i++) {
        if (clients[i]->state != GONE)
            continue;
        n++;
        if (!last || clients[i]->left_op > last->left_op)
            last = clients[i];
    }
    /* Half the time the last to leave: the server may not know yet. */
    if (n == 0 || rng_coin(&c->rng))
        return last;
    pick = rng_below(&c->rng, n);
    for (size_t i = 0; i < client_count; i++)
        if (clients[i]->state == GONE && pick-- == 0)
            return clients[i];
    return NULL;
}

/*
 * Adds a line to c's operation: its bytes, then an LF, or a CR LF now and
 * then; and the answer it waits for, with text (taken over) as that answer
 * needs.
 */
static struct line *add_line(struct client *c, const char *bytes, size_t len,
                             enum answer answer, char *text)
{
    struct line *l = &c->lines[c->line_count++];
    bool crlf = rng_percent(&c->rng, CRLF_PERCENT);

    append(&c->out, &c->out_len, &c->out_cap, bytes, len);
    append(&c->out, &c->out_len, &c->out_cap, crlf ? "\r\n" : "\n",
           crlf ? 2 : 1);
    *l = (struct line){answer, text, NULL};
    return l;
}

/* Dirt the server must clean away, added to t. */
static void add_dirt(struct client *c, struct text *t)
{
    const struct bytes *d = &dirt[rng_below(&c->rng, COUNT(dirt))];

    text_add(t, d->s, d->len);
}

/*
 * A public message of a few words, tagged "#SERIAL.SEQ" to tell it from
 * the others; now and then one that only looks like a command, or one with
 * dirt between its words.
 */
static void add_public(struct client *c)
{
    bool like_command = rng_percent(&c->rng, LIKE_PERCENT);
    bool dirty = !like_command && rng_percent(&c->rng, DIRTY_PERCENT);
    struct text t = {0};

    if (like_command) {
        const char *s = not_commands[rng_below(&c->rng, COUNT(not_commands))];

        text_add(&t, s, strlen(s));
    }
    for (unsigned i = 0, n = 1 + rng_below(&c->rng, MAX_WORDS); i < n; i++) {
        if (dirty)
            add_dirt(c, &t);
        text_addf(&t, "%s%s", t.len ? " " : "",
                  words[rng_below(&c->rng, COUNT(words))]);
    }
    text_addf(&t, " #%d.%u", c->serial, ++c->seq);
    add_line(c, t.s, t.len, ANSWER_ECHO, clean(t.s, t.len, false));
    free(t.s);
}

/* who, followed by a public message: an answer to who has no end line of
 * its own, and two of them in a row could not be told apart. */
static void add_who(struct client *c)
{
    add_line(c, "who", 3, ANSWER_WHO, NULL);
    add_public(c);
}

/* An empty line, or one of control characters only: both ignored. */
static void add_empty(struct client *c)
{
    if (rng_coin(&c->rng))
        add_line(c, "", 0, ANSWER_NOTHING, NULL);
    else
        add_line(c, "\x07\x1b\x7f", 3, ANSWER_NOTHING, NULL);
}

/* A line of exactly MAX_LINE bytes, relayed; or a longer one, refused. */
static void add_long(struct client *c)
{
    /* Bytes past MAX_LINE: just over, or far over. */
    static const size_t extra[] = {1, 2, 100, MAX_LINE, 2 * MAX_LINE + 7};
    static const char *const starts[] = {"", "to|bob|", "rename|", "who"};
    const char *start = starts[rng_below(&c->rng, COUNT(starts))];
    bool exact = rng_percent(&c->rng, EXACT_PERCENT);
    size_t len =
        MAX_LINE + (exact ? 0 : extra[rng_below(&c->rng, COUNT(extra))]);
    struct text t = {0};

    if (exact)
        start = "";
    text_addf(&t, "%s#%d.%u ", start, c->serial, ++c->seq);
    while (t.len < len)
        text_add(&t, "y", 1);
    if (exact)
        add_line(c, t.s, t.len, ANSWER_ECHO, copy(t.s));
    else
        add_line(c, t.s, t.len, ANSWER_ERROR, copy(ERR_TOO_LONG));
    free(t.s);
}

/* The names a rename asks for. Those before RENAME_FRESH are refused for
 * sure: invalid, an address, or taken (c's own, or when c's name may change
 * earlier in the operation, its address or another's). */
enum rename_kind {
    RENAME_INVALID,
    RENAME_ADDRESS,
    RENAME_TAKEN,
    RENAME_FRESH,  /* "uSERIAL.SEQ": nobody else has it */
    RENAME_SHARED, /* one that others may want too */
    RENAME_KINDS
};

static const unsigned rename_weights[RENAME_KINDS] = {
    [RENAME_INVALID] = 2, [RENAME_ADDRESS] = 1, [RENAME_TAKEN] = 1,
    [RENAME_FRESH] = 1,   [RENAME_SHARED] = 2,
};

static struct text rename_target(struct client *c, bool may_race)
{
    struct text name = {0};
    const struct bytes *b;
    struct client *other;
    const char *s = NULL;

    text_add(&name, "", 0);
    switch (rng_weighted(&c->rng, rename_weights,
                         may_race ? RENAME_KINDS : RENAME_FRESH)) {
    case RENAME_INVALID:
        b = &invalid_names[rng_below(&c->rng, COUNT(invalid_names))];
        text_add(&name, b->s, b->len);
        break;
    case RENAME_ADDRESS:
        s = address_names[rng_below(&c->rng, COUNT(address_names))];
        break;
    case RENAME_TAKEN:
        other = someone_online(c);
        s = other && rng_coin(&c->rng) ? other->addr
            : may_race                 ? c->name
                                       : c->addr;
        break;
    case RENAME_FRESH:
        text_addf(&name, "u%d.%u", c->serial, ++c->seq);
        break;
    default:
        s = shared_names[rng_below(&c->rng, COUNT(shared_names))];
    }
    if (s)
        text_add(&name, s, strlen(s));
    return name;
}

/* rename|NAME: refused when NAME is invalid or surely taken; else it is
 * the server that knows whether NAME is free. */
static void add_rename(struct client *c, bool may_race)
{
    struct text name = rename_target(c, may_race), line = {0};

    text_add(&line, "rename|", strlen("rename|"));
    text_add(&line, name.s, name.len);
    if (!name_is_valid(name.s, name.len))
        add_line(c, line.s, line.len, ANSWER_ERROR, copy(ERR_INVALID_NAME));
    else if (name_is_address(name.s) || strcmp(name.s, c->name) == 0)
        add_line(c, line.s, line.len, ANSWER_ERROR, format(ERR_TAKEN, name.s));
    else
        add_line(c, line.s, line.len, ANSWER_RENAME, copy(name.s));
    free(line.s);
    free(name.s);
}

/* A private message's text, tagged "p#SERIAL.SEQ" so that its recipient
 * can tell which one it is; now and then with '|' or dirt in it. */
static struct text whisper_text(struct client *c)
{
    struct text t = {0};

    text_addf(&t, "p#%d.%u", c->serial, ++c->seq);
    for (unsigned i = 0, n = 1 + rng_below(&c->rng, MAX_WORDS); i < n; i++) {
        if (rng_percent(&c->rng, DIRT_PERCENT))
            add_dirt(c, &t);
        text_addf(&t, " %s", words[rng_below(&c->rng, COUNT(words))]);
    }
    return t;
}

/* Keeps a record of a private message, so that whoever receives it can
 * tell whether it was meant for them. */
static struct whisper *whisper_new(struct client *c, const char *to,
                                   const struct text *text)
{
    struct whisper *w = must(calloc(1, sizeof *w));

    w->from = c;
    w->to = copy(to);
    w->text = clean(text->s, text->len, false);
    w->op = c->op;
    whispers = grow(whispers, &whisper_cap, whisper_count + 1,
                    sizeof(struct whisper *));
    whispers[whisper_count++] = w;
    return w;
}

/* A private message to a name someone may have: the answer depends on
 * who has the name when the server takes the line. */
static void add_whisper_to(struct client *c, const char *to)
{
    struct text text = whisper_text(c), line = {0};
    struct whisper *w = whisper_new(c, to, &text);

    text_addf(&line, "to|%s|", to);
    text_add(&line, text.s, text.len);
    if (strcmp(to, c->name) == 0)
        add_line(c, line.s, line.len, ANSWER_TO_SELF, copy(w->text))->whisper =
            w;
    else
        add_line(c, line.s, line.len, ANSWER_WHISPER, NULL)->whisper = w;
    free(text.s);
    free(line.s);
}

/* A private message to a name nobody can have: refused, the name shown
 * with '?' for its control characters and bytes that are no UTF-8. */
static void add_whisper_to_nobody(struct client *c)
{
    const struct bytes *name =
        &unknown_names[rng_below(&c->rng, COUNT(unknown_names))];
    struct text text = whisper_text(c), line = {0};
    char *shown_name = clean(name->s, name->len, true);

    text_add(&line, "to|", 3);
    text_add(&line, name->s, name->len);
    text_add(&line, "|", 1);
    text_add(&line, text.s, text.len);
    add_line(c, line.s, line.len, ANSWER_ERROR, format(ERR_NO_USER, shown_name))
        ->whisper = whisper_new(c, shown_name, &text);
    free(shown_name);
    free(text.s);
    free(line.s);
}

/* Whom a private message goes to. Those before TO_SELF get an answer
 * known in advance: to| malformed, or a name nobody can have. */
enum whisper_kind {
    TO_MALFORMED,
    TO_NOBODY,
    TO_SELF,
    TO_GONE,   /* by the name it had */
    TO_ONLINE, /* by the name it has, as far as the model knows */
    WHISPER_KINDS
};

static const unsigned whisper_weights[WHISPER_KINDS] = {
    [TO_MALFORMED] = 1, [TO_NOBODY] = 1, [TO_SELF] = 1,
    [TO_GONE] = 1,      [TO_ONLINE] = 4,
};

/* to|NAME|TEXT, to someone or to nobody, or malformed. */
static void add_whisper(struct client *c, bool may_race)
{
    unsigned kind = rng_weighted(&c->rng, whisper_weights,
                                 may_race ? WHISPER_KINDS : TO_SELF);
    struct client *to = kind == TO_GONE     ? someone_gone(c)
                        : kind == TO_ONLINE ? someone_online(c)
                                            : NULL;
    const char *line = usage_lines[rng_below(&c->rng, COUNT(usage_lines))];

    if (kind == TO_MALFORMED)
        add_line(c, line, strlen(line), ANSWER_ERROR, copy(ERR_USAGE));
    else if (kind == TO_NOBODY)
        add_whisper_to_nobody(c);
    else
        add_whisper_to(c, to ? to->name : c->name);
}

enum op_kind {
    OP_PUBLIC,
    OP_WHO,
    OP_RENAME,
    OP_WHISPER,
    OP_EMPTY,
    OP_LONG,
    OP_SEVERAL, /* several of the above in one go */
    OP_CLOSE,   /* close at once, now and then after half a line */
    OP_QUIT,    /* a last line, then a half-close */
    OP_KINDS
};

/* How often each kind of operation comes, relative to the others. */
static const unsigned op_weights[OP_KINDS] = {
    [OP_PUBLIC] = 30,  [OP_WHO] = 8,   [OP_RENAME] = 14,
    [OP_WHISPER] = 16, [OP_EMPTY] = 4, [OP_LONG] = 4,
    [OP_SEVERAL] = 14, [OP_CLOSE] = 2, [OP_QUIT] = 2,
};

/* A kind of operation, chosen by weight, below limit. */
static enum op_kind pick_kind(struct client *c, enum op_kind limit)
{
    return (enum op_kind)rng_weighted(&c->rng, op_weights, limit);
}

/* Whether the line's answer depends on names others may take: the one
 * such line an operation may have, so that it is the only unknown. */
static bool line_races(const struct line *l)
{
    return l->answer == ANSWER_RENAME || l->answer == ANSWER_WHISPER ||
           l->answer == ANSWER_TO_SELF;
}

/* Adds a line of the given kind; returns whether it races. */
static bool add_kind(struct client *c, enum op_kind kind, bool may_race)
{
    switch (kind) {
    case OP_WHO:
        add_who(c);
        break;
    case OP_RENAME:
        add_rename(c, may_race);
        break;
    case OP_WHISPER:
        add_whisper(c, may_race);
        break;
    case OP_EMPTY:
        add_empty(c);
        break;
    case OP_LONG:
        add_long(c);
        break;
    default:
        add_public(c);
    }
    return line_races(&c->lines[c->line_count - 1]);
}

static int compare_offsets(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

/* Cuts the bytes of the operation into several writes, at random places
 * (in a UTF-8 character, between CR and LF, anywhere). */
static void cut_into_pieces(struct client *c)
{
    int n = 1 + (int)rng_below(&c->rng, MAX_CUTS), kept = 0;

    if (c->out_len < 2)
        return;
    for (int i = 0; i < n; i++)
        c->cuts[i] = 1 + rng_below(&c->rng, c->out_len - 1);
    qsort(c->cuts, (size_t)n, sizeof *c->cuts, compare_offsets);
    for (int i = 0; i < n; i++) /* the same place twice is one cut */
        if (kept == 0 || c->cuts[kept - 1] != c->cuts[i])
            c->cuts[kept++] = c->cuts[i];
    c->cut_count = kept;
}

/* What the operation sends, line by line, and in how many writes. */
static char *describe_op(const struct client *c)
{
    struct text t = {0};
    size_t start = 0;

    while (start < c->out_len) {
        const char *lf = memchr(c->out + start, '\n', c->out_len - start);
        size_t end = lf ? (size_t)(lf - c->out) + 1 : c->out_len;

        text_addf(&t, "'%s' ", shown(c->out + start, end - start));
        start = end;
    }
    text_addf(&t, "in %d write%s", c->cut_count + 1, c->cut_count ? "s" : "");
    if (c->state == QUITTING)
        text_addf(&t, ", then a half-close");
    return text_take(&t);
}

static void op_begin(struct client *c)
{
    c->op = ++ops_started;
    c->line_count = c->next_line = 0;
    c->out_len = c->out_sent = 0;
    c->cut_count = c->next_cut = 0;
    c->next_piece = 0;
    c->line_since = c->heard;
    c->deadline = now_ms() + WAIT_MS;
    free(c->what);
    c->what = NULL;
}

/*
 * Ends the planning of an operation. Its last line must be answered, so
 * that the client knows when the server has taken all of it: a line that
 * may go unanswered is followed by a public message.
 */
static void op_end(struct client *c)
{
    enum answer last = c->lines[c->line_count - 1].answer;

    if (last == ANSWER_NOTHING || last == ANSWER_WHISPER)
        add_public(c);
    if (rng_percent(&c->rng, CUT_PERCENT))
        cut_into_pieces(c);
    c->busy = true;
    c->what = describe_op(c);
    for (int i = 0; i < c->line_count; i++)
        if (c->lines[i].whisper)
            c->lines[i].whisper->what = copy(c->what);
    if (opt.verbose)
        printf("#%d client %d: %s\n", c->op, c->serial, c->what);
}

/* All the lines of c's operation were answered. */
static void op_finished(struct client *c)
{
    for (int i = 0; i < c->line_count; i++)
        free(c->lines[i].text);
    c->line_count = c->next_line = 0;
    c->busy = false;
}

/* Leaves at once: a plain close, or half a line and a close. The half
 * line must never be relayed. */
static void op_close(struct client *c)
{
    struct text tail = {0};

    text_addf(&tail, HALF_LINE " #%d.%u", c->serial, ++c->seq);
    if (rng_percent(&c->rng, TAIL_PERCENT)) {
        if (write(c->fd, tail.s, tail.len) < 0 && errno != EAGAIN &&
            errno != EWOULDBLOCK)
            FAIL(c, "writing to the connection of %s failed: %s", label(c),
                 strerror(errno));
        c->what = format("'%s', then a close", tail.s);
    } else {
        c->what = copy("nothing, and closed its connection");
    }
    free(tail.s);
    c->left_op = c->op;
    client_close(c);
    if (opt.verbose)
        printf("#%d client %d: %s\n", c->op, c->serial, c->what);
}

/* Leaves with a last line and a half-close, now and then with half a
 * line after it; reads on until the server closes. */
static void op_quit(struct client *c)
{
    add_public(c);
    if (rng_percent(&c->rng, TAIL_PERCENT))
        append(&c->out, &c->out_len, &c->out_cap, HALF_LINE, strlen(HALF_LINE));
    c->quit_after = true;
    c->state = QUITTING;
    c->left_op = c->op;
    op_end(c);
}

/* c starts its next operation, chosen at random. The watcher stays. */
static void start_operation(struct client *c)
{
    enum op_kind kind = pick_kind(c, c == watcher ? OP_CLOSE : OP_KINDS);

    op_begin(c);
    if (kind == OP_CLOSE) {
        op_close(c);
    } else if (kind == OP_QUIT) {
        op_quit(c);
    } else if (kind == OP_SEVERAL) {
        bool raced = false;

        for (unsigned i = 0, n = 2 + rng_below(&c->rng, MAX_SEVERAL - 1); i < n;
             i++)
            raced |= add_kind(c, pick_kind(c, OP_SEVERAL), !raced);
        op_end(c);
    } else {
        add_kind(c, kind, true);
        op_end(c);
    }
}

/* ------------------------------------------------------------- The run */

enum phase {
    PLAYING,  /* clients join and start operations */
    SETTLING, /* the operations under way are finished */
    LEAVING,  /* every client but the watcher half-closes */
};

static size_t clients_here(void)
{
    size_t n = 0;

    for (size_t i = 0; i < client_count; i++)
        n += clients[i]->state != GONE;
    return n;
}

/* Whether a client still waits for something from the server. */
static bool waiting(const struct client *c)
{
    return c->state == JOINING || c->state == QUITTING || c->busy;
}

/* Whether c may start its next operation. The server refuses an overlong
 * line before it has all of it: the rest must still be sent. */
static bool free_to_start(const struct client *c)
{
    return c->state == ACTIVE && !c->busy && c->out_sent == c->out_len;
}

static bool anyone_waiting(void)
{
    for (size_t i = 0; i < client_count; i++)
        if (waiting(clients[i]) ||
            (clients[i]->state == ACTIVE && !free_to_start(clients[i])))
            return true;
    return false;
}

/* Starts what the phase allows: operations for the clients that are free,
 * and a newcomer, one at a time, so that they arrive in the order they
 * connected. */
static void start_work(void)
{
    bool joining = false;

    for (size_t i = 0; i < client_count; i++) {
        struct client *c = clients[i];

        joining |= c->state == JOINING;
        if (free_to_start(c) && ops_started < opt.ops)
            start_operation(c);
    }
    if (!joining && clients_here() < (size_t)opt.clients)
        client_connect();
}

/* Every client but the watcher half-closes, and reads until the end. */
static void start_leaving(void)
{
    for (size_t i = 1; i < client_count; i++) {
        struct client *c = clients[i];

        if (c->state != ACTIVE)
            continue;
        if (shutdown(c->fd, SHUT_WR) < 0)
            FAIL(c, "cannot half-close the connection of %s: %s", label(c),
                 strerror(errno));
        c->state = QUITTING;
        c->op = 0; /* reports say the run was over */
        c->deadline = now_ms() + WAIT_MS;
    }
}

/* The longest poll() may sleep: until the next piece of output is due. */
static int poll_timeout(long long now)
{
    long long timeout = TURN_MS;

    for (size_t i = 0; i < client_count; i++) {
        const struct client *c = clients[i];

        if (c->fd >= 0 && c->out_sent < c->out_len && c->next_piece > now &&
            c->next_piece - now < timeout)
            timeout = c->next_piece - now;
    }
    return (int)timeout;
}

/* One turn: waits for sockets ready to read or write, then reads, writes,
 * and lets connections that went through begin. */
static void poll_clients(void)
{
    static struct pollfd *fds;
    static struct client **owners;
    static size_t fds_cap, owners_cap;
    long long now = now_ms();
    size_t n = 0;

    fds = grow(fds, &fds_cap, client_count, sizeof *fds);
    owners = grow(owners, &owners_cap, client_count, sizeof(struct client *));
    for (size_t i = 0; i < client_count; i++) {
        struct client *c = clients[i];

        if (c->fd < 0)
            continue;
        fds[n] = (struct pollfd){c->fd, c->connected ? POLLIN : 0, 0};
        if (wants_to_write(c, now))
            fds[n].events |= POLLOUT;
        owners[n++] = c;
    }
    if (poll(fds, n, poll_timeout(now)) < 0 && errno != EINTR)
        trouble("poll failed: %s", strerror(errno));
    for (size_t i = 0; i < n; i++) {
        struct client *c = owners[i];
        short revents = fds[i].revents;

        if (!c->connected && revents)
            client_connected(c);
        else if (revents & (POLLIN | POLLERR | POLLHUP))
            client_read(c);
        if (c->fd >= 0 && c->connected && (revents & POLLOUT))
            client_write(c, now_ms());
    }
}

/* Fails a client that waited too long, saying what for. */
static void check_deadlines(void)
{
    long long now = now_ms();

    for (size_t i = 0; i < client_count; i++) {
        struct client *c = clients[i];

        if (c->fd < 0 || !waiting(c) || now <= c->deadline)
            continue;
        if (c->state == JOINING)
            FAIL(c,
                 "%s waited %d s to hear its own arrival, '[%s]%s is "
                 "online'",
                 label(c), WAIT_MS / 1000, c->addr, c->addr);
        if (c->busy)
            FAIL(c,
                 "%s waited %d s for %s\n  as the answer to its line %d; "
                 "%zu of its %zu bytes were sent",
                 label(c), WAIT_MS / 1000,
                 expected_words(c, &c->lines[c->next_line]), c->next_line + 1,
                 c->out_sent, c->out_len);
        FAIL(c,
             "%s half-closed its connection, and waited %d s for the "
             "server to close it",
             label(c), WAIT_MS / 1000);
    }
}

/* Whether everything the leavers did is in the reference order, and every
 * check has been made. */
static bool all_accounted_for(void)
{
    for (size_t i = 1; i < client_count; i++)
        if (clients[i]->state != GONE || clients[i]->left == NONE ||
            clients[i]->unchecked_len > 0)
            return false;
    return fact_count == 0 && !watcher->busy;
}

/* The run is over, and something never came: says what. */
static void fail_unaccounted(void)
{
    for (size_t i = 1; i < client_count; i++) {
        struct client *x = clients[i];

        if (x->unchecked_len > 0)
            FAIL(x, "%s heard '%s', which the watcher never heard", label(x),
                 shown_line(x->unchecked[x->unchecked_head]));
        if (x->left == NONE)
            fail(x, x->left_op, x->what,
                 "%s left, but the watcher never heard it go, '[%s]%s is "
                 "offline', within %d s",
                 label(x), x->addr, x->name, WAIT_MS / 1000);
    }
    fail(facts[0]->c, facts[0]->op, facts[0]->what,
         "a check of this operation was never made: the watcher did not "
         "get that far");
}

/* A private message that was not refused went to whoever had its name;
 * if that one read everything it was due, it must have heard it. */
static void check_whispers_delivered(void)
{
    for (size_t i = 0; i < whisper_count; i++) {
        struct whisper *w = whispers[i];
        struct client *holder = NULL;
        bool several = false;

        if (w->outcome != WHISPER_SENT || w->reader)
            continue;
        for (size_t n = w->first; n <= w->last; n++) {
            struct client *x = holder_at(w->to, place_of(w->from, n), NULL);

            several |= x && holder && x != holder;
            holder = x ? x : holder;
        }
        if (!holder)
            fail(w->from, w->op, w->what,
                 "%s was not told there is no user named \"%s\", though "
                 "nobody had that name while the line was taken",
                 label(w->from), w->to);
        if (!several && (holder == watcher || holder->heard_all))
            fail(w->from, w->op, w->what,
                 "%s sent \"%s\" to \"%s\" and was not told there is no "
                 "such user, yet nobody heard it: %s had that name while the "
                 "line was taken, and read everything until it left",
                 label(w->from), shown_line(w->text), w->to, label(holder));
    }
}

/*
 * The run: clients join and play until -ops operations have started or
 * -seconds have passed, finish what they started, and leave.
 */
static void run(void)
{
    enum phase phase = PLAYING;
    long long stop_at = run_start + opt.seconds * 1000, leave_by = 0;

    client_connect();
    watcher = clients[0];
    for (;;) {
        long long now = now_ms();

        if (phase == PLAYING && (ops_started >= opt.ops || now >= stop_at))
            phase = SETTLING;
        if (phase == SETTLING && !anyone_waiting()) {
            start_leaving();
            phase = LEAVING;
            leave_by = now + WAIT_MS;
        }
        if (phase == LEAVING && all_accounted_for())
            return;
        if (phase == LEAVING && now > leave_by)
            fail_unaccounted();
        if (phase == PLAYING)
            start_work();
        poll_clients();
        for (size_t i = 0; i < client_count; i++)
            check_unchecked(clients[i]);
        check_facts();
        check_deadlines();
    }
}

/* ------------------------------------------------------------ The start */

/* How to use the program: a format, with the defaults to fill in. */
static const char usage[] =
    "usage: model [-ip ADDR] [-port PORT] [-seed N] [-clients N] [-ops N]\n"
    "             [-seconds S] [-v]\n"
    "  -ip ADDR     the server's address (default " DEFAULT_IP ")\n"
    "  -port PORT   the server's port (default " DEFAULT_PORT ")\n"
    "  -seed N      the seed of the random choices (default: a new one)\n"
    "  -clients N   clients online at once, at most (default %d)\n"
    "  -ops N       operations to start, at most (default %d)\n"
    "  -seconds S   seconds to start them in, at most (default %d)\n"
    "  -v           print each operation as it starts\n";

static void print_usage(FILE *out)
{
    fprintf(out, usage, DEFAULT_CLIENTS, DEFAULT_OPS, DEFAULT_SECONDS);
}

/* Says what is wrong on the command line, if what is not empty, then how
 * to use the program; exits with EXIT_TROUBLE. */
static void usage_error(const char *what, const char *arg)
{
    if (what[0])
        fprintf(stderr, "model: %s %s\n", what, arg);
    print_usage(stderr);
    exit(EXIT_TROUBLE);
}

/* The value of a numeric option, from min to max. */
static unsigned long long number(const char *option, const char *value,
                                 unsigned long long min, unsigned long long max)
{
    unsigned long long n;
    char *end;

    errno = 0;
    n = strtoull(value, &end, 10);
    if (!value[0] || value[strspn(value, "0123456789")] != '\0' || errno ||
        n < min || n > max) {
        fprintf(stderr, "model: invalid value for %s: %s (use %llu to %llu)\n",
                option, value, min, max);
        usage_error("", "");
    }
    return n;
}

/* A seed for a run that was given none: short, to be easy to type. */
static unsigned long long new_seed(void)
{
    struct timespec now;
    struct rng r;

    if (clock_gettime(CLOCK_REALTIME, &now) < 0)
        trouble("cannot read the clock: %s", strerror(errno));
    r.state = (uint64_t)now.tv_sec * RNG_MIX_1 ^ (uint64_t)now.tv_nsec ^
              (uint64_t)getpid() << 32;
    return rng_next(&r) % NEW_SEED_LIMIT;
}

static void parse_options(int argc, char **argv)
{
    bool seeded = false;

    for (int i = 1; i < argc; i++) {
        const char *option = argv[i], *value = i + 1 < argc ? argv[i + 1] : "";

        if (strcmp(option, "-h") == 0) {
            print_usage(stdout);
            exit(EXIT_PASSED);
        } else if (strcmp(option, "-v") == 0) {
            opt.verbose = true;
            continue;
        } else if (i + 1 == argc) {
            usage_error(strncmp(option, "-", 1) == 0 ? "missing value for"
                                                     : "unknown argument",
                        option);
        } else if (strcmp(option, "-ip") == 0) {
            opt.ip = value;
        } else if (strcmp(option, "-port") == 0) {
            number(option, value, 1, PORT_COUNT - 1);
            opt.port = value;
        } else if (strcmp(option, "-seed") == 0) {
            opt.seed = number(option, value, 0, UINT64_MAX);
            seeded = true;
        } else if (strcmp(option, "-clients") == 0) {
            opt.clients = (long)number(option, value, 2, MAX_CLIENTS);
        } else if (strcmp(option, "-ops") == 0) {
            opt.ops = (long)number(option, value, 1, MAX_OPS);
        } else if (strcmp(option, "-seconds") == 0) {
            opt.seconds = (long)number(option, value, 1, MAX_SECONDS);
        } else {
            usage_error("unknown option", option);
        }
        i++;
    }
    if (!seeded)
        opt.seed = new_seed();
    snprintf(replay, sizeof replay,
             "%s -ip %s -port %s -seed %llu -clients %ld -ops %ld "
             "-seconds %ld",
             argv[0], opt.ip, opt.port, opt.seed, opt.clients, opt.ops,
             opt.seconds);
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    /* A write to a connection the server closed must fail, not kill. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        trouble("cannot ignore SIGPIPE: %s", strerror(errno));
    resolve_server();
    printf("model: seed %llu\n", opt.seed);
    fflush(stdout);
    run_start = now_ms();
    run();
    check_whispers_delivered();
    printf("model: passed with seed %llu in %.1f s: %d operations by %zu "
           "clients; %lu lines heard, each as the model said; %zu "
           "broadcasts in one order; %lu answers to who; %lu renames, %lu "
           "refused as taken; %lu private messages, %lu to nobody; %lu "
           "departures\n",
           opt.seed, (double)(now_ms() - run_start) / 1000, ops_started,
           client_count, tally.lines, order_len, tally.who, tally.renamed,
           tally.taken, tally.whispered, tally.refused, tally.left);
    client_close(watcher);
    return EXIT_PASSED;
}
