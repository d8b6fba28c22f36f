/*
 * lines.c - a libFuzzer target for what the chat server does with the bytes
 * its users send: step 8's user.c, unchanged, fed through its real path.
 *
 * The fuzzer's bytes are a script for a few clients, each connected to the
 * server's code by a socket pair. Most bytes are text, which the current
 * client writes to its socket; bytes from 0xf8 up are markers (see enum
 * marker) that pick another client, turn the server's loop, make a client
 * stop reading or hang up, bring a newcomer, kick an idle user or shut the
 * server down. Text reaches the server in as many reads as the markers cut
 * it into, and the harness turns the loop as server.c does: poll, read,
 * one line from each user, flush, trim, reap. After every step it checks
 * what must hold whatever the users send, and aborts if something does not:
 *
 *  - the shared output, and every byte a client hears, is lines of clean
 *    text (valid UTF-8, no control character but TAB), each non-empty, at
 *    most MAX_MESSAGE bytes with its LF, and a client that was not cut off
 *    hears its last line whole;
 *  - a client hears exactly the output meant for everyone and the asides
 *    meant for it, in order: nothing lost, nothing meant for another (who
 *    a line is for is taken from the asides: a wrong aside goes unseen);
 *  - the asides are in order, inside the output and on line boundaries, no
 *    user's position is inside an aside meant for another, and trimming
 *    the output leaves every user with the same bytes still to hear;
 *  - every user online has a valid name, or its address, and no two have
 *    the same;
 *  - the server lets everyone go once they leave, and frees every byte and
 *    closes every socket (AddressSanitizer reports leaks).
 *
 * Each input is also cleaned whole by clean_text() and decoded at every
 * offset by utf8_decode(), and its first bytes are tried as names, and the
 * results compared with reference.c, which states the rules another way.
 *
 * user.c is included rather than linked: its decoder, its cleaner and its
 * shared output are static, and the checks must reach them. Including the
 * file compiles exactly what the server is built from, untouched; the
 * NOLINT there tells clang-tidy it is done on purpose. The few functions
 * user.c takes from server.c are played by small stand-ins here.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../step8-timeout/user.c" /* NOLINT(bugprone-suspicious-include) */
#include "reference.h"

/*
 * The script's markers. They are the bytes 0xf8-0xff, which UTF-8 never
 * uses: user.c rejects them by the same comparison as 0xf5-0xf7, which
 * remain text, so marking with them hides no path through the decoder.
 * The direct check of clean_text() still sees every byte.
 */
enum marker {
    PICK_CLIENT = 0xf8, /* the next byte % MAX_CLIENTS picks the client */
    TURN,               /* one turn of the server's loop */
    SHUT,               /* the client has sent all it will: shutdown() */
    HANG_UP,            /* the client closes its socket, unread or not */
    JOIN,               /* a newcomer connects, and becomes the client */
    STALL,              /* the client stops reading, or reads again */
    IDLE,               /* the server kicks the client's user as idle */
    STOP,               /* SIGTERM: the server shuts down */
};

#define MAX_CLIENTS   8       /* connected at once, at most */
#define FIRST_CLIENTS 3       /* connected at the start: enough to meet */
#define TURN_MS       100     /* the clock's step at each turn of the loop */
#define IDLE_SECONDS  300     /* what the kick says: server.c's default */
#define START_MS      1000000 /* the clock at the start: any time will do */
#define SEND_PATIENCE 10000   /* turns a client waits for room to send */

/* ------------------------------------------------------------- Reporting */

#ifdef __GNUC__
#define NO_RETURN __attribute__((noreturn))
#else
#define NO_RETURN
#endif

/* Says which property failed, and aborts: libFuzzer keeps the input. */
static void fail(const char *format, ...) PRINTF_LIKE(1, 2) NO_RETURN;

static void fail(const char *format, ...)
{
    va_list args;

    fprintf(stderr, "\nfuzz/lines: ");
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n");
    abort();
}

#define SHOWN_BYTES 100 /* of a text quoted in a report */
#define SHOWN_SIZE  (4 * SHOWN_BYTES + 4)

/* Writes the first SHOWN_BYTES of len bytes at s into out, as text a
 * terminal shows as it is: other bytes as \xNN. */
