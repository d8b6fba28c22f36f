/*
 * client.c - a menu client for the chat server.
 *
 * The client waits on two things at once: what the user types (stdin) and
 * what the server sends (the socket). One poll() loop watches both, so a
 * message from the server is shown the moment it arrives, whatever the menu
 * is doing.
 *
 * At a terminal, the client edits the line being typed itself: the terminal
 * is put in raw mode, so that every key reaches the client as it is
 * pressed, and a message that arrives mid-typing is printed above the input
 * line, which is then drawn again below it with a prompt saying who and
 * where you are. From a pipe, stdin is read line by line, so the client can
 * be scripted.
 *
 * What the server sends is cleaned of control characters before it is
 * shown, and what the client sends waits in an output buffer: the server
 * can neither drive the terminal nor stop the client.
 *
 * Usage: client [-ip ADDR] [-port PORT]
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* -------------------------------------------------------------- Settings */

#define DEFAULT_IP   "127.0.0.1"
#define DEFAULT_PORT "8888"
#define ADDR_LEN     80       /* "[IPv6%scope]:port" and its NUL */
#define READ_CHUNK   16384    /* bytes taken from stdin or the socket at once */
#define MAX_LINE     4096     /* the longest line the server accepts */
#define MAX_NAME     32       /* the longest name a user can choose */
#define NAME_SIZE    ADDR_LEN /* a name: a chosen one, or an address */

/* The server's lines are shorter (a message, an address and a name); a
 * longer one, from some other server, is shown in pieces of this size. */
#define SERVER_LINE_CAP 8192

/* Unsent bytes the client keeps, the same limit the server sets for each
 * of its users: a server that lets this much pile up has stopped reading. */
#define OUTBUF_LIMIT (1024 * 1024)

/* Reads from the socket in one turn of the loop, at most: enough to empty
 * what a server sends at its fastest, and still a turn for the keyboard
 * when a server never stops sending. */
#define SOCKET_READS_PER_TURN 64

#define WHO_LIST_CAP    65536 /* bytes of names kept from a who answer */
#define WHO_WAIT_MS     2000  /* for the who answer, at most */
#define GOODBYE_WAIT_MS 2000  /* for the server's last lines, on leaving */

/* The input line never reaches the terminal's last column, so the terminal
 * never wraps it; the width is asked of the terminal, and assumed until
 * it answers. Widths are counted high: a TAB may take up to TAB_COLUMNS,
 * any character beyond ASCII WIDE_COLUMNS, as Chinese characters do. */
#define DEFAULT_COLUMNS 80
#define MIN_COLUMNS     20
#define TAB_COLUMNS     8
#define WIDE_COLUMNS    2
#define PROMPT_LEN      (2 * NAME_SIZE + 64)

/* Keys, as the terminal sends them in raw mode. */
#define KEY_INTERRUPT 0x03 /* Ctrl-C */
#define KEY_END       0x04 /* Ctrl-D */
#define KEY_ERASE     0x08 /* Ctrl-H, Backspace on some terminals */
#define KEY_KILL_LINE 0x15 /* Ctrl-U */
#define KEY_ESCAPE    0x1b /* Esc, and the start of an escape sequence */
#define KEY_BACKSPACE 0x7f

/* What the client itself tells the terminal (ECMA-48, as every terminal
 * emulator understands it): go to the start of the row and clear it; and,
 * to learn the width, go to the last column and report the cursor's place,
 * which the terminal answers as if typed, "ESC [ row ; column R". */
#define ERASE_LINE  "\r\x1b[K"
#define ASK_COLUMNS "\x1b[999C\x1b[6n\r"

/* ------------------------------------------------------- Data structures */

/* What the next typed line means. */
enum mode {
    AT_MENU,       /* a choice: 1, 2, 3 or 0 */
    PUBLIC_CHAT,   /* a message for everyone */
    CHOOSING_PEER, /* the name of the user to talk to in private */
    PRIVATE_CHAT,  /* a message for that user */
    RENAMING       /* a new name */
};

/* Keys such as the arrows send escape sequences, which the line editor
 * reads whole so that it can ignore them: ESC [ ... or ESC O x. */
enum key_state { KEY_TEXT, KEY_ESCAPE_SEEN, KEY_CSI, KEY_SS3 };

/* What run() returns while it is not done. */
#define RUNNING (-1)

struct client {
    int sock;
    enum mode mode;
    bool terminal; /* stdin and stdout are a terminal, in raw mode */

