/*
 * client.c - a menu client for the chat server.
 *
 * The client waits on two things at once: what the user types (stdin) and
 * what the server sends (the socket). One poll() loop watches both, so a
 * message from the server is printed the moment it arrives, even while the
 * client is waiting at the menu. Typed lines are put together the same way
 * whether stdin is a terminal or a pipe, so the client can be scripted.
 *
 * Usage: client [-ip ADDR] [-port PORT]
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* -------------------------------------------------------------- Settings */

#define DEFAULT_IP   "127.0.0.1"
#define DEFAULT_PORT "8888"
#define ADDR_LEN     80    /* "[IPv6%scope]:port" and its NUL */
#define READ_CHUNK   16384 /* bytes taken from stdin or the socket at once */
#define MAX_LINE     4096  /* the longest line the server accepts */

#define GOODBYE_WAIT_MS 2000 /* for the server's last lines, on leaving */

/* ------------------------------------------------------- Data structures */

/* What the next typed line means. */
enum mode {
    AT_MENU,       /* a choice: 1, 2, 3 or 0 */
    PUBLIC_CHAT,   /* a message for everyone */
    CHOOSING_PEER, /* the name of the user to talk to in private */
    PRIVATE_CHAT,  /* a message for that user */
    RENAMING       /* a new name */
};

struct client {
    int sock;
    enum mode mode;
    char peer[MAX_LINE + 2];  /* whom private messages go to */
    char typed[MAX_LINE + 2]; /* a typed line so far, room for CR and NUL */
    size_t typed_len;
    bool skipping; /* dropping a too long typed line up to LF */
    bool quit;     /* the user chose 0 */
};

/* ----------------------------------------------------------- The options */

struct options {
    const char *ip;
    const char *port;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: client [-ip ADDR] [-port PORT]\n"
            "  -ip ADDR    address of the server (default " DEFAULT_IP ")\n"
            "  -port PORT  port of the server (default " DEFAULT_PORT ")\n");
}

/* Reports a mistake on the command line and exits with status 2. */
static void usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "error: %s %s\n", what, arg);
    usage(stderr);
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

/* A server listens on a port from 1 to 65535. */
static bool port_is_valid(const char *port)
{
    size_t len = strspn(port, "0123456789");

    return len > 0 && len <= 5 && port[len] == '\0' && atol(port) >= 1 &&
           atol(port) <= 65535;
}

static void parse_options(int argc, char **argv, struct options *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *value;

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if ((value = option_value(argc, argv, &i, "ip"))) {
            opts->ip = value;
        } else if ((value = option_value(argc, argv, &i, "port"))) {
            opts->port = value;
        } else {
            usage_error("unknown option", argv[i]);
        }
    }
    if (!port_is_valid(opts->port))
        usage_error("invalid port (use 1-65535):", opts->port);
}

/* ------------------------------------------------------------ Connecting */

/*
 * Connects to ip:port, trying each address getaddrinfo() finds, IPv4 or
 * IPv6. Returns the socket, or -1 after saying on stderr why not.
 */
static int connect_to(const char *ip, const char *port)
{
    struct addrinfo hints, *found;
    char where[ADDR_LEN];
    int fd = -1, err;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(where, sizeof where, strchr(ip, ':') ? "[%s]:%s" : "%s:%s", ip,
             port);

    err = getaddrinfo(ip, port, &hints, &found);
    if (err != 0) {
        fprintf(stderr, "error: cannot connect to %s: %s\n", where,
                gai_strerror(err));
        return -1;
    }
    for (struct addrinfo *ai = found; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            int saved = errno;

            close(fd);
            errno = saved;
            fd = -1;
        }
    }
    if (fd < 0)
        fprintf(stderr, "error: cannot connect to %s: %s\n", where,
                strerror(errno));
    freeaddrinfo(found);
    return fd;
}

/*
 * Sends one line, LF added, in a single write() where the socket allows:
 * a server that takes each read() for one message, as the Go course's
 * does, then sees exactly one. The socket is blocking: this is the only
 * thing the client has to say, and the server reads every socket on every
 * turn of its loop. The line is at most MAX_LINE bytes. Returns false if
 * the connection is broken.
 */
static bool send_line(int sock, const char *line)
{
    char buf[MAX_LINE + 1];
    size_t len = strlen(line), sent = 0;

    memcpy(buf, line, len);
    buf[len++] = '\n';
    while (sent < len) {
        ssize_t n = write(sock, buf + sent, len - sent);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "error: cannot send: %s\n", strerror(errno));
            return false;
        }
        sent += (size_t)n;
    }
    return true;
}

/* ------------------------------------------------------------ The menu */

static void say(const char *text)
{
    printf("%s\n", text);
    fflush(stdout);
}

static void show_menu(struct client *c)
{
    c->mode = AT_MENU;
    say("1. public chat\n2. private chat\n3. rename\n0. exit");
}

/* Sends a line to the server, unless it is longer than the server takes. */
static bool send_checked(struct client *c, const char *line)
{
    if (strlen(line) > MAX_LINE) {
        printf("error: line too long (max %d bytes), not sent\n", MAX_LINE);
        fflush(stdout);
        return true;
    }
    return send_line(c->sock, line);
}

static bool choose(struct client *c, const char *choice)
{
    if (strcmp(choice, "1") == 0) {
        c->mode = PUBLIC_CHAT;
        say(">>> public chat: type a message, or exit to go back");
    } else if (strcmp(choice, "2") == 0) {
        c->mode = CHOOSING_PEER;
        say(">>> private chat with whom? type a name from this list, "
            "or exit to go back");
        return send_line(c->sock, "who");
    } else if (strcmp(choice, "3") == 0) {
        c->mode = RENAMING;
        say(">>> new name, or exit to go back:");
    } else if (strcmp(choice, "0") == 0) {
        c->quit = true;
    } else if (choice[0] != '\0') {
        say("please choose 1, 2, 3 or 0");
        show_menu(c);
    }
    return true;
}