static const char *shown(const void *s, size_t len, char out[SHOWN_SIZE])
{
    const unsigned char *b = s;
    size_t n = 0;

    for (size_t i = 0; i < len && i < SHOWN_BYTES; i++)
        n += (size_t)snprintf(out + n, SHOWN_SIZE - n,
                              b[i] >= 0x20 && b[i] < 0x7f ? "%c" : "\\x%02x",
                              b[i]);
    snprintf(out + n, SHOWN_SIZE - n, "%s", len > SHOWN_BYTES ? "..." : "");
    return out;
}

/* --------------------------------------------- A growing string of bytes */

struct bytes {
    char *data;
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const char *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;

        while (cap < b->len + len)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
            fail("out of memory");
        b->cap = cap;
    }
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

static bool bytes_equal(const struct bytes *a, const struct bytes *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void bytes_free(struct bytes *b)
{
    free(b->data);
    *b = (struct bytes){NULL, 0, 0};
}

/* ----------------------------------------- Stand-ins for server.c's part */

static struct user *table[MAX_CLIENTS]; /* the online table, oldest first */
static size_t table_count;
static long long clock_ms; /* moved by TURN_MS at each turn */

bool server_add_user(struct user *u)
{
    if (table_count == MAX_CLIENTS)
        return false;
    table[table_count++] = u;
    return true;
}

struct user **server_online(size_t *count)
{
    *count = table_count;
    return table;
}

/* As in server.c: users being closed have left, and their names are free. */
struct user *server_find_user(const char *name)
{
    for (size_t i = 0; i < table_count; i++)
        if (!user_is_closing(table[i]) && strcmp(table[i]->name, name) == 0)
            return table[i];
    return NULL;
}

long long now_ms(void)
{
    return clock_ms;
}

/* ------------------------------------------ The output, and who hears it */

/* The output and its asides at one moment: now, or before a trim. */
struct view {
    const char *text;
    size_t len;
    const struct aside *asides;
    size_t count;
};

static struct view view_now(void)
{
    return (struct view){output, out_len, asides, aside_count};
}

/* The aside of v that holds byte pos, or NULL: a bisection of its own. */
static const struct aside *aside_holding(const struct view *v, size_t pos)
{
    size_t low = 0, high = v->count;

    while (low < high) {
        size_t mid = low + (high - low) / 2;

        if (v->asides[mid].end <= pos)
            low = mid + 1;
        else
            high = mid;
    }
    return low < v->count && v->asides[low].start <= pos ? &v->asides[low]
                                                         : NULL;
}

/* Adds to b the bytes of v from from to stop that the user with this id
 * is to hear: all but those in asides meant for others. */
static void add_heard(struct bytes *b, const struct view *v, size_t from,
                      size_t stop, unsigned long long id)
{
    for (size_t pos = from; pos < stop; pos++) {
        const struct aside *a = aside_holding(v, pos);

        if (!a || a->to == id)
            bytes_add(b, v->text + pos, 1);
    }
}

/* Where u stops hearing: the end of the output, or where u was closed. */
static size_t stop_of(size_t out_end, size_t len)
{
    return out_end < len ? out_end : len;
}

/* ---------------------------------------------------------------- Checks */

static size_t output_checked; /* the output up to here has been checked */

/* One line the server said, without its LF: not empty, clean, not too
 * long. */
static void check_line(const char *line, size_t len, const char *where)
{
    char text[SHOWN_SIZE];

    if (len == 0)
        fail("%s: an empty line", where);
    if (len + 1 > MAX_MESSAGE)
        fail("%s: a line of %zu bytes and its LF, more than MAX_MESSAGE", where,
             len);
    if (!ref_is_clean((const unsigned char *)line, len))
        fail("%s: a line that is not clean text: \"%s\"", where,
             shown(line, len, text));
}

/* Checks the whole lines of text from *done to len, and moves *done past
 * them. */
static void check_lines(const char *text, size_t len, size_t *done,
                        const char *where)
{
    const char *lf;

    while (*done < len && (lf = memchr(text + *done, '\n', len - *done))) {
        check_line(text + *done, (size_t)(lf - text) - *done, where);
        *done = (size_t)(lf - text) + 1;
    }
}

/* Everything the server has said since the last look is whole lines. */
static void check_output(void)
{
    if (out_len > 0 && output[out_len - 1] != '\n')
        fail("the shared output ends inside a line");
    check_lines(output, out_len, &output_checked, "the shared output");
}

/* Each aside is inside the output, holds whole lines, and comes after the
 * one before it. */
static void check_asides(void)
{
    for (size_t k = 0; k < aside_count; k++) {
        const struct aside *a = &asides[k];

        if (a->start >= a->end || a->end > out_len)
            fail("aside %zu, [%zu, %zu), is not inside the output of %zu", k,
                 a->start, a->end, out_len);
        if (k > 0 && asides[k - 1].end > a->start)
            fail("aside %zu starts before aside %zu ends", k, k - 1);
        if ((a->start > 0 && output[a->start - 1] != '\n') ||
            output[a->end - 1] != '\n')
            fail("aside %zu, [%zu, %zu), cuts a line", k, a->start, a->end);
    }
}

/* Each user reads from inside the output, and not from inside what is
 * meant for another. */
static void check_positions(void)
{
    struct view v = view_now();

    for (size_t i = 0; i < table_count; i++) {
        const struct user *u = table[i];
        const struct aside *a = aside_holding(&v, u->out_pos);

        if (u->out_pos > out_len)
            fail("%s reads at %zu, past the output's end %zu", u->addr,
                 u->out_pos, out_len);
        if (u->out_end != SIZE_MAX && u->out_end > out_len)
            fail("%s stops at %zu, past the output's end %zu", u->addr,
                 u->out_end, out_len);
        if (a && a->to != u->id && a->start < u->out_pos)
            fail("%s reads at %zu, inside an aside for another", u->addr,
                 u->out_pos);
    }
}

/* Every user online has its address or a valid name, and no other user
 * online has the same. */
static void check_names(void)
{
    char text[SHOWN_SIZE];

    for (size_t i = 0; i < table_count; i++) {
        const struct user *u = table[i];

        if (user_is_closing(u))
            continue;
        if (strcmp(u->name, u->addr) != 0 &&
            !ref_name_is_valid((const unsigned char *)u->name, strlen(u->name)))
            fail("%s has the invalid name \"%s\"", u->addr,
                 shown(u->name, strlen(u->name), text));
        for (size_t j = 0; j < i; j++)
            if (!user_is_closing(table[j]) &&
                strcmp(table[j]->name, u->name) == 0)
                fail("%s and %s are both named \"%s\"", table[j]->addr, u->addr,
                     u->name);
    }
}

static void check_state(void)
{
    check_output();
    check_asides();
    check_positions();
    check_names();
}

/* --------------------------------------------------------------- Clients */

/* The other end of a user's socket, played by the harness. */
struct client {
    bool used;
    int fd;               /* its end of the socket pair */
    struct user *user;    /* the server's side, until the server lets go */
    bool shut;            /* has sent all it will, or hung up */
    bool hung_up;         /* has closed its socket: hears nothing more */
    bool stalled;         /* not reading, for now */
    bool ended;           /* has read the end of the stream */
    bool cut_off;         /* was let go before it had heard everything */
    struct bytes heard;   /* every byte it has read */
    struct bytes meant;   /* every byte the server wrote to it, by the
                             output's account */
    size_t lines_checked; /* heard holds whole lines up to here */
};

static struct client clients[MAX_CLIENTS];
static size_t current;      /* the client the script's text comes from */
static size_t connections;  /* made during this input, for addresses */
static size_t text_written; /* bytes the clients have sent */
static bool stopping;       /* the server is shutting down */

static struct client *client_of(const struct user *u)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].used && clients[i].user == u)
            return &clients[i];
    fail("%s has no client", u->addr);
    return NULL;
}