    /* Who and where: taken from the server's own notices. */
    char addr[ADDR_LEN];    /* as the server writes it, "" until known */
    char name[NAME_SIZE];   /* the user's name now */
    char peer[NAME_SIZE];   /* whom private messages go to */
    char who[WHO_LIST_CAP]; /* names the who answer showed, NUL after each */
    size_t who_len;
    bool who_waiting; /* asked who, and the answer is not all in yet */
    long long who_deadline;

    /* What was typed. */
    char keys[READ_CHUNK]; /* read from stdin, not handled yet */
    size_t keys_len, keys_pos;
    char line[MAX_LINE + 2]; /* the line being typed: room for CR and NUL */
    size_t line_len;
    bool line_too_long; /* bytes of it did not fit, and were dropped */

    /* The line editor, at a terminal. */
    enum key_state key_state;
    unsigned char utf8[4]; /* a character whose bytes are still coming */
    size_t utf8_len;
    char csi[16]; /* the parameters of an escape sequence */
    size_t csi_len;
    int columns;      /* the terminal's width */
    bool ask_columns; /* ask it again at the next drawing */
    bool line_shown;  /* the prompt and the line are on the screen */

    /* The server. */
    char in[SERVER_LINE_CAP]; /* a line from the server so far */
    size_t in_len;
    char out[OUTBUF_LIMIT]; /* lines waiting to be sent */
    size_t out_len;

    /* Leaving: the output is sent, then the server's last lines read. */
    bool quit;
    bool shut; /* shutdown() told the server that nothing more comes */
    long long quit_deadline;
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
 * Once connected, the socket is made nonblocking: a write() then takes
 * what fits and returns, instead of holding the whole client until a
 * server that has stopped reading makes room.
 */
static bool make_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        perror("error: cannot make the socket nonblocking");
        return false;
    }
    return true;
}

/* The monotonic clock in milliseconds, for deadlines. */
static long long now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) {
        perror("error: cannot read the clock");
        exit(1);
    }
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until deadline, 0 if it has passed. */
static int time_left(long long deadline)
{
    long long left = deadline - now_ms();

    return left > 0 ? (int)left : 0;
}

/* -------------------------------------------------------------- Cleaning */

/* How many bytes a UTF-8 character starting with byte b has; 0 if no
 * character starts with b (a continuation byte, or one never used). */
static size_t utf8_lead_len(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        return 2;
    if (b >= 0xe0 && b <= 0xef)
        return 3;
    if (b >= 0xf0 && b <= 0xf4)
        return 4;
    return 0;
}

/*
 * The length of the UTF-8 character at s, of which len bytes are there,
 * or 0 if they do not make one: a truncated or overlong sequence, a
 * surrogate (U+D800-U+DFFF) or a code point past U+10FFFF.
 */
static size_t utf8_char_len(const unsigned char *s, size_t len)
{
    size_t need = utf8_lead_len(s[0]);
    unsigned char low = 0x80, high = 0xbf; /* what may follow the lead */

    if (need <= 1)
        return need;
    if (s[0] == 0xe0)
        low = 0xa0; /* below: an overlong form */
    else if (s[0] == 0xed)
        high = 0x9f; /* above: a surrogate */
    else if (s[0] == 0xf0)
        low = 0x90; /* below: an overlong form */
    else if (s[0] == 0xf4)
        high = 0x8f; /* above: past U+10FFFF */
    if (len < need || s[1] < low || s[1] > high)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

/* A character a terminal obeys instead of showing: a C0 control but TAB,
 * DEL, or a C1 control (U+0080-U+009F, in UTF-8 C2 80 to C2 9F). */
static bool is_control(const unsigned char *s, size_t len)
{
    if (len == 1)
        return (s[0] < 0x20 && s[0] != '\t') || s[0] == 0x7f;
    return len == 2 && s[0] == 0xc2 && s[1] <= 0x9f;
}

/*
 * Removes from text, of len bytes, what would drive the terminal rather
 * than be shown, by the rules the server cleans messages with: control
 * characters (ESC starts every escape sequence), and every byte that is
 * not part of valid UTF-8, such as a raw C1 control. A server that breaks
 * those rules still cannot retitle the window or clear the screen. The
 * text then ends in a NUL.
 */
static void clean_text(char *text, size_t len)
{
    unsigned char *s = (unsigned char *)text;
    size_t kept = 0, i = 0;

    while (i < len) {
        size_t n = utf8_char_len(s + i, len - i);

        if (n == 0) {
            i++; /* not UTF-8: drop this byte, look again at the next */
            continue;
        }
        if (!is_control(s + i, n)) {
            memmove(s + kept, s + i, n);
            kept += n;
        }
        i += n;
    }
    text[kept] = '\0';
}

/* ---------------------------------------------------------- The terminal */

static struct termios saved_termios; /* as the shell left the terminal */
static bool in_raw_mode;

/* Gives the terminal back as it was. Keys typed but never read are
 * dropped (TCSAFLUSH), so that they do not land on the shell's command
 * line. Registered with atexit(), so every exit() and return from main()
 * runs it. */
static void terminal_restore(void)
{
    if (!in_raw_mode)
        return;
    in_raw_mode = false;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios) < 0)
        perror("error: cannot restore the terminal");
}

