/*
 * pty.c - runs a program on a pseudo-terminal, and shows what a terminal
 * would show of its output. The step 9 suite uses it to type into the
 * client as a person would, and to read the screen the client draws.
 *
 *   pty run RAWFILE PROGRAM [ARGS...]
 *       Runs PROGRAM with a new pseudo-terminal as its stdin, stdout and
 *       stderr. What comes on pty's own stdin is typed into it, and
 *       everything PROGRAM writes to the terminal is appended, raw, to
 *       RAWFILE. Exits with PROGRAM's status once PROGRAM has closed the
 *       terminal.
 *
 *   pty screen RAWFILE
 *       Prints the screen that RAWFILE leaves on a terminal COLUMNS wide,
 *       scrollback included: one line per row, without trailing spaces,
 *       down to the cursor's row, which is the last line printed.
 *
 *   pty check RAWFILE
 *       Exits 1, listing them on stdout, if RAWFILE holds anything a
 *       terminal would obey other than what the client itself uses: CR,
 *       LF, BS, TAB, ESC [ K, ESC [ n C and ESC [ 6 n. Invalid UTF-8 and
 *       C1 controls count too.
 *
 * It is test code, written for POSIX with the XSI pseudo-terminal calls.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define COLUMNS 80 /* the client's width when the terminal does not say */
#define CHUNK   65536
#define TAB     8