/*
 * A newcomer: a client connected by a socket pair, and a user for the
 * server's end, named after an address of the kinds the server meets
 * (IPv4, IPv6, IPv4-mapped, IPv6 with a scope), with a port of its own.
 */
static void client_join(void)
{
    static const char *const hosts[] = {"127.0.0.1", "[::1]",
                                        "[::ffff:192.0.2.7]", "[fe80::1%eth0]"};
    char addr[ADDR_LEN];
    struct client *c = NULL;
    int pair[2];

    for (size_t i = 0; i < MAX_CLIENTS && !c; i++)
        if (!clients[i].used)
            c = &clients[i];
    if (!c || stopping) /* no room, or no longer listening */
        return;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0 ||
        fcntl(pair[0], F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(pair[1], F_SETFL, O_NONBLOCK) < 0)
        fail("cannot make a socket pair: %s", strerror(errno));
    snprintf(addr, sizeof addr, "%s:%zu", hosts[connections % 4],
             50000 + connections);
    connections++;
    current = (size_t)(c - clients);
    *c = (struct client){.used = true, .fd = pair[1]};
    c->user = user_new(pair[0], addr);
    if (!c->user || !user_online(c->user))
        fail("cannot take in %s", addr);
}

/* Reports where what c heard parts from what was meant for it. */
static void fail_heard(const struct client *c)
{
    char heard[SHOWN_SIZE], meant[SHOWN_SIZE];
    size_t d = 0;

    while (d < c->heard.len && d < c->meant.len &&
           c->heard.data[d] == c->meant.data[d])
        d++;
    fail("after %zu bytes, a client heard \"%s\", but what was meant for it "
         "was \"%s\"",
         d, shown(c->heard.data + d, c->heard.len - d, heard),
         shown(c->meant.data + d, c->meant.len - d, meant));
}