/*
 * A signal that ends the client (SIGTERM, or SIGHUP when the terminal
 * closes) must not leave the terminal raw: this restores it, then lets the
 * signal do what it would have done. Only async-signal-safe calls here.
 */
static void terminal_restore_and_die(int sig)
{
    if (write(STDOUT_FILENO, ERASE_LINE, sizeof ERASE_LINE - 1) < 0) {
        /* nothing more can be done: the terminal is still restored */
    }
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    signal(sig, SIG_DFL);
    raise(sig);
}

static bool catch_fatal_signals(void)
{
    static const int fatal[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = terminal_restore_and_die;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        if (sigaction(fatal[i], &sa, NULL) < 0) {
            perror("error: cannot set a signal handler");
            return false;
        }
    }
    return true;
}

/* Whether the user is at a terminal, which the client can draw on. */
static bool at_terminal(void)
{
    const char *term = getenv("TERM");

    return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && term &&
           strcmp(term, "dumb") != 0;
}

/*
 * Raw mode: the terminal hands over each key as it is pressed (no
 * ICANON), shows nothing by itself (no ECHO), and passes Ctrl-C, Ctrl-Z
 * and Ctrl-V as plain bytes (no ISIG, IEXTEN) and Enter as CR (no ICRNL),
 * with Ctrl-S and Ctrl-Q too (no IXON). Output is left as it is, so that
 * "\n" still starts a new line at its left edge.
 */
static bool terminal_enter_raw_mode(void)
{
    struct termios raw;

    if (tcgetattr(STDIN_FILENO, &saved_termios) < 0) {
        perror("error: cannot read the terminal's settings");
        return false;
    }
    raw = saved_termios;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON | ISTRIP);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (!catch_fatal_signals())
        return false;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
        perror("error: cannot put the terminal in raw mode");
        return false;
    }
    in_raw_mode = true;
    return true;
}

/* ------------------------------------------------------------ The screen */

/* Widths are counted high, never low (see TAB_COLUMNS). */
static size_t char_columns(unsigned char lead)
{
    if (lead == '\t')
        return TAB_COLUMNS;
    return lead < 0x80 ? 1 : WIDE_COLUMNS;
}

/* The columns text takes, counted high. */
static size_t text_width(const char *text, size_t len)
{
    size_t width = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)text[i] & 0xc0) != 0x80)
            width += char_columns((unsigned char)text[i]);
    return width;
}

/*
 * Where the end of text that fits in columns begins: 0 if all of it fits,
 * else the start of a character, with a column kept for the '<' that
 * shows text is cut off. *width is what it takes on screen.
 */
static size_t visible_end(const char *text, size_t len, size_t columns,
                          size_t *width)
{
    size_t from = len, used = 0;

    while (from > 0) {
        size_t start = from - 1;
        size_t more;

        while (start > 0 && ((unsigned char)text[start] & 0xc0) == 0x80)
            start--;
        more = char_columns((unsigned char)text[start]) + (start > 0);
        if (used + more > columns)
            break;
        used += more - (start > 0);
        from = start;
    }
    *width = used + (from > 0);
    return from;
}

/* Prints the end of text that fits in columns. Returns the columns used. */
static size_t put_visible(const char *text, size_t columns)
{
    size_t width, from = visible_end(text, strlen(text), columns, &width);

    if (from > 0)
        putchar('<');
    fputs(text + from, stdout);
    return width;
}

/* The prompt: who you are and where, as in "alice (public chat)> ". */
static void format_prompt(const struct client *c, char *prompt, size_t size)
{
    static const char *const where[] = {
        [AT_MENU] = "menu",
        [PUBLIC_CHAT] = "public chat",
        [CHOOSING_PEER] = "private chat with whom?",
        [PRIVATE_CHAT] = "private chat with ",
        [RENAMING] = "new name",
    };

    snprintf(prompt, size, "%s%s(%s%s)> ", c->name, c->name[0] ? " " : "",
             where[c->mode], c->mode == PRIVATE_CHAT ? c->peer : "");
}

static size_t min(size_t a, size_t b)
{
    return a < b ? a : b;
}

