/*
 * echo_server.c - an epoll echo server with ONE COROUTINE PER CONNECTION.
 *
 * Why coroutines?  A classic non-blocking server turns every connection into a
 * state machine ("I was in the middle of writing bytes 4096..8191 of the last
 * read, resume there when the socket is writable").  With stackful coroutines
 * each connection is instead written as the obvious blocking loop:
 *
 *     for (;;) {
 *         n = co_read(conn, buf, sizeof buf);   // "blocks" only this coroutine
 *         if (n <= 0) break;
 *         co_write_all(conn, buf, n);           // ditto
 *     }
 *
 * The state (buf, n, how far we got) simply lives on the coroutine's own
 * stack.  When a socket would block, co_read()/co_write_all() tell epoll what
 * they are waiting for and coro_switch() back to the event loop, which runs on
 * the thread's MAIN coroutine.  When epoll reports the socket ready, the loop
 * coro_switch()es straight back into that connection's coroutine, and the
 * co_read() call simply returns with data.
 *
 *     main coroutine (event loop)            connection coroutines
 *     ---------------------------            ---------------------
 *     epoll_wait()
 *       listener ready -> accept(),
 *         coro_new(), coro_switch() ------>  conn#1: recv() = EAGAIN
 *                                  <------   wait_for(EPOLLIN): coro_switch(main)
 *       conn#1 ready  -> coro_switch() --->  recv() = 512 bytes, send() them,
 *                                  <------   recv() = EAGAIN, wait again ...
 *       conn#1 ready  -> coro_switch() --->  recv() = 0 (peer closed): return
 *                                  <------   (a finished coroutine hands control
 *       coro_state() == DEAD:                 to its parent, which is main)
 *         coro_destroy()
 *
 * Rules that keep this simple: only the main coroutine switches INTO
 * connection coroutines, and connection coroutines only switch back to main
 * (or return).  The whole program is single-threaded: no locks anywhere.
 *
 * Usage
 *   echo_server --port P
 *       Serve on 127.0.0.1:P (P = 0 picks a free port).  Prints
 *       "listening on 127.0.0.1:PORT" on stdout as soon as it accepts.
 *   echo_server --demo [--clients N] [--bytes B] [--port P]
 *       Runs the server AND N clients in this one process, all as coroutines
 *       on the same event loop (defaults: N = 1000, B = 65536).  Each client
 *       sends B bytes of pseudo-random data in random-size chunks and checks
 *       every echoed byte.  Exit status 0 only if every byte came back right.
 *
 * Shutdown
 *   SIGTERM or SIGINT (Ctrl-C).  The signals are blocked and read from a
 *   signalfd registered in epoll, so a signal is just another event for the
 *   loop: no async-signal-safety concerns.  On shutdown the server stops
 *   accepting, coro_kill()s every connection coroutine that is still waiting
 *   (its pending co_read()/co_write_all() fails with ECANCELED, so it closes its
 *   socket and returns like on any error), prints one line
 *       stats: connections_served=C bytes_echoed=B peak_concurrent=P
 *   on stdout and exits with status 0.  (The demo prints the same line and
 *   stops by itself when all its clients are done.)
 *
 * Build (see ci/test-examples.sh)
 *   cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -O2 \
 *      -Iinclude examples/c/echo_server.c -Ltarget/debug -lcoro \
 *      -Wl,-rpath,$PWD/target/debug -o target/examples/echo_server
 */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coro.h"

/* Every coroutine here gets a 64 KiB stack: plenty for a 16 KiB I/O buffer
 * plus a few library calls, and 1000 connections cost only 64 MiB of address
 * space (pages are only committed when touched). */
#define TASK_STACK_SIZE (64 * 1024)
#define IO_BUFFER_SIZE (16 * 1024)

/* ------------------------------------------------------------------------ */
/* Error handling                                                            */
/* ------------------------------------------------------------------------ */

static void die(const char *what) /* a syscall failed: report errno and exit */
{
    perror(what);
    exit(EXIT_FAILURE);
}

/* Every coro_* call returns a coro_status_t.  Outside the few places where a
 * status other than CORO_OK is expected (CORO_KILLED in wait_for(), CORO_ENOMEM
 * when spawning), anything but CORO_OK is a bug: report it and stop. */