/* Reads what has come for c, and checks it against what was meant. */
static void client_listen(struct client *c)
{
    char chunk[4096];
    ssize_t n;

    if (!c->used || c->hung_up || c->stalled || c->ended)
        return;
    while ((n = read(c->fd, chunk, sizeof chunk)) > 0)
        bytes_add(&c->heard, chunk, (size_t)n);
    if (n == 0)
        c->ended = true;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        fail("client read: %s", strerror(errno));
    check_lines(c->heard.data, c->heard.len, &c->lines_checked,
                "what a client heard");
    if (!bytes_equal(&c->heard, &c->meant))
        fail_heard(c);
}

/* Lets go of a client whose user is gone and who has heard the end. */
static void client_release(struct client *c)
{
    if (!c->hung_up && !c->cut_off && c->lines_checked != c->heard.len)
        fail("a client heard a last line without its LF");
    if (!c->hung_up)
        close(c->fd);
    bytes_free(&c->heard);
    bytes_free(&c->meant);
    c->used = false;
}

static void release_finished_clients(void)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];

        if (c->used && !c->user && (c->ended || c->hung_up))
            client_release(c);
    }
}

/* ----------------------------------------------------- The server's loop */

static size_t turns; /* taken during this input */

/* Writes what u's socket takes, and adds to what its client should hear
 * the bytes the output says u was given. */
static void flush_user(struct user *u)
{
    struct client *c = client_of(u);
    size_t from = u->out_pos;
    struct view v;

    user_flush(u);
    v = view_now(); /* after: user_flush() may have said u went */
    add_heard(&c->meant, &v, from, u->out_pos, u->id);
}

/* What u has still to hear in v, up to its stop. */
static void add_pending(struct bytes *b, const struct view *v, size_t pos,
                        size_t end, unsigned long long id)
{
    add_heard(b, v, pos, stop_of(end, v->len), id);
}

/* Trims the output, and checks that each user has the same bytes still to
 * hear afterwards as before. */
static void trim_output(void)
{
    char *text = malloc(out_len + 1);
    struct aside *kept = malloc((aside_count + 1) * sizeof *kept);
    struct view before = {text, out_len, kept, aside_count};
    size_t count = table_count, pos[MAX_CLIENTS], end[MAX_CLIENTS];

    if (!text || !kept)
        fail("out of memory");
    if (out_len > 0)
        memcpy(text, output, out_len);
    if (aside_count > 0)
        memcpy(kept, asides, aside_count * sizeof *kept);
    for (size_t i = 0; i < count; i++) {
        pos[i] = table[i]->out_pos;
        end[i] = table[i]->out_end;
    }
    output_trim();
    output_checked = out_len;
    for (size_t i = 0; i < count && out_len != before.len; i++) {
        struct bytes was = {NULL, 0, 0}, is = {NULL, 0, 0};
        struct view after = view_now();
        const struct user *u = table[i];

        add_pending(&was, &before, pos[i], end[i], u->id);
        add_pending(&is, &after, u->out_pos, u->out_end, u->id);
        if (!bytes_equal(&was, &is))
            fail("trimming the output changed what %s has to hear", u->addr);
        bytes_free(&was);
        bytes_free(&is);
    }
    free(text);
    free(kept);
}