/*
 * Draws the prompt and the line being typed on the row of the cursor.
 * When they do not fit side by side, the prompt gives up columns, down to
 * half the width, and then the line too shows only its end, as the end is
 * where one types.
 */
static void line_draw(struct client *c)
{
    char prompt[PROMPT_LEN];
    size_t room = (size_t)c->columns - 1, line_width;

    format_prompt(c, prompt, sizeof prompt);
    fputs(ERASE_LINE, stdout);
    if (c->ask_columns) {
        fputs(ASK_COLUMNS, stdout);
        c->ask_columns = false;
    }
    line_width = text_width(c->line, c->line_len);
    room -= put_visible(prompt, room - min(line_width, room / 2));
    c->line[c->line_len] = '\0';
    put_visible(c->line, room);
    c->line_shown = true;
}

/* Takes the prompt and the line off the screen; the loop draws them again
 * at the end of its turn, below whatever was printed in between. */
static void line_hide(struct client *c)
{
    if (c->line_shown)
        fputs(ERASE_LINE, stdout);
    c->line_shown = false;
}

/* Shows a line for the user: at a terminal, above the line being typed. */
static void show(struct client *c, const char *text)
{
    line_hide(c);
    fputs(text, stdout);
    putchar('\n');
}

/* Shows a line made as by printf(). */
static void show_format(struct client *c, const char *format, ...)
{
    char text[2 * MAX_LINE];
    va_list args;

    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    show(c, text);
}

/* Says on stderr what went wrong, after what stdout already holds. */
static void show_error(struct client *c, const char *format, ...)
{
    va_list args;

    line_hide(c);
    fflush(stdout);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
}

/* The terminal answered ASK_COLUMNS with "row;column": the column where
 * the cursor stopped, at the right edge, is the width. */
static void take_columns_report(struct client *c)
{
    const char *semicolon;
    char *end;
    long column;

    c->csi[c->csi_len] = '\0';
    semicolon = strchr(c->csi, ';');
    if (!semicolon)
        return;
    /* strtol() stops at what is not a digit, and says where: a reply with
     * anything else in it, or a number out of range, is ignored. */
    column = strtol(semicolon + 1, &end, 10);
    if (end != semicolon + 1 && *end == '\0' && column >= MIN_COLUMNS &&
        column <= INT_MAX)
        c->columns = (int)column;
}

/* ------------------------------------------------------------ Sending */

/* Queues line and a LF for the server. Returns false, queueing nothing,
 * when there is no room: the server has stopped taking what was sent. */
static bool queue_line(struct client *c, const char *line)
{
    size_t len = strlen(line);

    if (c->out_len + len + 1 > OUTBUF_LIMIT)
        return false;
    memcpy(c->out + c->out_len, line, len);
    c->out[c->out_len + len] = '\n';
    c->out_len += len + 1;
    return true;
}

/* Sends a line to the server, unless it is longer than the server takes;
 * nothing of a refused line is sent. */
static void send_line(struct client *c, const char *line)
{
    if (strlen(line) > MAX_LINE)
        show_format(c, "error: line too long (max %d bytes), not sent",
                    MAX_LINE);
    else if (!queue_line(c, line))
        show(c, "error: the server is not taking what is sent, not sent");
}

/*
 * Writes as much of the output as the socket takes now; poll() reports
 * when there is room for the rest (POLLOUT). Returns false if the
 * connection is broken.
 */
static bool flush_output(struct client *c)
{
    while (c->out_len > 0) {
        ssize_t n = write(c->sock, c->out, c->out_len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0) {
            show_error(c, "error: cannot send: %s\n", strerror(errno));
            return false;
        }
        c->out_len -= (size_t)n;
        memmove(c->out, c->out + n, c->out_len);
    }
    return true;
}

/* Starts leaving: what is queued is still sent, and the server's last
 * lines shown, for GOODBYE_WAIT_MS in all. */
static void leave(struct client *c)
{
    if (c->quit)
        return;
    c->quit = true;
    c->quit_deadline = now_ms() + GOODBYE_WAIT_MS;
    line_hide(c);
}

/* ------------------------------------------------------------- The menu */

static void show_menu(struct client *c)
{
    c->mode = AT_MENU;
    show(c, "1. public chat\n2. private chat\n3. rename\n0. exit");
}

/* Asks the server who is online; the answer is the list of names that
 * private chat accepts. */
static void ask_who(struct client *c)
{
    c->who_len = 0;
    c->who_waiting = true;
    c->who_deadline = now_ms() + WHO_WAIT_MS;
    send_line(c, "who");
}

static bool who_has(const struct client *c, const char *name)
{
    for (size_t i = 0; i < c->who_len; i += strlen(c->who + i) + 1)
        if (strcmp(c->who + i, name) == 0)
            return true;
    return false;
}

