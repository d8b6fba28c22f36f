/*
 * fake-server.c - a server that says what it is told and hears nothing.
 * The step 9 suite puts the client in front of it to see what the client
 * does with a server that breaks the rules.
 *
 *   fake-server
 *       Listens on 127.0.0.1, on a free port, and prints
 *       "listening on 127.0.0.1:PORT". Takes one connection, and sends it
 *       whatever comes on stdin, as it comes, byte for byte (escape
 *       sequences and all). It never reads what the client sends, and its
 *       receive buffer is small, so a client that keeps sending soon finds
 *       the connection full. Ends when stdin ends, or when sending finds
 *       the client gone.
 *
 * It is test code, written for POSIX.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECEIVE_BUFFER 4096

static int die(const char *what)
{
    fprintf(stderr, "fake-server: %s: %s\n", what, strerror(errno));
    return 2;
}

int main(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int size = RECEIVE_BUFFER, listener, client;
    char chunk[4096];
    ssize_t n;

    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    /* Set before listen(), so that the connection starts with it. */
    if (listener < 0 ||
        setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0 ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(listener, 1) < 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
        return die("cannot listen");
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    client = accept(listener, NULL, NULL);
    if (client < 0)
        return die("accept");
    while ((n = read(0, chunk, sizeof chunk)) > 0)
        for (ssize_t sent = 0, k; sent < n; sent += k)
            if ((k = write(client, chunk + sent, (size_t)(n - sent))) < 0)
                return errno == EPIPE || errno == ECONNRESET ? 0 : die("write");
    close(client);
    close(listener);
    return 0;
}