/* Closes and forgets the users whose time has come, as server.c does. */
static void reap_users(void)
{
    size_t kept = 0;

    for (size_t i = 0; i < table_count; i++) {
        struct user *u = table[i];

        if (!user_is_closing(u) ||
            (!(u->out_shut && u->in_ended) && clock_ms < u->close_deadline)) {
            table[kept++] = u;
        } else {
            struct client *c = client_of(u);
            int fd = u->fd;

            c->user = NULL;
            c->cut_off = !u->out_shut;
            user_free(u);
            if (fcntl(fd, F_GETFD) != -1)
                fail("the server let a user go, but not its socket");
        }
    }
    table_count = kept;
}

/*
 * One turn, in server.c's order: the clients read what came for them, then
 * the server polls, reads, takes a line from each user, flushes, trims and
 * lets go of those who are done. Returns whether the server had anything
 * to read or a line to handle: false when it sits waiting for its clients.
 */
static bool serve_turn(void)
{
    struct pollfd fds[MAX_CLIENTS];
    size_t polled = table_count;
    bool busy = false;

    turns++;
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        client_listen(&clients[i]);
    for (size_t i = 0; i < polled; i++) {
        struct user *u = table[i];
        short events = user_has_output(u) ? POLLOUT : 0;

        if (!u->in_ended && !user_has_line(u))
            events |= POLLIN;
        fds[i] = (struct pollfd){u->fd, events, 0};
    }
    while (poll(fds, (nfds_t)polled, 0) < 0)
        if (errno != EINTR) /* libFuzzer's own timer signals interrupt it */
            fail("poll: %s", strerror(errno));
    clock_ms += TURN_MS;
    for (size_t i = 0; i < polled; i++) {
        if (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))
            table[i]->out_blocked = false;
        if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) {
            user_read(table[i]);
            busy = true;
        }
    }
    for (size_t i = 0; i < table_count; i++) {
        if (user_take_line(table[i])) {
            table[i]->last_active = clock_ms;
            busy = true;
        }
    }
    check_state();
    for (size_t i = 0; i < table_count; i++)
        flush_user(table[i]);
    check_output();
    trim_output();
    reap_users();
    release_finished_clients();
    check_state();
    return busy;
}

/* ---------------------------------------------------------------- Script */

/* The current client sends text. Where its socket is full, the server
 * takes turns until there is room, as a client over TCP would wait. */
static void client_send(const char *text, size_t len)
{
    struct client *c = &clients[current];
    size_t waited = 0;

    text_written += len;
    while (c->used && !c->shut && len > 0) {
        ssize_t n = write(c->fd, text, len);

        if (n > 0) {
            text += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue; /* a signal of libFuzzer's: nothing was written */
        } else if (n < 0 && errno == EAGAIN && waited++ < SEND_PATIENCE) {
            serve_turn();
        } else if (n < 0 && errno == EAGAIN) {
            fail("the server stopped reading from client %zu", current);
        } else {
            return; /* the server has closed its end: the rest is lost */
        }
    }
}

/* What a SHUT or a HANG_UP marker does to the current client. */
static void client_hang_up(bool whole)
{
    struct client *c = &clients[current];

    if (!c->used || c->hung_up)
        return;
    if (whole) {
        close(c->fd);
        c->fd = -1;
        c->hung_up = true;
    } else if (!c->shut) {
        shutdown(c->fd, SHUT_WR);
    }
    c->shut = true;
}

/* What server.c does to a user silent for too long. */
static void kick_idle(void)
{
    struct client *c = &clients[current];

    if (c->used && c->user && !user_is_closing(c->user)) {
        user_send(c->user, "disconnected: idle for %d seconds", IDLE_SECONDS);
        user_leave(c->user, "idle");
    }
}

/* What server.c does on SIGTERM. */
static void stop_server(void)
{
    if (stopping)
        return;
    stopping = true;
    user_broadcast("server is shutting down");
    for (size_t i = 0; i < table_count; i++)
        user_close(table[i], "server shutting down");
}