#define CORO_CHECK(call)                                                      \
    do {                                                                      \
        coro_status_t check_status_ = (call);                                 \
        if (check_status_ != CORO_OK) {                                       \
            fprintf(stderr, "echo_server: %s:%d: %s failed: %s (status %u)\n", \
                    __FILE__, __LINE__, #call, coro_strerror(check_status_),  \
                    (unsigned)check_status_);                                 \
            exit(EXIT_FAILURE);                                               \
        }                                                                     \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Tasks: a coroutine plus the socket it works on                            */
/* ------------------------------------------------------------------------ */

enum task_kind { TASK_CONNECTION, TASK_DEMO_CLIENT };

struct task {
    enum task_kind kind;
    coro_t *co;         /* the coroutine running this task */
    int fd;             /* its non-blocking socket; -1 once closed */
    bool in_epoll;      /* fd was EPOLL_CTL_ADDed (later waits use _MOD) */
    uint64_t index;     /* connection / client number, for names and seeds */
    struct task *prev, *next; /* list of live tasks (for shutdown) */
};

/* All global state of the program, in one place. */
static struct {
    int epfd;           /* the epoll instance */
    int listen_fd;      /* listening socket (epoll data.ptr = &listen_fd) */
    int signal_fd;      /* SIGINT/SIGTERM (epoll data.ptr = &signal_fd) */
    struct sockaddr_in addr; /* where we listen (the demo clients connect here) */
    coro_t *main;       /* the main coroutine = the event loop */
    struct task *tasks; /* all live tasks */
    bool stop;          /* a signal arrived */

    /* statistics */
    uint64_t connections_served;
    uint64_t bytes_echoed;
    uint64_t live_connections, peak_connections;
    uint64_t coroutines_created, live_coroutines, peak_coroutines;

    /* demo only */
    bool demo;
    uint64_t demo_clients, demo_bytes;
    uint64_t live_clients, clients_ok, clients_failed;
    const char *first_failure;
} g = { .epfd = -1, .listen_fd = -1, .signal_fd = -1 };

/* ------------------------------------------------------------------------ */
/* Blocking-style I/O for coroutines                                         */
/*                                                                           */
/* These are the only functions that know about the event loop.  Everything  */
/* a connection does is written in terms of them.                            */
/* ------------------------------------------------------------------------ */

/* Suspend the calling task until its socket reports one of `events`.
 *
 * We (re-)arm the socket in epoll with EPOLLONESHOT, so it fires once and is
 * then disarmed until the next wait_for(): epoll never reports a socket whose
 * coroutine is not actually waiting.  Then we switch to the event loop.  We
 * resume when the loop switches back to us (socket ready), or when the loop
 * coro_kill()s us at shutdown: then our coro_switch() returns CORO_KILLED and
 * we report ECANCELED to the caller, which cleans up like after any error.
 *
 * Returns 0 when the socket is (probably) ready, -1 with errno set otherwise.
 */
static int wait_for(struct task *t, uint32_t events)
{
    struct epoll_event ev = { .events = events | EPOLLONESHOT, .data.ptr = t };
    if (epoll_ctl(g.epfd, t->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->fd, &ev) != 0)
        return -1;
    t->in_epoll = true;

    coro_status_t status = coro_switch(g.main, NULL, NULL);
    if (status == CORO_KILLED) {
        errno = ECANCELED;
        return -1;
    }
    CORO_CHECK(status);
    return 0;
}

/* Like read(2) on a blocking socket: returns > 0 bytes, 0 at end of stream,
 * -1 with errno on error.  Only this coroutine waits; the rest of the program
 * keeps running. */
static ssize_t co_read(struct task *t, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(t->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) /* (EWOULDBLOCK == EAGAIN on Linux) */
            return -1;
        if (wait_for(t, EPOLLIN) != 0)
            return -1;
    }
}