static void choose(struct client *c, const char *choice)
{
    if (strcmp(choice, "1") == 0) {
        c->mode = PUBLIC_CHAT;
        show(c, ">>> public chat: type a message, or exit to go back");
    } else if (strcmp(choice, "2") == 0) {
        c->mode = CHOOSING_PEER;
        show(c, ">>> private chat with whom? type a name from this list, "
                "or exit to go back");
        ask_who(c);
    } else if (strcmp(choice, "3") == 0) {
        c->mode = RENAMING;
        show(c, ">>> new name, or exit to go back:");
    } else if (strcmp(choice, "0") == 0 || strcmp(choice, "exit") == 0) {
        leave(c);
    } else if (choice[0] != '\0') {
        show(c, "please choose 1, 2, 3 or 0");
        show_menu(c);
    }
}

/* Private chat is only with a name from the who answer: a name that is
 * not there, or that would change the command (bob|secret), is refused
 * before any message goes out. */
static void choose_peer(struct client *c, const char *name)
{
    if (!who_has(c, name)) {
        show_format(c,
                    "no user named \"%s\" in the list: type a name from it, "
                    "or exit to go back",
                    name);
        return;
    }
    snprintf(c->peer, sizeof c->peer, "%s", name);
    c->mode = PRIVATE_CHAT;
    show_format(c,
                ">>> private chat with %s: type a message, or exit to go back",
                c->peer);
}

/* The private message to c->peer, in the form the server expects. */
static void send_private(struct client *c, const char *text)
{
    char line[MAX_LINE + NAME_SIZE + 8];

    snprintf(line, sizeof line, "to|%s|%s", c->peer, text);
    send_line(c, line);
}

/*
 * Acts on one typed line, according to the mode. At the menu, exit leaves;
 * away from it, exit goes back to it, and an empty line does nothing.
 */
static void handle_typed_line(struct client *c, const char *line)
{
    char command[MAX_LINE + 16];

    if (c->mode == AT_MENU) {
        choose(c, line);
        return;
    }
    if (strcmp(line, "exit") == 0) {
        show_menu(c);
        return;
    }
    if (line[0] == '\0')
        return;
    switch (c->mode) {
    case PUBLIC_CHAT:
        send_line(c, line);
        break;
    case CHOOSING_PEER:
        choose_peer(c, line);
        break;
    case PRIVATE_CHAT:
        send_private(c, line);
        break;
    case RENAMING:
        show_menu(c);
        snprintf(command, sizeof command, "rename|%s", line);
        send_line(c, command);
        break;
    case AT_MENU:
        break;
    }
}

/* ----------------------------------------------------- From the server */

/*
 * Where the text after "[ADDR]" begins, in a line from the server; NULL if
 * the line does not start so. ADDR is IPv4:PORT or [IPv6]:PORT, so a
 * ']' inside it is not the end.
 */
static const char *after_addr(const char *line)
{
    bool ipv6 = line[0] == '[' && line[1] == '[';
    const char *port;

    if (line[0] != '[')
        return NULL;
    port = ipv6 ? strstr(line, "]:") : strchr(line, ':');
    if (!port)
        return NULL;
    port += ipv6 ? 2 : 1;
    port += strspn(port, "0123456789");
    return *port == ']' ? port + 1 : NULL;
}

/* The NAME of "[ADDR]NAME is online", copied into name; false if the line
 * is not that. A name has no space, so a message cannot pass for it. */
static bool online_name(const char *line, char *name, size_t size)
{
    static const char online[] = " is online";
    const char *start = after_addr(line);
    size_t len = start ? strlen(start) : 0;

    if (len <= strlen(online) ||
        strcmp(start + len - strlen(online), online) != 0)
        return false;
    len -= strlen(online);
    if (len >= size || memchr(start, ' ', len))
        return false;
    memcpy(name, start, len);
    name[len] = '\0';
    return true;
}

/*
 * Follows the user's own name. The first thing the server sends a
 * newcomer is its arrival, "[ADDR]ADDR is online": that is the client's
 * address and first name. After that, "[ADDR]OLD is now known as NEW",
 * with this address and the current name, is a rename of this user.
 * Returns true for the line of the user's own arrival.
 */