/* Acts on the marker at data[*i], moving *i past it and its argument. */
static void play_marker(const uint8_t *data, size_t size, size_t *i)
{
    struct client *c = &clients[current];

    switch (data[(*i)++]) {
    case PICK_CLIENT:
        if (*i < size)
            current = data[(*i)++] % MAX_CLIENTS;
        break;
    case TURN:
        serve_turn();
        break;
    case SHUT:
        client_hang_up(false);
        break;
    case HANG_UP:
        client_hang_up(true);
        break;
    case JOIN:
        client_join();
        break;
    case STALL:
        c->stalled = !c->stalled;
        break;
    case IDLE:
        kick_idle();
        break;
    case STOP:
        stop_server();
        break;
    }
}

/* Plays the script: text for the current client, and markers. */
static void play(const uint8_t *data, size_t size)
{
    size_t i = 0;

    while (i < size) {
        size_t end = i;

        while (end < size && data[end] < PICK_CLIENT)
            end++;
        if (end > i) {
            client_send((const char *)data + i, end - i);
            i = end;
        } else {
            play_marker(data, size, &i);
        }
        check_state();
    }
}

/* Turns the loop once more, unless the server has taken too many turns
 * for what it was sent: then it holds on to someone. */
static bool serve_turn_within(size_t limit)
{
    if (turns > limit)
        fail("the server still holds %zu users after %zu turns", table_count,
             turns);
    return serve_turn();
}

/*
 * The end of the script: the server handles what it was sent; then every
 * client reads again and sends no more, and the loop turns until the
 * server has let everyone go. Every read and every line takes a turn, and
 * a closing user is let go after LINGER_MS at most, so the limit is
 * generous.
 */
static void finish(void)
{
    size_t limit = turns + 2 * text_written + 4 * LINGER_MS / TURN_MS + 10;
    bool busy = true;

    while (busy)
        busy = serve_turn_within(limit);
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        clients[i].stalled = false;
        current = i;
        client_hang_up(false);
    }
    while (table_count > 0)
        serve_turn_within(limit);
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        client_listen(&clients[i]);
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].used)
            client_release(&clients[i]);
    output_free();
}

static void run_chat(const uint8_t *data, size_t size)
{
    clock_ms = START_MS;
    current = connections = text_written = turns = 0;
    output_checked = 0;
    stopping = false;
    for (size_t i = 0; i < FIRST_CLIENTS; i++)
        client_join();
    current = 0;
    check_state();
    play(data, size);
    finish();
}

/* ----------------------------------------------- Cleaning, done directly */

/* clean_text(), utf8_decode() and name_is_valid() agree with reference.c
 * on these bytes. The copy has exactly the room clean_text() needs, the
 * text and its NUL, so that AddressSanitizer sees a byte too far. */
static void check_cleaning(const uint8_t *data, size_t size)
{
    char in[SHOWN_SIZE], out[SHOWN_SIZE];

    for (int show = 0; show <= 1; show++) {
        char *text = malloc(size + 1);
        unsigned char *want = malloc(size + 1);
        size_t got, wanted;

        if (!text || !want)
            fail("out of memory");
        if (size > 0)
            memcpy(text, data, size);
        got = clean_text(text, size, show);
        wanted = ref_clean(data, size, show, want);
        if (got != wanted || memcmp(text, want, got) != 0 || text[got] != 0)
            fail("clean_text(show %d) gave \"%s\", not \"%s\"", show,
                 shown(text, got, in), shown(want, wanted, out));
        free(text);
        free(want);
    }
    for (size_t i = 0; i < size; i++) {
        unsigned long c = 0;
        size_t n = utf8_decode(data + i, size - i, &c);

        if (n != ref_sequence_length(data + i, size - i) ||
            (n > 0 && c != ref_code_point(data + i, n)))
            fail("utf8_decode() is wrong at byte %zu: length %zu, U+%04lX", i,
                 n, c);
    }
    for (size_t len = 0; len <= size && len <= MAX_NAME + 1; len++)
        if (name_is_valid((const char *)data, len) !=
            ref_name_is_valid(data, len))
            fail("name_is_valid() is wrong about \"%s\"", shown(data, len, in));
}

/* ---------------------------------------------------------- Entry points */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* As in server.c: writing to a client that hung up must fail with
     * EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_cleaning(data, size);
    run_chat(data, size);
    return 0;
}