/* Write all `len` bytes (like a blocking write loop).  Returns 0 or -1/errno. */
static int co_write_all(struct task *t, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        /* MSG_NOSIGNAL: a peer that went away gives EPIPE, not SIGPIPE. */
        ssize_t n = send(t->fd, p, len, MSG_NOSIGNAL);
        if (n >= 0) {
            p += n;
            len -= (size_t)n;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN) {
            return -1;
        } else if (wait_for(t, EPOLLOUT) != 0) {
            return -1;
        }
    }
    return 0;
}

/* close(2) the task's socket.  Closing also removes it from epoll. */
static void co_close(struct task *t)
{
    if (t->fd >= 0 && close(t->fd) != 0)
        perror("echo_server: close");
    t->fd = -1;
}

static bool is_expected_disconnect(int err)
{
    return err == ECONNRESET || err == EPIPE || err == ECANCELED;
}

/* ------------------------------------------------------------------------ */
/* The connection coroutine: the whole echo protocol, in blocking style      */
/* ------------------------------------------------------------------------ */

/* Entry point of a connection coroutine.  `arg` is the first value switched
 * into it: its task.  The return value goes to the parent (main). */
static void *connection_main(coro_t *self, void *arg)
{
    (void)self;
    struct task *conn = arg;
    char buf[IO_BUFFER_SIZE]; /* lives on this coroutine's own stack */

    for (;;) {
        ssize_t n = co_read(conn, buf, sizeof buf);
        if (n == 0)
            break; /* the client closed its side: we are done */
        if (n < 0 || co_write_all(conn, buf, (size_t)n) != 0) {
            if (!is_expected_disconnect(errno))
                fprintf(stderr, "echo_server: connection %" PRIu64 ": %s\n",
                        conn->index, strerror(errno));
            break;
        }
        g.bytes_echoed += (uint64_t)n;
    }

    co_close(conn);
    return NULL; /* control (and this NULL) passes to our parent: main */
}

/* ------------------------------------------------------------------------ */
/* Task management (runs on the main coroutine)                              */
/* ------------------------------------------------------------------------ */

/* Called by the loop once a task's coroutine is DEAD. */
static void finish_task(struct task *t)
{
    co_close(t); /* normally already done by the coroutine itself */
    CORO_CHECK(coro_destroy(t->co));
    g.live_coroutines--;

    if (t->kind == TASK_CONNECTION)
        g.live_connections--;
    else
        g.live_clients--;

    if (t->prev)
        t->prev->next = t->next;
    else
        g.tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
}

/* What the loop does after control comes back from a task: if the coroutine
 * finished (returned), `result` is its return value and it gets cleaned up;
 * otherwise it is waiting in wait_for() and epoll will tell us when to
 * resume it. */
static void after_switch(struct task *t, void *result)
{
    coro_state_t state;
    CORO_CHECK(coro_state(t->co, &state));
    if (state != CORO_DEAD)
        return;

    if (t->kind == TASK_DEMO_CLIENT) {
        /* A demo client returns NULL on success, else a message. */
        if (result == NULL) {
            g.clients_ok++;
        } else {
            g.clients_failed++;
            if (!g.first_failure)
                g.first_failure = result;
        }
    }
    finish_task(t);
}

/* Switch from the loop into task `t` with `value`; returns when `t` waits or
 * finishes. */
static void run_task(struct task *t, void *value)
{
    void *result = NULL;
    CORO_CHECK(coro_switch(t->co, value, &result));
    after_switch(t, result);
}

/* Create a task for socket `fd` running `entry`, and start it right away: it
 * runs until it first has to wait.  Returns false (and closes fd) if no
 * coroutine could be created. */