static bool follow_own_name(struct client *c, const char *line)
{
    char prefix[ADDR_LEN + NAME_SIZE + 32], name[NAME_SIZE];
    const char *end = after_addr(line);

    if (c->addr[0] == '\0' && end && online_name(line, name, sizeof name) &&
        (size_t)(end - line) == strlen(name) + 2 &&
        strncmp(line + 1, name, strlen(name)) == 0) {
        snprintf(c->addr, sizeof c->addr, "%s", name);
        snprintf(c->name, sizeof c->name, "%s", name);
        return true;
    }
    snprintf(prefix, sizeof prefix, "[%s]%s is now known as ", c->addr,
             c->name);
    if (c->addr[0] && strncmp(line, prefix, strlen(prefix)) == 0) {
        const char *renamed = line + strlen(prefix);

        if (strlen(renamed) <= MAX_NAME && !strchr(renamed, ' '))
            snprintf(c->name, sizeof c->name, "%s", renamed);
    }
    return false;
}

/* While a private chat partner is being chosen, every user said to be
 * online (the who answer, or a newcomer) may be chosen. */
static void note_online(struct client *c, const char *line)
{
    char name[NAME_SIZE];
    size_t len;

    if (c->mode != CHOOSING_PEER || !online_name(line, name, sizeof name))
        return;
    len = strlen(name) + 1;
    if (!who_has(c, name) && c->who_len + len <= sizeof c->who) {
        memcpy(c->who + c->who_len, name, len);
        c->who_len += len;
    }
}

/* One line from the server: cleaned, read for news about this user, and
 * shown. The user's own arrival, should the user already be choosing a
 * partner, is not part of the who answer. */
static void take_server_line(struct client *c, char *line, size_t len)
{
    clean_text(line, len);
    if (!follow_own_name(c, line))
        note_online(c, line);
    show(c, line);
}

/* Cuts what the server sent into lines; a line longer than
 * SERVER_LINE_CAP is shown in pieces. */
static void take_server_bytes(struct client *c, const char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (bytes[i] != '\n' && c->in_len < sizeof c->in - 1) {
            c->in[c->in_len++] = bytes[i];
            continue;
        }
        take_server_line(c, c->in, c->in_len);
        c->in_len = 0;
        if (bytes[i] != '\n')
            c->in[c->in_len++] = bytes[i];
    }
}

/*
 * The connection has ended: err is 0 when the server closed it. Returns
 * the client's exit status: 0 if the user was leaving anyway.
 */
static int connection_ended(struct client *c, int err)
{
    if (c->in_len > 0)
        take_server_line(c, c->in, c->in_len);
    c->in_len = 0;
    if (c->quit)
        return 0;
    if (err)
        show_error(c, "error: connection lost: %s\n", strerror(err));
    else
        show_error(c, "the server closed the connection\n");
    return 1;
}

/*
 * Reads what the server sent, until nothing more is waiting, so that it
 * never piles up at the server while the client reads stdin. Returns
 * RUNNING, or the exit status when the connection has ended.
 */
static int take_from_server(struct client *c)
{
    char chunk[READ_CHUNK];

    for (int reads = 0; reads < SOCKET_READS_PER_TURN; reads++) {
        ssize_t n = read(c->sock, chunk, sizeof chunk);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return connection_ended(c, n < 0 ? errno : 0);
        take_server_bytes(c, chunk, (size_t)n);
        if ((size_t)n < sizeof chunk)
            break; /* that was all there was */
    }
    /* The server writes its who answer all at once: once the user's own
     * name is in, and nothing more waits, the list is whole. */
    if (c->who_waiting && who_has(c, c->name))
        c->who_waiting = false;
    return RUNNING;
}

/* ---------------------------------------------------------- From stdin */

/* Adds typed bytes to the line, or, past its room, drops them and marks
 * the line too long: it will be refused whole. */
static void line_add(struct client *c, const void *bytes, size_t n)
{
    if (c->line_len + n > MAX_LINE + 1) {
        c->line_too_long = true;
        return;
    }
    memcpy(c->line + c->line_len, bytes, n);
    c->line_len += n;
}

static void line_clear(struct client *c)
{
    c->line_len = 0;
    c->line_too_long = false;
}

/*
 * The line is finished. A line longer than the server takes is refused
 * here, and nothing of it is sent. At a terminal, the line stays on the
 * screen after its prompt, as the record of what was typed.
 */
static void line_submit(struct client *c)
{
    c->line[c->line_len] = '\0';
    if (c->line_too_long || c->line_len > MAX_LINE) {
        show_format(c, "error: line too long (max %d bytes), not sent",
                    MAX_LINE);
    } else {
        if (c->terminal) {
            char prompt[PROMPT_LEN];

            format_prompt(c, prompt, sizeof prompt);
            show_format(c, "%s%s", prompt, c->line);
            c->ask_columns = true; /* the window may have been resized */
        }
        handle_typed_line(c, c->line);
    }
    line_clear(c);
}

