/*
 * user.h - a chat user, and the little of the server that users reach.
 *
 * user.c holds what users do and hear: arriving, the lines they send, the
 * output they share, leaving. server.c holds the listener, the log, the
 * poll loop and the online table. They meet here.
 */
#ifndef USER_H
#define USER_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LEN   80 /* "[IPv6%scope]:port" and its NUL */
#define REASON_LEN 64 /* why a user was disconnected, for the log */

#define MAX_LINE    4096             /* bytes a user's line may hold */
#define MAX_MESSAGE (MAX_LINE + 256) /* bytes in a line the server sends */

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
    bool in_ended;                 /* the client sent all it will send */
    size_t out_pos;                /* how far it has read the output */
    size_t out_end;                /* where its output ends, once closing */
    bool out_blocked;              /* its socket was full at the last try */
    bool out_shut;                 /* all sent, and its sending side shut */
    char close_reason[REASON_LEN]; /* set once the user is to be closed */
    long long close_deadline;      /* closed then, delivered or not, in ms */
};

/* Arriving: a user for a freshly accepted socket, named after its address
 * (NULL when memory runs out), put in the online table with the news told
 * to everyone (false when memory runs out). user_free() closes the socket
 * and frees it all. */
struct user *user_new(int fd, const char *addr);
bool user_online(struct user *u);
void user_free(struct user *u);

/* Leaving: user_close() marks u to be closed, giving the reason for the
 * log; nothing more is queued for u, and what was is still delivered, for
 * LINGER_MS at most. user_leave() also tells everyone left that u went. */
void user_close(struct user *u, const char *reason);
void user_leave(struct user *u, const char *reason);
bool user_is_closing(const struct user *u);

/* Output: user_broadcast() queues a line for everyone online; the LF is
 * added. Called by the loop: user_flush() writes what u's socket takes,
 * output_trim() frees what all have read. */
void user_broadcast(const char *format, ...) PRINTF_LIKE(1, 2);
bool user_has_output(const struct user *u);
void user_flush(struct user *u);
void output_trim(void);
void output_free(void);

/* Input, called by the loop: user_read() takes in what the socket holds,
 * user_take_line() handles the next whole line, if one has come, and
 * user_has_line() says whether one has. */
void user_read(struct user *u);
bool user_take_line(struct user *u);
bool user_has_line(const struct user *u);

/* The online table, kept by server.c: server_online() returns it, oldest
 * connection first, with the number of users in *count; the users being
 * closed are still in it. now_ms() is the time in milliseconds. */
bool server_add_user(struct user *u);
struct user **server_online(size_t *count);
long long now_ms(void);

#endif