static bool spawn_task(enum task_kind kind, int fd, uint64_t index, coro_entry_t entry)
{
    struct task *t = calloc(1, sizeof *t);
    if (!t) {
        perror("echo_server: calloc");
        close(fd);
        return false;
    }
    t->kind = kind;
    t->fd = fd;
    t->index = index;

    char name[32];
    snprintf(name, sizeof name, "%s#%" PRIu64,
             kind == TASK_CONNECTION ? "conn" : "client", index);

    coro_options_t opts;
    CORO_CHECK(coro_options_init(&opts));
    opts.stack_size = TASK_STACK_SIZE;
    opts.name = name;  /* copied by coro_new; shows up in crash messages */

    /* The coroutine's parent defaults to the current coroutine: main.  So
     * when `entry` returns, control comes back to the loop. */
    coro_status_t status = coro_new(entry, &opts, &t->co);
    if (status != CORO_OK) {
        fprintf(stderr, "echo_server: coro_new: %s\n", coro_strerror(status));
        if (status != CORO_ENOMEM)
            exit(EXIT_FAILURE);
        close(fd);
        free(t);
        return false;
    }

    t->next = g.tasks;
    if (g.tasks)
        g.tasks->prev = t;
    g.tasks = t;

    g.coroutines_created++;
    if (++g.live_coroutines > g.peak_coroutines)
        g.peak_coroutines = g.live_coroutines;
    if (kind == TASK_CONNECTION) {
        g.connections_served++;
        if (++g.live_connections > g.peak_connections)
            g.peak_connections = g.live_connections;
    } else {
        g.live_clients++;
    }

    run_task(t, t); /* first switch: the entry receives its task as `arg` */
    return true;
}

/* Shutdown: make a task's pending co_read()/co_write_all() fail with
 * ECANCELED.  The coroutine then cleans up and returns, which ends the kill. */
static void kill_task(struct task *t)
{
    void *result = NULL;
    CORO_CHECK(coro_kill(t->co, (void *)"shutdown", &result));

    coro_state_t state;
    CORO_CHECK(coro_state(t->co, &state));
    if (state != CORO_DEAD) { /* our coroutines never refuse to die */
        fprintf(stderr, "echo_server: task %" PRIu64 " survived coro_kill\n", t->index);
        exit(EXIT_FAILURE);
    }
    after_switch(t, result);
}

/* ------------------------------------------------------------------------ */
/* Listening socket and signals (handled directly by the loop)              */
/* ------------------------------------------------------------------------ */

static void setup_listener(uint16_t port)
{
    g.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g.listen_fd < 0)
        die("socket");

    int one = 1;
    if (setsockopt(g.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        die("setsockopt(SO_REUSEADDR)");

    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */
    if (bind(g.listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");
    if (listen(g.listen_fd, SOMAXCONN) != 0)
        die("listen");

    socklen_t len = sizeof g.addr;
    if (getsockname(g.listen_fd, (struct sockaddr *)&g.addr, &len) != 0)
        die("getsockname");

    /* Level-triggered: as long as connections are pending, we hear about it. */
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &g.listen_fd };
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.listen_fd, &ev) != 0)
        die("epoll_ctl(listener)");

    if (printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(g.addr.sin_port)) < 0 ||
        fflush(stdout) != 0)
        die("stdout");
}

/* Accept every pending connection; each gets its own coroutine. */
static void accept_connections(void)
{
    for (;;) {
        int fd = accept4(g.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN)
                return; /* no more pending connections */
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* EMFILE etc.: leave the rest pending and try on the next round. */
            perror("echo_server: accept4");
            return;
        }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            perror("echo_server: setsockopt(TCP_NODELAY)");
        spawn_task(TASK_CONNECTION, fd, g.connections_served + 1, connection_main);
    }
}

/* Block SIGINT and SIGTERM and receive them through a signalfd in epoll. */
static void setup_signals(void)
{
    sigset_t mask;
    if (sigemptyset(&mask) != 0 || sigaddset(&mask, SIGINT) != 0 ||
        sigaddset(&mask, SIGTERM) != 0)
        die("sigset");
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
        die("sigprocmask");
    g.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (g.signal_fd < 0)
        die("signalfd");
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &g.signal_fd };
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.signal_fd, &ev) != 0)
        die("epoll_ctl(signalfd)");
}

static void handle_signal(void)
{
    struct signalfd_siginfo info;
    ssize_t n = read(g.signal_fd, &info, sizeof info);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        die("read(signalfd)");
    }
    if (n == (ssize_t)sizeof info)
        g.stop = true;
}

/* Raise the soft limit on open files to the hard limit: 1000 connections need
 * more than the usual 1024 descriptors once the demo's clients are counted. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit(RLIMIT_NOFILE)");
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("echo_server: setrlimit(RLIMIT_NOFILE) (continuing)");
    }
}

/* ------------------------------------------------------------------------ */
/* Demo: clients as coroutines on the same event loop                        */
/* ------------------------------------------------------------------------ */

