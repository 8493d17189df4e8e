/* autopass-cc's compile client: the `autopass-cc` / `autopass-c++` executables install.sh builds.
 *
 * It hands each call to the warm compile server (autopass_cc/server.py has the why, the design
 * and the protocol) and exits with the status the call ended with, or, for a pass-through the
 * server hands back, exec-s the real compiler itself.  Whenever the server cannot
 * take the call -- none running, a socket directory that is not ours, closed standard streams, a
 * refusal -- it runs the standalone Python wrapper instead (exec, same argv), and when none was
 * running it starts one, detached, for the calls that follow.  Management subcommands (tune,
 * stats, ...) always run standalone.  AUTOPASS_SERVER=0 turns the server off.
 *
 * Built with: -DAP_PYTHON='"/path/to/python3"' -DAP_PATHS='"[...python list of paths...]"'
 *             -DAP_TAG='"install id"'
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AP_PYTHON
#error "build with -DAP_PYTHON, -DAP_PATHS and -DAP_TAG (install.sh does)"
#endif

extern char **environ;

static const char *SUBCOMMANDS[] = {"init", "tune", "stats", "explain", "cache", "demo",
                                    "doctor", "help", "server", NULL};

#define WRAPPER_CODE                                                                     \
    "import sys;sys.path[0:0]=" AP_PATHS ";from autopass_cc.wrapper import main;" \
    "sys.exit(main(sys.argv[1:]))"
#define SERVER_CODE \
    "import sys;sys.path[0:0]=" AP_PATHS ";from autopass_cc.server import main;sys.exit(main())"

/* The standalone wrapper, same argv (argv[0] included: it tells a masquerade). */
static void run_standalone(int argc, char **argv) {
    char **v = calloc((size_t)argc + 6, sizeof *v);
    if (v) {
        v[0] = AP_PYTHON;
        v[1] = "-I";
        v[2] = "-S";
        v[3] = "-c";
        v[4] = WRAPPER_CODE;
        for (int i = 0; i < argc; i++) v[5 + i] = argv[i];
        execv(AP_PYTHON, v);
    }
    fprintf(stderr, "autopass-cc: cannot run %s (%s); reinstall with ./install.sh\n", AP_PYTHON,
            strerror(errno));
    exit(127);
}

/* Start a server for `sock`, detached (own session, no inherited descriptors), unless one holds
 * its lock already.  Never waits for it. */
static void start_server(const char *sock) {
    char lock[PATH_MAX];
    if (snprintf(lock, sizeof lock, "%s.lock", sock) >= (int)sizeof lock) return;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd);
    if (held) return;
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid > 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return;
    }
    setsid();
    if (fork() != 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
    for (int i = 3; i < maxfd; i++) close(i); /* e.g. make's jobserver pipe: never hold it */
    char *v[] = {AP_PYTHON, "-I", "-S", "-c", SERVER_CODE, (char *)sock, NULL};
    execv(AP_PYTHON, v);
    _exit(127);
}

struct buf {
    char *p;
    size_t n, cap;
};

static int put(struct buf *b, const char *s, size_t len) {
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->p[b->n + len] = '\0';
    b->n += len + 1;
    return 0;
}

static int putstr(struct buf *b, const char *s) { return put(b, s, strlen(s)); }

