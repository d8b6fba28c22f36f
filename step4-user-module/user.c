/*
 * user.c - one chat user: arriving, leaving, reading and sending.
 *
 * A user owns its socket and two buffers. Bytes read from the socket wait
 * in the input buffer until a whole line has come; what the server has to
 * say to the user waits in the output buffer until the socket can take it.
 * Every line is a public message, and everyone hears when a user arrives
 * or leaves.
 * The table of who is online belongs to server.c; user.h declares the part
 * of it that users reach.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "user.h"

#define READ_CHUNK 16384 /* bytes taken from a socket in one read() */

#define OUTBUF_MIN   4096          /* first size of an output buffer */
#define OUTBUF_LIMIT (1024 * 1024) /* unsent bytes before a user is dropped */

/* ------------------------------------------------------------------ Life */

struct user *user_new(int fd, const char *addr)
{
    struct user *u = calloc(1, sizeof *u);

    if (!u)
        return NULL;
    u->fd = fd;
    snprintf(u->addr, sizeof u->addr, "%s", addr);
    snprintf(u->name, sizeof u->name, "%s", addr);
    return u;
}

void user_free(struct user *u)
{
    close(u->fd);
    free(u->out);
    free(u);
}

/*
 * Marks u to be closed at the end of this loop turn, not at once: other
 * code may still be walking the table. The first reason is the one logged.
 */
void user_close(struct user *u, const char *reason)
{
    if (u->close_reason[0] == '\0')
        snprintf(u->close_reason, sizeof u->close_reason, "%s", reason);
}

bool user_is_closing(const struct user *u)
{
    return u->close_reason[0] != '\0';
}

/* Puts u in the online table and tells everyone, u too, that it arrived. */
bool user_online(struct user *u)
{
    if (!server_add_user(u))
        return false;
    server_broadcast("[%s]%s is online", u->addr, u->name);
    return true;
}

/* Takes u out of the online table and tells everyone left that it went. */
void user_offline(struct user *u)
{
    server_remove_user(u);
    server_broadcast("[%s]%s is offline", u->addr, u->name);
}

/* ---------------------------------------------------------------- Output */

/* Makes room for extra more bytes in u's output buffer. */
static bool reserve_output(struct user *u, size_t extra)
{
    size_t need = u->out_len + extra;
    size_t cap = u->out_cap ? u->out_cap : OUTBUF_MIN;
    char *grown;

    if (need <= u->out_cap)
        return true;
    while (cap < need)
        cap *= 2;
    grown = realloc(u->out, cap);
    if (!grown)
        return false;
    u->out = grown;
    u->out_cap = cap;
    return true;
}

/*
 * Queues a line, LF added, for u. Nothing is written yet: the loop flushes
 * every buffer once per turn, so many lines leave in one write(). A user
 * whose backlog passes OUTBUF_LIMIT has stopped reading, and is dropped
 * rather than let it hold the server's memory or slow the others down.
 */
void user_send_line(struct user *u, const char *line)
{
    size_t len = strlen(line);

    if (user_is_closing(u))
        return;
    if (u->out_len + len + 1 > OUTBUF_LIMIT) {
        user_close(u, "too much unsent output");
        return;
    }
    if (!reserve_output(u, len + 1)) {
        user_close(u, "out of memory");
        return;
    }
    memcpy(u->out + u->out_len, line, len);
    u->out[u->out_len + len] = '\n';
    u->out_len += len + 1;
}

/* Queues a line for u, formatted as by printf(). */
void user_send(struct user *u, const char *format, ...)
{
    char line[MAX_MESSAGE];
    va_list args;

    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    user_send_line(u, line);
}

/*
 * Writes as much of u's output as its socket takes now. What does not fit
 * waits for a later turn, when poll() reports room (POLLOUT). An empty
 * buffer is given back, so that an idle user costs no memory.
 */
void user_flush(struct user *u)
{
    while (u->out_len > 0) {
        ssize_t n = write(u->fd, u->out, u->out_len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                user_close(u, strerror(errno));
            return;
        }
        u->out_len -= (size_t)n;
        memmove(u->out, u->out + n, u->out_len);
    }
    free(u->out);
    u->out = NULL;
    u->out_cap = 0;
}

/* ----------------------------------------------------------------- Input */

/*
 * Removes control characters, but for TAB, from text of len bytes, so that
 * no terminal escape reaches anyone's screen. Bytes from 0x80 up are left
 * alone: they make up UTF-8. Returns the new length; text ends in a NUL.
 */
static size_t strip_controls(char *text, size_t len)
{
    size_t kept = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if ((c >= 0x20 && c != 0x7f) || c == '\t')
            text[kept++] = text[i];
    }
    text[kept] = '\0';
    return kept;
}

/* Acts on one complete line from u: each is a public message. */
static void user_handle_line(struct user *u, char *line, size_t len)
{
    len = strip_controls(line, len);
    if (len > 0)
        server_broadcast("[%s]%s: %s", u->addr, u->name, line);
}

static void user_refuse_long_line(struct user *u)
{
    user_send(u, "error: line too long (max %d bytes)", MAX_LINE);
}

/*
 * Adds the next n bytes of a line to u's input buffer. A line that will not
 * fit is refused at once; the rest of it, up to its LF, will be dropped.
 */
static void user_collect(struct user *u, const char *bytes, size_t n)
{
    if (u->in_skipping)
        return;
    if (n > sizeof u->in - 1 - u->in_len) {
        user_refuse_long_line(u);
        u->in_skipping = true;
        u->in_len = 0;
        return;
    }
    memcpy(u->in + u->in_len, bytes, n);
    u->in_len += n;
}

/*
 * The LF has come: the line in u's input buffer is complete. It is passed
 * on without its CR, ending in a NUL, with its length: a NUL byte sent by
 * the client may stand in the middle.
 */
static void user_end_line(struct user *u)
{
    size_t len = u->in_len;

    u->in_len = 0;
    if (u->in_skipping) {
        u->in_skipping = false;
        return;
    }
    if (len > 0 && u->in[len - 1] == '\r')
        len--;
    u->in[len] = '\0';
    if (len > MAX_LINE)
        user_refuse_long_line(u);
    else if (len > 0)
        user_handle_line(u, u->in, len);
}

/*
 * Cuts the bytes received from u into lines. TCP carries a stream of bytes,
 * not messages: one read() may end in the middle of a line or hold several
 * lines, so bytes wait in u's input buffer until their LF arrives.
 */
static void user_receive(struct user *u, const char *bytes, size_t n)
{
    while (n > 0 && !user_is_closing(u)) {
        const char *lf = memchr(bytes, '\n', n);
        size_t part = lf ? (size_t)(lf - bytes) : n;

        user_collect(u, bytes, part);
        if (lf) {
            user_end_line(u);
            part++;
        }
        bytes += part;
        n -= part;
    }
}

/*
 * Reads what u's socket holds and passes it on to be cut into lines. End
 * of stream or an error marks u for closing; EAGAIN only means there was
 * nothing after all.
 */
void user_read(struct user *u)
{
    char chunk[READ_CHUNK];
    ssize_t n = read(u->fd, chunk, sizeof chunk);

    if (n > 0)
        user_receive(u, chunk, (size_t)n);
    else if (n == 0)
        user_close(u, "left");
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        user_close(u, strerror(errno));
}