/* A byte from a pipe: lines end with LF, and a CR before it is dropped. */
static void take_piped_byte(struct client *c, char b)
{
    if (b != '\n') {
        line_add(c, &b, 1);
        return;
    }
    if (c->line_len > 0 && c->line[c->line_len - 1] == '\r')
        c->line_len--;
    line_submit(c);
}

/* Backspace: takes the last character off the line, all its bytes. */
static void line_erase_char(struct client *c)
{
    while (c->line_len > 0 &&
           ((unsigned char)c->line[c->line_len - 1] & 0xc0) == 0x80)
        c->line_len--;
    if (c->line_len > 0)
        c->line_len--;
}

/* A byte of a character beyond ASCII: the bytes are gathered until the
 * character is whole, which joins the line if it is valid text. */
static void take_utf8_byte(struct client *c, unsigned char b)
{
    size_t need;

    if ((b & 0xc0) != 0x80)
        c->utf8_len = 0; /* a new character: an unfinished one is dropped */
    else if (c->utf8_len == 0)
        return; /* the rest of a character whose start was dropped */
    c->utf8[c->utf8_len++] = b;
    need = utf8_lead_len(c->utf8[0]);
    if (need == 0 || c->utf8_len < need)
        return;
    if (utf8_char_len(c->utf8, need) == need && !is_control(c->utf8, need))
        line_add(c, c->utf8, need);
    c->utf8_len = 0;
}

/* A key of the line editor: text joins the line, the rest is a command. */
static void take_key(struct client *c, unsigned char b)
{
    if (b >= 0x80) {
        take_utf8_byte(c, b);
        return;
    }
    c->utf8_len = 0;
    if (b == '\r' || b == '\n')
        line_submit(c);
    else if (b == KEY_INTERRUPT)
        leave(c);
    else if (b == KEY_END && c->line_len == 0)
        leave(c); /* the end of input, as from a pipe */
    else if (b == KEY_BACKSPACE || b == KEY_ERASE)
        line_erase_char(c);
    else if (b == KEY_KILL_LINE)
        line_clear(c);
    else if (b == KEY_ESCAPE)
        c->key_state = KEY_ESCAPE_SEEN;
    else if (!is_control(&b, 1))
        line_add(c, &b, 1);
}

/* A byte from the terminal: part of an escape sequence, or a key. */
static void take_terminal_byte(struct client *c, unsigned char b)
{
    switch (c->key_state) {
    case KEY_ESCAPE_SEEN:
        c->csi_len = 0;
        if (b == '[') {
            c->key_state = KEY_CSI;
        } else if (b == 'O') {
            c->key_state = KEY_SS3;
        } else { /* Esc on its own: the key after it still counts */
            c->key_state = KEY_TEXT;
            take_key(c, b);
        }
        break;
    case KEY_SS3:
        c->key_state = KEY_TEXT;
        break;
    case KEY_CSI:
        if (b >= 0x40 && b <= 0x7e) { /* the final byte */
            if (b == 'R')
                take_columns_report(c);
            c->key_state = KEY_TEXT;
        } else if (c->csi_len < sizeof c->csi - 1) {
            c->csi[c->csi_len++] = (char)b;
        }
        break;
    case KEY_TEXT:
        take_key(c, b);
        break;
    }
}

/*
 * Whether typed lines must wait: for the who answer, which the name typed
 * next is checked against; and, from a pipe, for room in the output
 * buffer. A terminal always has its keys read, so that Ctrl-C works.
 */
static bool keys_must_wait(struct client *c)
{
    if (c->who_waiting && time_left(c->who_deadline) == 0)
        c->who_waiting = false;
    if (c->mode == CHOOSING_PEER && c->who_waiting)
        return true;
    return !c->terminal && c->out_len + MAX_LINE + 1 > OUTBUF_LIMIT;
}

/* Handles the bytes read from stdin, as far as they may be. */
static void handle_keys(struct client *c)
{
    bool taken = false;

    while (c->keys_pos < c->keys_len && !c->quit && !keys_must_wait(c)) {
        unsigned char b = (unsigned char)c->keys[c->keys_pos++];

        if (c->terminal)
            take_terminal_byte(c, b);
        else
            take_piped_byte(c, (char)b);
        taken = true;
    }
    if (taken)
        line_hide(c); /* and drawn again, as it is now */
}

