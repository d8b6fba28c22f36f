/*
 * user.c - chat users: arriving, what they say, what they hear, leaving.
 *
 * A user owns its socket and an input buffer, where bytes wait until a
 * whole line has come; each line is a public message. What users hear is
 * kept in one output shared by all of them, which each reads at its own
 * pace. The table of who is online belongs to server.c; user.h declares
 * the part of it that users reach.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "user.h"

#define INPUT_SIZE   (MAX_LINE + 2) /* such a line, its CR and its LF */
#define DISCARD_SIZE 4096           /* bytes dropped at once from a leaver */
#define OUTPUT_MIN   4096           /* first size of the shared output */
#define OUTPUT_LIMIT (1024 * 1024)  /* unsent bytes before a user is dropped */
#define LINGER_MS    2000           /* to deliver what was queued, at most */

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
void user_broadcast(const char *format, ...)
{
    char line[MAX_MESSAGE];
    va_list args;

    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    if (!output_add(line))
        fprintf(stderr, "error: out of memory: a line for everyone is lost\n");
}

/*
 * Marks u to be closed. From now on it hears nothing more, and the others
 * no longer see it; the loop closes it once everything queued for it has
 * been delivered and its client has finished sending, or LINGER_MS from
 * now, whichever comes first. The first reason given is the one logged.
 */
void user_close(struct user *u, const char *reason)
{
    if (user_is_closing(u))
        return;
    snprintf(u->close_reason, sizeof u->close_reason, "%s", reason);
    u->out_end = out_len;
    u->close_deadline = now_ms() + LINGER_MS;
}

bool user_is_closing(const struct user *u)
{
    return u->close_reason[0] != '\0';
}

/* Where u's output stops: the end, or where it stood when u was closed. */
static size_t output_stop(const struct user *u)
{
    return u->out_end < out_len ? u->out_end : out_len;
}

/* How far u is behind: bytes of output between it and its stop. */
static size_t output_behind(const struct user *u)
{
    size_t stop = output_stop(u);

    return u->out_pos < stop ? stop - u->out_pos : 0;
}

bool user_has_output(const struct user *u)
{
    return output_behind(u) > 0;
}

/*
 * Writes as much of u's output as its socket takes now. What does not fit
 * waits for a later turn, when poll() reports room (POLLOUT); until then u
 * is not tried again. A user more than OUTPUT_LIMIT behind after that has
 * stopped reading, and is dropped. Once a closing user has had everything,
 * its sending side is shut: the client reads the end of the stream.
 */
void user_flush(struct user *u)
{
    size_t len;

    while (!u->out_blocked && (len = output_behind(u)) > 0) {
        ssize_t n = write(u->fd, output + u->out_pos, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            u->out_blocked = true;
        } else if (n < 0) {
            user_leave(u, strerror(errno));
            u->out_pos = output_stop(u); /* nothing more can be sent */
        } else {
            u->out_pos += (size_t)n;
            u->out_blocked = (size_t)n < len; /* it took less: full */
        }
    }
    if (output_behind(u) > OUTPUT_LIMIT) {
        user_leave(u, "too much unsent output");
        u->close_deadline = 0; /* it stopped reading: no grace */
    }
    if (user_is_closing(u) && !user_has_output(u) && !u->out_shut) {
        shutdown(u->fd, SHUT_WR);
        u->out_shut = true;
    }
}

void output_free(void)
{
    free(output);
    output = NULL;
    out_len = out_cap = 0;
}

/*
 * Frees the part of the output that every user has read. The rest moves
 * to the front only once the read part is the larger, so that each byte
 * is moved about once, however often the output is trimmed.
 */
void output_trim(void)
{
    size_t count, done = out_len;
    struct user **users = server_online(&count);

    for (size_t i = 0; i < count; i++)
        if (user_has_output(users[i]) && users[i]->out_pos < done)
            done = users[i]->out_pos;
    if (done == 0 || (done < out_len && done < out_len - done))
        return;
    memmove(output, output + done, out_len - done);
    out_len -= done;
    for (size_t i = 0; i < count; i++) {
        struct user *u = users[i];

        u->out_pos = u->out_pos > done ? u->out_pos - done : 0;
        if (u->out_end != SIZE_MAX)
            u->out_end = u->out_end > done ? u->out_end - done : 0;
    }
    if (out_len == 0)
        output_free(); /* an idle server holds no output */
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
bool user_has_line(const struct user *u)
{
    return !user_is_closing(u) && u->in_len > 0 &&
           memchr(u->in + u->in_start, '\n', u->in_len);
}

/*
 * Handles the first line in u's input, if a whole one has come, and
 * returns true; returns false if its LF has not come yet. The line is
 * passed on without its CR, ending in a NUL, with its length: a NUL byte
 * sent by the client may stand in the middle. A line too long to fit is
 * dropped whole, up to its LF, and nobody is told, not even its sender.
 */
bool user_take_line(struct user *u)
{
    char *line, *lf;
    size_t len;

    if (user_is_closing(u) || u->in_len == 0)
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

/*
 * Reads what u's socket holds into its input buffer, after the bytes
 * waiting there; once u is closing, what it still sends is read only to be
 * dropped. The end of the stream (0) or an error means u is leaving;
 * EAGAIN only means there was nothing after all.
 */
void user_read(struct user *u)
{
    char discard[DISCARD_SIZE];
    ssize_t n;

    if (user_is_closing(u)) {
        n = read(u->fd, discard, sizeof discard);
    } else if (!u->in && !(u->in = malloc(INPUT_SIZE))) {
        user_leave(u, "out of memory");
        return;
    } else {
        memmove(u->in, u->in + u->in_start, u->in_len);
        u->in_start = 0;
        n = read(u->fd, u->in + u->in_len, INPUT_SIZE - u->in_len);
        if (n > 0)
            u->in_len += (size_t)n;
    }
    if (n == 0 ||
        (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        u->in_ended = true;
        user_leave(u, n == 0 ? "left" : strerror(errno));
    }
}

/* ------------------------------------------------------------------ Life */

struct user *user_new(int fd, const char *addr)
{
    struct user *u = calloc(1, sizeof *u);

    if (!u)
        return NULL;
    u->fd = fd;
    snprintf(u->addr, sizeof u->addr, "%s", addr);
    snprintf(u->name, sizeof u->name, "%s", addr);
    u->out_pos = out_len; /* it hears what is said from now on */
    u->out_end = SIZE_MAX;
    return u;
}

void user_free(struct user *u)
{
    close(u->fd);
    free(u->in);
    free(u);
}

/* Puts u in the online table and tells everyone, u too, that it arrived. */
bool user_online(struct user *u)
{
    if (!server_add_user(u))
        return false;
    user_broadcast("[%s]%s is online", u->addr, u->name);
    return true;
}

/* Closes u and tells everyone left that it went. */
void user_leave(struct user *u, const char *reason)
{
    if (user_is_closing(u))
        return;
    user_close(u, reason);
    user_broadcast("[%s]%s is offline", u->addr, u->name);
}