/* The private message to c->peer, in the form the server expects. */
static bool send_private(struct client *c, const char *text)
{
    char line[2 * MAX_LINE + 8];

    snprintf(line, sizeof line, "to|%s|%s", c->peer, text);
    return send_checked(c, line);
}

/*
 * Acts on one typed line, according to the mode. Away from the menu, exit
 * goes back to it and an empty line does nothing. Returns false if the
 * connection broke.
 */
static bool handle_typed_line(struct client *c, const char *line)
{
    char command[MAX_LINE + 16];

    if (c->mode == AT_MENU)
        return choose(c, line);
    if (strcmp(line, "exit") == 0) {
        show_menu(c);
        return true;
    }
    if (line[0] == '\0')
        return true;
    switch (c->mode) {
    case PUBLIC_CHAT:
        return send_checked(c, line);
    case CHOOSING_PEER:
        snprintf(c->peer, sizeof c->peer, "%s", line);
        c->mode = PRIVATE_CHAT;
        printf(">>> private chat with %s: type a message, or exit to go back\n",
               c->peer);
        fflush(stdout);
        return true;
    case PRIVATE_CHAT:
        return send_private(c, line);
    case RENAMING:
        show_menu(c);
        snprintf(command, sizeof command, "rename|%s", line);
        return send_checked(c, command);
    case AT_MENU:
        break;
    }
    return true;
}

/* --------------------------------------------------------------- Input */

/*
 * Puts typed bytes together into lines, as the server does with what it
 * receives: a pipe may deliver half a line or several at once. A line too
 * long for the server is refused here, and nothing of it is sent.
 */
static bool take_typed(struct client *c, const char *bytes, size_t n)
{
    for (size_t i = 0; i < n && !c->quit; i++) {
        if (bytes[i] != '\n') {
            if (c->skipping)
                continue;
            if (c->typed_len == sizeof c->typed - 1) {
                printf("error: line too long (max %d bytes), not sent\n",
                       MAX_LINE);
                fflush(stdout);
                c->skipping = true;
                c->typed_len = 0;
                continue;
            }
            c->typed[c->typed_len++] = bytes[i];
            continue;
        }
        if (c->skipping) {
            c->skipping = false;
            continue;
        }
        if (c->typed_len > 0 && c->typed[c->typed_len - 1] == '\r')
            c->typed_len--;
        c->typed[c->typed_len] = '\0';
        c->typed_len = 0;
        if (!handle_typed_line(c, c->typed))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------- The loop */

/* What poll() watches. */
enum { KEYBOARD, SERVER };

/*
 * Copies what the server sent to stdout as it comes. Returns false when
 * the connection has ended, and says so unless the user was leaving.
 */
static bool show_from_server(struct client *c)
{
    char chunk[READ_CHUNK];
    ssize_t n = read(c->sock, chunk, sizeof chunk);

    if (n > 0) {
        fwrite(chunk, 1, (size_t)n, stdout);
        fflush(stdout);
        return true;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n < 0)
        fprintf(stderr, "error: connection lost: %s\n", strerror(errno));
    else if (!c->quit)
        fprintf(stderr, "the server closed the connection\n");
    return false;
}

/* Reads what was typed. Returns false if stdin or the connection broke. */
static bool take_keyboard(struct client *c)
{
    char chunk[READ_CHUNK];
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);

    if (n == 0)
        c->quit = true; /* the end of input: leave as if 0 was chosen */
    if (n > 0)
        return take_typed(c, chunk, (size_t)n);
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
        perror("error: cannot read stdin");
        return false;
    }
    return true;
}

/*
 * Serves the keyboard and the server until the user leaves (status 0) or
 * the connection ends (status 1).
 *
 * Leaving, the client does not just close the socket: the server may still
 * have lines on their way, answers to the last things sent, and closing
 * with them unread makes the system reset the connection. Instead,
 * shutdown() tells the server that nothing more will come; the server sends
 * what it still has and closes, and the client shows it all and ends.
 */
static int run(struct client *c)
{
    struct pollfd watch[2] = {{STDIN_FILENO, POLLIN, 0}, {c->sock, POLLIN, 0}};
    int ready;

    show_menu(c);
    for (;;) {
        ready = poll(watch, 2, c->quit ? GOODBYE_WAIT_MS : -1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            perror("error: poll");
            return 1;
        }
        if (ready == 0)
            return 0; /* leaving, and the server took too long to close */
        if (watch[SERVER].revents && !show_from_server(c))
            return c->quit ? 0 : 1;
        if (watch[KEYBOARD].revents && !take_keyboard(c))
            return 1;
        if (c->quit && watch[KEYBOARD].fd >= 0) {
            if (shutdown(c->sock, SHUT_WR) < 0)
                return 0; /* the connection is gone already */
            watch[KEYBOARD].fd = -1; /* poll() skips it from now on */
        }
    }
}

int main(int argc, char **argv)
{
    struct options opts = {DEFAULT_IP, DEFAULT_PORT};
    struct client c;
    int status;

    parse_options(argc, argv, &opts);
    /* A write to a connection the server has closed fails with EPIPE
     * instead of killing the client with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    memset(&c, 0, sizeof c);
    c.sock = connect_to(opts.ip, opts.port);
    if (c.sock < 0)
        return 1;
    status = run(&c);
    close(c.sock);
    return status;
}