/* Reads from stdin. Returns false if it broke. */
static bool read_keys(struct client *c)
{
    ssize_t n = read(STDIN_FILENO, c->keys, sizeof c->keys);

    if (n > 0) {
        c->keys_len = (size_t)n;
        c->keys_pos = 0;
    } else if (n == 0) {
        leave(c); /* the end of input: leave as if 0 was chosen */
    } else if (errno != EINTR && errno != EAGAIN) {
        show_error(c, "error: cannot read stdin: %s\n", strerror(errno));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------- The loop */

/* What poll() watches. */
enum { KEYBOARD, SERVER };

/*
 * Stdin is read when what was read before is all handled; from a pipe,
 * only once the output is all sent too, so that a long script goes out no
 * faster than the server takes it. The socket is always read, and written
 * while output waits.
 */
static void watch_setup(const struct client *c, struct pollfd *watch)
{
    bool keys_done = c->keys_pos == c->keys_len;

    watch[KEYBOARD].fd = -1; /* poll() skips a negative descriptor */
    if (!c->quit && keys_done && (c->terminal || c->out_len == 0))
        watch[KEYBOARD].fd = STDIN_FILENO;
    watch[KEYBOARD].events = POLLIN;
    watch[SERVER].fd = c->sock;
    watch[SERVER].events = POLLIN | (c->out_len > 0 ? POLLOUT : 0);
}

/* How long poll() may wait: until a deadline, if one is running. */
static int poll_timeout(const struct client *c)
{
    if (c->quit)
        return time_left(c->quit_deadline);
    if (c->who_waiting)
        return time_left(c->who_deadline);
    return -1;
}

/*
 * Leaving, the client does not just close the socket: the server may
 * still have lines on their way, answers to the last things sent, and
 * closing with them unread makes the system reset the connection. Once
 * the output is all sent, shutdown() tells the server that nothing more
 * will come; the server sends what it still has and closes. Returns
 * RUNNING, or the exit status once there is nothing left to wait for.
 */
static int goodbye(struct client *c)
{
    if (time_left(c->quit_deadline) == 0) {
        if (c->out_len == 0)
            return 0; /* the server took too long to close */
        show_error(c, "error: the server did not take the last %zu bytes\n",
                   c->out_len);
        return 1;
    }
    if (!c->shut && c->out_len == 0) {
        if (shutdown(c->sock, SHUT_WR) < 0)
            return 0; /* the connection is gone already */
        c->shut = true;
    }
    return RUNNING;
}

/* One turn of the loop: waits for the keyboard or the server, and serves
 * whichever is ready. Returns RUNNING or the exit status. */
static int serve_one_turn(struct client *c)
{
    struct pollfd watch[2];
    int ready, status;

    watch_setup(c, watch);
    ready = poll(watch, 2, poll_timeout(c));
    if (ready < 0 && errno != EINTR) {
        show_error(c, "error: poll: %s\n", strerror(errno));
        return 1;
    }
    if (ready > 0 && (watch[SERVER].revents & ~POLLOUT) &&
        (status = take_from_server(c)) != RUNNING)
        return status;
    if (ready > 0 && watch[KEYBOARD].revents && !read_keys(c))
        return 1;
    handle_keys(c);
    return flush_output(c) ? RUNNING : 1;
}

/* Serves the keyboard and the server until the user leaves (status 0) or
 * the connection ends (status 1). */
static int run(struct client *c)
{
    int status = RUNNING;

    show_menu(c);
    while (status == RUNNING) {
        if (c->quit && (status = goodbye(c)) != RUNNING)
            break;
        if (c->terminal && !c->line_shown && !c->quit)
            line_draw(c);
        if (fflush(stdout) == EOF) {
            perror("error: cannot write to stdout");
            return 1;
        }
        status = serve_one_turn(c);
    }
    line_hide(c);
    fflush(stdout);
    return status;
}

int main(int argc, char **argv)
{
    static struct client c; /* static: its buffers are too big for a stack */
    struct options opts = {DEFAULT_IP, DEFAULT_PORT};
    int status;

    parse_options(argc, argv, &opts);
    /* A write to a connection the server has closed fails with EPIPE
     * instead of killing the client with SIGPIPE. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("error: cannot ignore SIGPIPE");
        return 1;
    }
    c.sock = connect_to(opts.ip, opts.port);
    if (c.sock < 0)
        return 1;
    if (!make_nonblocking(c.sock)) {
        close(c.sock);
        return 1;
    }
    c.columns = DEFAULT_COLUMNS;
    if (at_terminal()) {
        if (atexit(terminal_restore) != 0) {
            fprintf(stderr, "error: cannot arrange to restore the terminal\n");
            close(c.sock);
            return 1;
        }
        if (!terminal_enter_raw_mode()) {
            close(c.sock);
            return 1;
        }
        /* Each turn's output then reaches the terminal in one piece. */
        setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
        c.terminal = true;
        c.ask_columns = true;
    }
    status = run(&c);
    close(c.sock);
    return status;
}