static void die(const char *what)
{
    fprintf(stderr, "pty: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* ------------------------------------------------------------- pty run */

/* Starts argv[0] on the terminal whose other end is master. */
static pid_t start_on_terminal(int master, char **argv)
{
    pid_t pid = fork();
    int slave;

    if (pid != 0)
        return pid;
    /* A session of its own, whose controlling terminal is the new one. */
    if (setsid() < 0)
        die("setsid");
    slave = open(ptsname(master), O_RDWR);
    if (slave < 0)
        die("cannot open the terminal");
    if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
        die("dup2");
    close(slave);
    close(master);
    execvp(argv[0], argv);
    die(argv[0]);
    return -1;
}

/* Appends all of buf to fd. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("write");
        buf += n;
        len -= (size_t)n;
    }
}

/*
 * Relays keys from stdin to the terminal and the program's output to the
 * raw file, until the program closes the terminal. Keys wait in a buffer
 * of their own, so that a program that stops reading them never blocks
 * whoever types.
 */
static int run(const char *rawfile, char **argv)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    int raw, status;
    char chunk[CHUNK], *keys = NULL;
    size_t keys_len = 0;
    bool keys_open = true;
    pid_t pid;

    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
        die("cannot open a pseudo-terminal");
    pid = start_on_terminal(master, argv);
    if (pid < 0)
        die("fork");
    raw = open(rawfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (raw < 0)
        die(rawfile);
    if (fcntl(master, F_SETFL, O_NONBLOCK) < 0)
        die("fcntl");
    for (;;) {
        struct pollfd watch[2] = {
            {keys_open ? 0 : -1, POLLIN, 0},
            {master, POLLIN | (keys_len ? POLLOUT : 0), 0},
        };
        ssize_t n;

        if (poll(watch, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (watch[0].revents) {
            n = read(0, chunk, sizeof chunk);
            if (n <= 0) {
                keys_open = false;
            } else {
                keys = realloc(keys, keys_len + (size_t)n);
                if (!keys)
                    die("realloc");
                memcpy(keys + keys_len, chunk, (size_t)n);
                keys_len += (size_t)n;
            }
        }
        if (keys_len > 0 && (watch[1].revents & POLLOUT)) {
            n = write(master, keys, keys_len);
            if (n > 0) {
                keys_len -= (size_t)n;
                memmove(keys, keys + n, keys_len);
            }
        }
        if (watch[1].revents & ~POLLOUT) {
            n = read(master, chunk, sizeof chunk);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                break; /* EIO: the program has closed the terminal */
            write_all(raw, chunk, (size_t)n);
        }
    }
    free(keys);
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid");
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* ------------------------------------------------- pty screen and check */

/* A cell holds one character, in UTF-8, and its NUL. */
typedef char row_t[COLUMNS][5];

struct screen {
    row_t *rows;
    size_t nrows, row, col;
    bool check;  /* list what a terminal would obey */
    int foreign; /* how many such things were found */
};

static void foreign(struct screen *s, const char *what, const char *bytes,
                    size_t len)
{
    s->foreign++;
    if (!s->check)
        return;
    printf("unexpected %s:", what);
    for (size_t i = 0; i < len; i++)
        printf(" %02x", (unsigned char)bytes[i]);
    printf("\n");
}

static void move_down(struct screen *s)
{
    s->row++;
    if (s->row < s->nrows)
        return;
    s->rows = realloc(s->rows, (s->row + 1) * sizeof *s->rows);
    if (!s->rows)
        die("realloc");
    memset(s->rows[s->row], 0, sizeof *s->rows);
    s->nrows = s->row + 1;
}

static void put(struct screen *s, const char *ch, size_t len)
{
    if (s->col >= COLUMNS) {
        move_down(s);
        s->col = 0;
    }
    memcpy(s->rows[s->row][s->col], ch, len);
    s->rows[s->row][s->col][len] = '\0';
    s->col++;
}

/* The length of the valid UTF-8 character at p, not a C1 control, or 0. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    size_t need = p[0] >= 0xf0 && p[0] <= 0xf4   ? 4
                  : p[0] >= 0xe0 && p[0] <= 0xef ? 3
                  : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
                                                 : 0;

    if (need == 0 || left < need || (p[0] == 0xc2 && p[1] < 0xa0))
        return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

/* An escape sequence at p: obeys the few the client uses. Returns its
 * length. */
static size_t escape(struct screen *s, const char *p, size_t left)
{
    size_t i = 2;

    if (left < 2 || p[1] != '[') {
        foreign(s, "escape", p, left < 2 ? left : 2);
        return left < 2 ? left : 2;
    }
    while (i < left && !(p[i] >= 0x40 && p[i] <= 0x7e))
        i++;
    if (i == left) {
        foreign(s, "unfinished escape", p, left);
        return left;
    }
    if (p[i] == 'K' && i == 2) {
        for (size_t col = s->col; col < COLUMNS; col++)
            s->rows[s->row][col][0] = '\0';
    } else if (p[i] == 'C') {
        /* "ESC [ n C": n columns to the right, not past the last one. */
        unsigned long n = i > 2 ? strtoul(p + 2, NULL, 10) : 1;

        s->col = n < COLUMNS - 1 - s->col ? s->col + n : COLUMNS - 1;
    } else if (!(p[i] == 'n' && i == 3 && p[2] == '6')) {
        foreign(s, "escape", p, i + 1);
    }
    return i + 1;
}

static void render(struct screen *s, const char *text, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char b = (unsigned char)text[i];
        size_t n = 1;

        if (b == '\r')
            s->col = 0;
        else if (b == '\n')
            move_down(s);
        else if (b == '\b')
            s->col -= s->col > 0;
        else if (b == '\t')
            s->col = (s->col / TAB + 1) * TAB < COLUMNS
                         ? (s->col / TAB + 1) * TAB
                         : COLUMNS - 1;
        else if (b == 0x1b)
            n = escape(s, text + i, len - i);
        else if (b >= 0x20 && b < 0x7f)
            put(s, text + i, 1);
        else if (b >= 0x80 &&
                 (n = utf8_len((const unsigned char *)text + i, len - i)) > 0)
            put(s, text + i, n);
        else
            foreign(s, "control", text + i, n = 1);
        i += n;
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t cap = 0, n;

    *len = 0;
    if (!f)
        die(path);
    do {
        if (*len + CHUNK > cap) {
            cap = 2 * cap + CHUNK;
            text = realloc(text, cap);
            if (!text)
                die("realloc");
        }
        n = fread(text + *len, 1, CHUNK, f);
        *len += n;
    } while (n > 0);
    fclose(f);
    return text;
}

static int screen(const char *rawfile, bool check)
{
    struct screen s = {NULL, 0, 0, 0, check, 0};
    size_t len;
    char *text = slurp(rawfile, &len);

    s.row = (size_t)-1;
    move_down(&s);
    render(&s, text, len);
    for (size_t r = 0; !check && r <= s.row; r++) {
        size_t end = COLUMNS;

        while (end > 0 && (s.rows[r][end - 1][0] == '\0' ||
                           strcmp(s.rows[r][end - 1], " ") == 0))
            end--;
        for (size_t col = 0; col < end; col++)
            fputs(s.rows[r][col][0] ? s.rows[r][col] : " ", stdout);
        putchar('\n');
    }
    free(text);
    free(s.rows);
    return check && s.foreign > 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 4 && strcmp(argv[1], "run") == 0)
        return run(argv[2], argv + 3);
    if (argc == 3 && strcmp(argv[1], "screen") == 0)
        return screen(argv[2], false);
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return screen(argv[2], true);
    fprintf(stderr, "usage: pty run RAWFILE PROGRAM [ARGS...]\n"
                    "       pty screen RAWFILE\n"
                    "       pty check RAWFILE\n");
    return 2;
}
