/* The compiler fork server: a clang that has loaded and initialised its libraries once and then
 * forks a copy of itself for each compile.
 *
 * Why.  clang-19 from Debian is a small executable linked against libclang-cpp.so.19.1 and
 * libLLVM.so.19.1; before its main() runs, the dynamic loader relocates them (~560,000 relative
 * relocations, LD_DEBUG=statistics) and their static constructors register thousands of
 * command-line options.  Measured on this project's machine: `clang-19 --version` costs 19.7 ms of
 * CPU and `clang-19 -O3 -c` of an empty file 26.5 ms, against 3.8 ms and 9.0 ms for the same
 * commands run by a fork of an already-initialised clang.  A cold build pays that start-up once
 * per translation unit; here it is paid once per compiler.
 *
 * How.  Built as a shared library (install.sh) and preloaded (LD_PRELOAD) into the real compiler,
 * started with AUTOPASS_FORKSERVER_SOCKET set to a socket path (autopass_cc/forkserver.py starts it).
 * The executable's _start calls __libc_start_main(main, ...), which this library defines: by
 * then the loader has relocated every library and run their constructors, and the program's own
 * main has not started.  Here the process listens on the socket.  For each request it forks; the
 * child takes the caller's standard streams, working directory, umask and process group, resets
 * every signal to its default, closes every other descriptor, and calls glibc's own
 * __libc_start_main with the caller's argv and environment, so the compiler's own main() runs
 * exactly as in a freshly exec-ed process -- the same code, arguments and environment, the same
 * executable behind /proc/self/exe.  (Android's "zygote" starts apps the same way; AFL's fork
 * server starts fuzz targets so.)  Without AUTOPASS_FORKSERVER_SOCKET, or for a program linked against
 * a glibc older than 2.34 (whose _start passes an init function), the call goes straight to glibc:
 * the library changes nothing.
 *
 * Protocol (Unix stream socket, peers of the same uid only, one request per connection):
 *   request: "APF1", payload length (4 bytes, little endian), sent with four descriptors attached
 *            (SCM_RIGHTS): standard input, output, error, and the working directory; then the
 *            payload, NUL-terminated fields: umask (decimal), process group to join (decimal, 0:
 *            the fork server's own), argc, argv..., then KEY=VALUE environment entries to the end.
 *   replies: "P<pid>\n" when the compile is running (or "F<errno>\n": it could not be set up,
 *            nothing ran), then "S<wait status>\n" when it has ended (raw waitpid status).
 * The server exits when idle for AUTOPASS_FORKSERVER_IDLE seconds (default 600), when its parent
 * (the compile server, AUTOPASS_FORKSERVER_PARENT) ends, on SIGTERM, when the socket path no
 * longer names its socket, or when a file it has mapped has been deleted (a package upgrade
 * replaced the compiler or a library it loaded: a fresh exec would load the new one; checked once
 * a second); compiles it has started finish either way.
 *
 * Known differences from an exec-ed compiler: /proc/PID/cmdline and /proc/PID/environ show the
 * fork server's (argv[0] and the command name, /proc/PID/comm, are the caller's); the address
 * space layout is the fork server's for every compile (the compiler's output does not depend on
 * it: builds are reproducible under ASLR); the resource limits, nice value, CPU affinity and
 * cgroup are the fork server's, which are the compile server's (the caller only uses it when
 * they are also the client's: autopass_cc/server.py).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);

#define MAX_PAYLOAD (64u << 20) /* argv + environment; Linux allows 32 pages x 32 KiB per string */
#define NFDS 4

struct job {
    pid_t pid;
    int conn;
};

static struct job *jobs;
static size_t njobs, capjobs;