static int putnum(struct buf *b, unsigned long long v) {
    char s[32];
    snprintf(s, sizeof s, "%llu", v);
    return putstr(b, s);
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static volatile sig_atomic_t child_pgid, pending;

static void forward(int sig) {
    pending = sig; /* (a pass-through handed back before its compiler started: see main) */
    if (child_pgid > 0) kill(-child_pgid, sig);
}

/* Read exactly n bytes; 0 on success. */
static int read_all(int fd, char *p, size_t n) {
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The worker handed the call back ("X<n>\n" + n bytes: argc, argv..., then KEY=VALUE entries,
 * each NUL-terminated): exec that command in place of this process, as the standalone wrapper
 * would have.  Returns only when it cannot (exit code for the build). */
static int exec_handed(int fd, long long n) {
    if (n <= 0 || n > (1LL << 30)) return -1;
    char *p = malloc((size_t)n + 1);
    if (!p || read_all(fd, p, (size_t)n) != 0) return -1;
    p[n] = '\0';
    size_t fields = 0;
    for (long long i = 0; i < n; i++) fields += p[i] == '\0';
    char **v = calloc(fields + 2, sizeof *v);
    if (!v) return -1;
    size_t k = 0;
    for (char *q = p; q < p + n; q += strlen(q) + 1) v[k++] = q;
    long argc = k ? strtol(v[0], NULL, 10) : 0;
    if (argc < 1 || (size_t)argc >= k) return -1;
    char **args = calloc((size_t)argc + 1, sizeof *args), **env = calloc(k - (size_t)argc, sizeof *env);
    if (!args || !env) return -1;
    memcpy(args, v + 1, (size_t)argc * sizeof *v);
    memcpy(env, v + 1 + argc, (k - 1 - (size_t)argc) * sizeof *v);
    close(fd);
    execve(args[0], args, env);
    fprintf(stderr, "autopass-cc: cannot run %s: %s\n", args[0], strerror(errno));
    return 127;
}

/* Read one "X...\n" reply line; returns its letter, 0 on EOF or error. */
static char read_line(int fd, long long *value) {
    char line[64];
    size_t n = 0;
    while (n < sizeof line - 1) {
        ssize_t r = read(fd, line + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    *value = n > 1 ? strtoll(line + 1, NULL, 10) : 0;
    return line[0];
}

int main(int argc, char **argv) {
    if (argc < 1) return 127;
    const char *prog = strrchr(argv[0], '/');
    prog = prog ? prog + 1 : argv[0];
    if (strncmp(prog, "autopass-c", 10) == 0 && argc > 1)
        for (const char **s = SUBCOMMANDS; *s; s++)
            if (strcmp(argv[1], *s) == 0) run_standalone(argc, argv);
    const char *off = getenv("AUTOPASS_SERVER");
    if (off && strcmp(off, "0") == 0) run_standalone(argc, argv);
    for (int i = 0; i < 3; i++)
        if (fcntl(i, F_GETFD) < 0) run_standalone(argc, argv);

    /* The socket directory: ours alone (mode 0700), else no server. */
    char dir[PATH_MAX], sock[PATH_MAX];
    const char *d = getenv("AUTOPASS_SERVER_DIR");
    if (d && *d)
        snprintf(dir, sizeof dir, "%s", d);
    else
        snprintf(dir, sizeof dir, "/tmp/autopass-cc-%u", (unsigned)getuid());
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int len = snprintf(sock, sizeof sock, "%s/%s.sock", dir, AP_TAG);
    if (len < 0 || (size_t)len >= sizeof addr.sun_path) run_standalone(argc, argv);
    memcpy(addr.sun_path, sock, (size_t)len + 1);
    mkdir(dir, 0700);
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
        run_standalone(argc, argv);

    char *cwd = getcwd(NULL, 0);
    struct stat st_root, st_cwd;
    if (!cwd || stat("/", &st_root) != 0 || stat(cwd, &st_cwd) != 0) run_standalone(argc, argv);

    struct buf b = {0};
    mode_t mask = umask(0);
    umask(mask);
    int bad = putstr(&b, cwd) || putnum(&b, mask) || putnum(&b, st_root.st_dev) ||
              putnum(&b, st_root.st_ino) || putnum(&b, st_cwd.st_dev) || putnum(&b, st_cwd.st_ino) ||
              putnum(&b, (unsigned long long)argc);
    for (int i = 0; !bad && i < argc; i++) bad = putstr(&b, argv[i]);
    for (char **e = environ; !bad && e && *e; e++) bad = putstr(&b, *e);
    if (bad || b.n > UINT32_MAX) run_standalone(argc, argv);

    /* Connect only now: a server child waits for the request from the moment it accepts. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) run_standalone(argc, argv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED) start_server(sock);
        close(fd);
        run_standalone(argc, argv);
    }

    char head[8] = {'A', 'P', 'C', '2'}; /* 2: this client takes X replies */
    uint32_t n = (uint32_t)b.n;
    for (int i = 0; i < 4; i++) head[4 + i] = (char)((n >> (8 * i)) & 0xff);
    int fds[3] = {0, 1, 2};
    char control[CMSG_SPACE(sizeof fds)];
    memset(control, 0, sizeof control);
    struct iovec iov[2] = {{.iov_base = head, .iov_len = sizeof head}, {.iov_base = b.p, .iov_len = b.n}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = control,
                         .msg_controllen = sizeof control};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    ssize_t w;
    do {
        w = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w < (ssize_t)sizeof head || send_all(fd, b.p + (w - sizeof head), b.n - (w - sizeof head)) != 0) {
        close(fd);
        run_standalone(argc, argv);
    }

    long long value = 0;
    char kind = read_line(fd, &value);
    if (kind != 'P' || value <= 0) { /* refused, or ended before taking the call: nothing ran */
        close(fd);
        run_standalone(argc, argv);
    }
    child_pgid = (pid_t)value;
    struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction before[sizeof sigs / sizeof *sigs];
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, &before[i]);

    kind = read_line(fd, &value);
    child_pgid = 0; /* the call has ended: its process may serve another client's call next */
    if (kind == 'X') {
        /* The signals as this process got them (an ignored SIGINT stays ignored in the compiler). */
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &before[i], NULL);
        /* A signal that came while the worker decided: no compiler has seen it yet. */
        if (pending) raise(pending);
        int rc = exec_handed(fd, value);
        if (rc > 0) return rc;
        run_standalone(argc, argv); /* a malformed reply: nothing ran yet */
    }
    if (kind != 'S') {
        fprintf(stderr, "autopass-cc: lost the compile server while it ran this call (its exit status is "
                        "unknown); run the build again, or set AUTOPASS_SERVER=0\n");
        return 1;
    }
    int status = (int)value;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        return 128 + sig;
    }
    return 1;
}
