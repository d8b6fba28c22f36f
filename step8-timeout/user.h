/*
 * user.h - a chat user, and the little of the server that users reach.
 *
 * user.c holds what a user does; server.c holds the listener, the poll
 * loop and the online table. They meet here.
 */
#ifndef USER_H
#define USER_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LEN   80 /* "[IPv6%scope]:port" and its NUL */
#define REASON_LEN 64 /* why a user was disconnected, for the log */

#define MAX_LINE    4096             /* bytes a user's line may hold */
#define MAX_NAME    32               /* bytes in a name a user chooses */
#define MAX_MESSAGE (MAX_LINE + 256) /* bytes in a line the server sends */

/* One connected client. */
struct user {
    int fd;                        /* its socket */
    char addr[ADDR_LEN];           /* "127.0.0.1:50312" or "[::1]:50312" */
    char name[ADDR_LEN];           /* what the others call it */
    char in[MAX_LINE + 2];         /* a line so far, room for CR and NUL */
    size_t in_len;                 /* bytes in it */
    bool in_skipping;              /* dropping a too long line up to LF */
    char *out;                     /* output the socket has not taken yet */
    size_t out_len, out_cap;       /* bytes in it, and room for */
    char close_reason[REASON_LEN]; /* set once the user is to be closed */
    long long last_active;         /* when it last sent anything, in ms */
};

/* A user for a freshly accepted socket, named after its address; NULL
 * when memory runs out. user_free() closes the socket and frees it all. */
struct user *user_new(int fd, const char *addr);
void user_free(struct user *u);

/* Arriving and leaving: in or out of the online table, with the news
 * told to everyone. user_online() fails only when memory runs out. */
bool user_online(struct user *u);
void user_offline(struct user *u);

/* Marks u to be closed by the loop, giving the reason for the log. */
void user_close(struct user *u, const char *reason);
bool user_is_closing(const struct user *u);

/* Queues a line for u, the LF added; user_send() formats it first. */
void user_send_line(struct user *u, const char *line);
void user_send(struct user *u, const char *format, ...);

/* Called by the loop: user_flush() writes what u's socket takes of its
 * output, user_read() takes in what the socket holds. */
void user_flush(struct user *u);
void user_read(struct user *u);

/* The online table, kept by server.c. server_online() returns it, oldest
 * connection first, with the number of users in *count;
 * server_find_user() finds a user by name, or returns NULL. */
bool server_add_user(struct user *u);
void server_remove_user(struct user *u);
void server_broadcast(const char *format, ...);
struct user **server_online(size_t *count);
struct user *server_find_user(const char *name);

#endif