static void put(int fd, const char *s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static int read_full(int fd, char *buf, size_t n) {
    while (n) {
        ssize_t r = recv(fd, buf, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static void close_from(int lowest) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowest, ~0u, 0) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = lowest; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
}

/* In the forked child: become the caller's process and run the compiler's main(). */
static int run_child(start_fn real, main_fn main_, void (*rtld_fini)(void), void *stack_end, int report,
                     int conn, const int *fds, char *payload, size_t len) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    /* Fields: umask, pgid, argc, argv..., env... */
    char *fields[3];
    char *p = payload, *end = payload + len;
    for (int i = 0; i < 3; i++) {
        fields[i] = p;
        p = memchr(p, 0, (size_t)(end - p));
        if (!p) goto bad;
        p++;
    }
    long argc = strtol(fields[2], NULL, 10);
    if (argc < 1 || argc > (long)len) goto bad;
    size_t nenv = 0;
    for (char *q = p; q < end; q++) nenv += (*q == 0);
    char **vec = calloc((size_t)argc + nenv + 2, sizeof(char *));
    if (!vec) goto bad;
    size_t k = 0;
    for (char *q = p; q < end && k < (size_t)argc + 1 + nenv; q += strlen(q) + 1) {
        vec[k++] = q;
        if (k == (size_t)argc) vec[k++] = NULL; /* argv ends; the environment follows */
    }
    if (k < (size_t)argc + 1) goto bad;
    vec[k] = NULL;
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i], i) < 0) goto bad;
    if (fchdir(fds[3]) < 0) goto bad;
    umask((mode_t)strtol(fields[0], NULL, 10));
    long pgid = strtol(fields[1], NULL, 10);
    if (pgid > 0 && setpgid(0, (pid_t)pgid) < 0) goto bad;
    const char *base = strrchr(vec[0], '/');
    prctl(PR_SET_NAME, base ? base + 1 : vec[0], 0, 0, 0);
    /* A caller that gave up waiting for "P" (forkserver.py: START_TIMEOUT_S) has closed its end
     * and compiles by itself: this compile must not run beside it. */
    char peek;
    if (recv(conn, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        errno = ECONNRESET;
        goto bad;
    }
    close_from(3); /* the report pipe too: its end of file tells the server all went well */
    /* A dynamically linked program's environment was set by the loader, and glibc's
     * __libc_start_main (csu/libc-start.c) keeps it: the caller's is put in its place here. */
    environ = vec + argc + 1;
    program_invocation_name = vec[0]; /* (set from argv[0] by the loader too: error(3), err(3)) */
    program_invocation_short_name = (char *)(base ? base + 1 : vec[0]);
    return real(main_, (int)argc, vec, NULL, NULL, rtld_fini, stack_end);
bad:;
    char msg[16];
    int e = errno ? errno : EINVAL;
    memcpy(msg, &e, sizeof e);
    if (write(report, msg, sizeof e) < 0) { /* nothing more to do */ }
    _exit(127);
}

static int accept_request(int conn, int fds[NFDS], char **payload, size_t *len) {
    char head[8];
    char ctl[CMSG_SPACE(sizeof(int) * NFDS)];
    struct iovec iov = {head, sizeof head};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof ctl;
    ssize_t r;
    do r = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
    int got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (got < NFDS) fds[got++] = fd; else close(fd);
            }
        }
    }
    if (r <= 0 || got != NFDS || (r < 8 && read_full(conn, head + r, 8 - (size_t)r) < 0) || memcmp(head, "APF1", 4)) goto fail;
    uint32_t n = (uint32_t)(unsigned char)head[4] | (uint32_t)(unsigned char)head[5] << 8 |
                 (uint32_t)(unsigned char)head[6] << 16 | (uint32_t)(unsigned char)head[7] << 24;
    if (n == 0 || n > MAX_PAYLOAD) goto fail;
    *payload = malloc(n + 1);
    if (!*payload || read_full(conn, *payload, n) < 0) {
        free(*payload);
        goto fail;
    }
    (*payload)[n] = 0;
    *len = n;
    return 0;
fail:
    for (int i = 0; i < got; i++) close(fds[i]);
    return -1;
}

static void reap(void) {
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        for (size_t i = 0; i < njobs; i++) {
            if (jobs[i].pid == pid) {
                char line[32];
                snprintf(line, sizeof line, "S%d\n", status);
                put(jobs[i].conn, line);
                close(jobs[i].conn);
                jobs[i] = jobs[--njobs];
                break;
            }
        }
    }
}

/* True when a file this process has mapped has been deleted or replaced since (/proc/PID/maps
 * marks its mappings " (deleted)"). */