#define DEMO_MAX_CHUNK (16 * 1024)

/* splitmix64: a tiny, good-enough PRNG; every client has its own stream. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Read exactly `len` bytes.  Returns 0, or -1 (errno set; 0 means early EOF). */
static int co_read_exact(struct task *t, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = co_read(t, p, len);
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A demo client: connect, then send chunks of random size and content, and
 * read each chunk's echo back before sending the next, comparing every byte.
 * (Waiting for the echo of one chunk before sending the next keeps the
 * client a single straight-line loop; chunks are far smaller than socket
 * buffers, so client and server can never both be stuck writing.)
 * Returns NULL on success or a static message describing the failure. */
static void *client_main(coro_t *self, void *arg)
{
    (void)self;
    struct task *t = arg;
    const char *failure = NULL;
    unsigned char out[DEMO_MAX_CHUNK], in[DEMO_MAX_CHUNK];
    uint64_t rng = 0x5EED0000u + t->index; /* a distinct stream per client */

    /* Non-blocking connect: EINPROGRESS, then wait until writable. */
    if (connect(t->fd, (struct sockaddr *)&g.addr, sizeof g.addr) != 0) {
        int err = errno;
        if (err == EINPROGRESS) {
            socklen_t len = sizeof err;
            if (wait_for(t, EPOLLOUT) != 0 ||
                getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
        if (err != 0) {
            failure = "connect failed";
            goto out;
        }
    }

    for (uint64_t sent = 0; sent < g.demo_bytes;) {
        size_t len = 1 + (size_t)(rng_next(&rng) % DEMO_MAX_CHUNK);
        if (len > g.demo_bytes - sent)
            len = (size_t)(g.demo_bytes - sent);
        for (size_t i = 0; i < len; i++)
            out[i] = (unsigned char)rng_next(&rng);

        if (co_write_all(t, out, len) != 0) {
            failure = errno == ECANCELED ? "cancelled" : "send failed";
            goto out;
        }
        if (co_read_exact(t, in, len) != 0) {
            failure = errno == 0           ? "server closed the connection early"
                      : errno == ECANCELED ? "cancelled"
                                           : "recv failed";
            goto out;
        }
        if (memcmp(in, out, len) != 0) {
            failure = "echoed bytes differ from the bytes sent";
            goto out;
        }
        sent += len;
    }

out:
    co_close(t); /* the server sees end-of-stream and finishes too */
    return (void *)failure;
}

static double now_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die("clock_gettime");
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start_demo_clients(void)
{
    for (uint64_t i = 1; i <= g.demo_clients; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket(demo client)");
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            die("setsockopt(TCP_NODELAY)");
        if (!spawn_task(TASK_DEMO_CLIENT, fd, i, client_main)) {
            fprintf(stderr, "echo_server: could not start demo client %" PRIu64 "\n", i);
            exit(EXIT_FAILURE);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The event loop (runs on the main coroutine)                               */
/* ------------------------------------------------------------------------ */

static bool loop_done(void)
{
    if (g.stop)
        return true;
    /* The demo ends once every client and every server connection finished. */
    return g.demo && g.live_clients == 0 && g.live_connections == 0;
}

static void event_loop(void)
{
    struct epoll_event events[256];

    while (!loop_done()) {
        int n = epoll_wait(g.epfd, events, (int)(sizeof events / sizeof events[0]), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *source = events[i].data.ptr;
            if (source == &g.listen_fd)
                accept_connections();
            else if (source == &g.signal_fd)
                handle_signal();
            else
                run_task(source, NULL); /* a coroutine's socket is ready */
        }
    }
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: echo_server --port P\n"
            "       echo_server --demo [--clients N] [--bytes B] [--port P]\n"
            "Echo server on 127.0.0.1 with one coroutine per connection.\n"
            "Stop it with SIGTERM or SIGINT; it then prints a stats line and exits 0.\n");
}

static uint64_t parse_number(const char *opt, const char *text, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = text ? strtoull(text, &end, 10) : 0;
    if (!text || errno != 0 || end == text || *end != '\0' || text[0] == '-' || v > max) {
        fprintf(stderr, "echo_server: %s needs a number from 0 to %" PRIu64 "\n", opt, max);
        usage(stderr);
        exit(2);
    }
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    bool have_port = false;
    uint16_t port = 0;
    g.demo_clients = 1000;
    g.demo_bytes = 64 * 1024;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--port") == 0) {
            port = (uint16_t)parse_number(arg, value, 65535);
            have_port = true;
            i++;
        } else if (strcmp(arg, "--demo") == 0) {
            g.demo = true;
        } else if (strcmp(arg, "--clients") == 0) {
            g.demo_clients = parse_number(arg, value, 100000);
            i++;
        } else if (strcmp(arg, "--bytes") == 0) {
            g.demo_bytes = parse_number(arg, value, UINT64_C(1) << 40);
            i++;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "echo_server: unknown argument '%s'\n", arg);
            usage(stderr);
            return 2;
        }
    }
    if (!have_port && !g.demo) {
        usage(stderr);
        return 2;
    }

    raise_fd_limit();
    if (g.demo) {
        /* each demo client uses two descriptors: its own and the server's */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            die("getrlimit(RLIMIT_NOFILE)");
        if (rl.rlim_cur != RLIM_INFINITY && 2 * g.demo_clients + 16 > rl.rlim_cur) {
            fprintf(stderr, "echo_server: --clients %" PRIu64 " needs more than the %llu "
                    "open files allowed (ulimit -n)\n", g.demo_clients,
                    (unsigned long long)rl.rlim_cur);
            return 2;
        }
    }

    /* The main coroutine stands for this thread's own stack.  The event loop
     * runs on it, and every coroutine we create gets it as parent. */
    CORO_CHECK(coro_main(&g.main));

    g.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g.epfd < 0)
        die("epoll_create1");
    setup_signals();
    setup_listener(port);

    double started = now_seconds();
    if (g.demo)
        start_demo_clients();

    event_loop();

    double elapsed = now_seconds() - started;

    /* Shutdown: no new connections; cancel whatever is still running. */
    if (close(g.listen_fd) != 0)
        perror("echo_server: close(listener)");
    g.listen_fd = -1;
    while (g.tasks)
        kill_task(g.tasks);
    if (close(g.signal_fd) != 0 || close(g.epfd) != 0)
        perror("echo_server: close");

    int status = EXIT_SUCCESS;
    if (g.demo) {
        bool ok = g.clients_ok == g.demo_clients && g.clients_failed == 0;
        double mib = (double)g.bytes_echoed / (1024.0 * 1024.0);
        printf("demo: %" PRIu64 " clients x %" PRIu64 " bytes, sent in random chunks of "
               "1..%d bytes, every echoed byte checked\n",
               g.demo_clients, g.demo_bytes, DEMO_MAX_CHUNK);
        printf("demo: connections  %" PRIu64 " served, %" PRIu64 " clients ok, %" PRIu64
               " failed\n", g.connections_served, g.clients_ok, g.clients_failed);
        printf("demo: bytes        %" PRIu64 " echoed (%.1f MiB)\n", g.bytes_echoed, mib);
        printf("demo: elapsed      %.3f s\n", elapsed);
        printf("demo: throughput   %.1f MiB/s\n", elapsed > 0 ? mib / elapsed : 0.0);
        printf("demo: coroutines   %" PRIu64 " created, at most %" PRIu64
               " alive at once, %d KiB stack each\n",
               g.coroutines_created, g.peak_coroutines, TASK_STACK_SIZE / 1024);
        if (g.stop)
            printf("demo: interrupted by a signal\n");
        else if (g.first_failure)
            printf("demo: first failure: %s\n", g.first_failure);
        printf("demo: verdict      %s\n", ok ? "OK" : "FAIL");
        if (!ok)
            status = EXIT_FAILURE;
    }
    printf("stats: connections_served=%" PRIu64 " bytes_echoed=%" PRIu64
           " peak_concurrent=%" PRIu64 "\n",
           g.connections_served, g.bytes_echoed, g.peak_connections);
    if (fflush(stdout) != 0)
        die("stdout");
    return status;
}