static int mapped_file_deleted(void) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    static char buf[1 << 16];
    char tail[16] = "";
    int found = 0;
    ssize_t r;
    while (!found && (r = read(fd, buf, sizeof buf - 1)) > 0) {
        buf[r] = 0;
        /* (a mark split across two reads: the previous read's last bytes joined to this one's first) */
        char join[48];
        snprintf(join, sizeof join, "%s%.15s", tail, buf);
        found = strstr(buf, " (deleted)\n") != NULL || strstr(join, " (deleted)\n") != NULL;
        size_t keep = r < 15 ? (size_t)r : 15;
        memcpy(tail, buf + r - keep, keep);
        tail[keep] = 0;
    }
    close(fd);
    return found;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int serve(start_fn real, main_fn main_, void (*rtld_fini)(void), void *stack_end, const char *path) {
    const char *v = getenv("AUTOPASS_FORKSERVER_IDLE");
    double idle_s = v ? atof(v) : 600.0;
    v = getenv("AUTOPASS_FORKSERVER_PARENT");
    pid_t parent = v ? (pid_t)atol(v) : 0;
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (parent && getppid() != parent) return 0;
    /* Nothing inherited stays open here (e.g. a client's connection the compile server held when
     * it started this process: that client would wait for its end of file as long as we run). */
    close_from(3);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    /* The socket is named relative to its directory, through /proc/self/fd/N/NAME when bound: a
     * sun_path holds 108 bytes, and a directory such as pytest's temporary ones is longer. */
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1]) return 1;
    char dir[4096];
    size_t dl = (size_t)(slash - path);
    if (dl >= sizeof dir) return 1;
    memcpy(dir, path, dl);
    dir[dl] = 0;
    const char *name = slash + 1;
    int dfd = open(dl ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char tmp[256];
    if (sfd < 0 || dfd < 0 || strlen(name) + 24 >= sizeof tmp) return 1;
    snprintf(tmp, sizeof tmp, "%s.%ld", name, (long)getpid());
    if ((size_t)snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dfd, tmp) >= sizeof addr.sun_path)
        return 1;
    int lst = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlinkat(dfd, tmp, 0);
    mode_t old = umask(077);
    int ok = lst >= 0 && bind(lst, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(lst, 128) == 0;
    umask(old);
    struct stat st;
    if (!ok || fstatat(dfd, tmp, &st, 0) < 0 || renameat(dfd, tmp, dfd, name) < 0) {
        unlinkat(dfd, tmp, 0);
        return 1;
    }
    ino_t ident = st.st_ino;
    uid_t me = getuid();
    double last = now_s(), checked = last;
    int stopping = 0;
    for (;;) {
        struct pollfd pf[2] = {{sfd, POLLIN, 0}, {lst, POLLIN, 0}};
        int n = poll(pf, stopping ? 1 : 2, 1000);
        if (n < 0 && errno != EINTR) break;
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            if (si.ssi_signo != SIGCHLD) stopping = 1;
        reap();
        if (!stopping && (fstatat(dfd, name, &st, 0) < 0 || st.st_ino != ident || (parent && getppid() != parent)))
            stopping = 1;
        if (!stopping && now_s() - checked >= 1.0) {
            checked = now_s();
            stopping = mapped_file_deleted();
        }
        if (!stopping && njobs == 0 && now_s() - last >= idle_s) {
            unlinkat(dfd, name, 0);
            stopping = 1;
        }
        if (stopping) {
            if (lst >= 0) {
                if (fstatat(dfd, name, &st, 0) == 0 && st.st_ino == ident) unlinkat(dfd, name, 0);
                close(lst);
                lst = -1;
            }
            if (njobs == 0) _exit(0);
            continue;
        }
        if (!(pf[1].revents & POLLIN)) continue;
        int conn = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) continue;
        last = now_s();
        struct ucred cred;
        socklen_t cl = sizeof cred;
        struct timeval tv = {2, 0};
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != me ||
            setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
            close(conn);
            continue;
        }
        int fds[NFDS];
        char *payload = NULL;
        size_t len = 0;
        if (accept_request(conn, fds, &payload, &len) < 0) {
            put(conn, "F22\n");
            close(conn);
            continue;
        }
        if (njobs == capjobs) {
            size_t cap = capjobs ? capjobs * 2 : 16;
            struct job *j = realloc(jobs, cap * sizeof *j);
            if (!j) {
                put(conn, "F12\n");
                goto done;
            }
            jobs = j;
            capjobs = cap;
        }
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
            put(conn, "F24\n");
            goto done;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(pipefd[0]);
            return run_child(real, main_, rtld_fini, stack_end, pipefd[1], conn, fds, payload, len);
        }
        close(pipefd[1]);
        char line[32];
        if (pid < 0) {
            snprintf(line, sizeof line, "F%d\n", errno);
            put(conn, line);
        } else {
            int e = 0;
            ssize_t r;
            do r = read(pipefd[0], &e, sizeof e); while (r < 0 && errno == EINTR);
            if (r > 0) { /* setup failed: the child exits without running anything */
                waitpid(pid, NULL, 0);
                snprintf(line, sizeof line, "F%d\n", e);
                put(conn, line);
            } else {
                snprintf(line, sizeof line, "P%ld\n", (long)pid);
                put(conn, line);
                jobs[njobs].pid = pid;
                jobs[njobs].conn = conn;
                njobs++;
                conn = -1;
            }
        }
        close(pipefd[0]);
    done:
        for (int i = 0; i < NFDS; i++) close(fds[i]);
        free(payload);
        if (conn >= 0) close(conn);
    }
    return 1;
}

int __libc_start_main(main_fn main_, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end) {
    start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
    const char *path = getenv("AUTOPASS_FORKSERVER_SOCKET");
    if (!real) _exit(127);
    if (path && *path && !init && !fini) {
        int rc = serve(real, main_, rtld_fini, stack_end, path);
        /* Here only in a compile's child (which never returns from serve: its main() exits) or
         * when the server could not start or has ended. */
        _exit(rc);
    }
    return real(main_, argc, argv, init, fini, rtld_fini, stack_end);
}
