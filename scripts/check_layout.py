#!/usr/bin/env python3
"""Layout check: keeps the code base in the shape issue 15 gave it (run by CTest, label layout).

It fails when
  - a file under src/ or include/ has more than MAX_LINES lines (but for KNOWN_OVERSIZE);
  - a file outside src/platform/ includes a system header (the platform layer is the only
    place that talks to the operating system: src/platform/platform.hpp);
  - a file outside src/platform/ calls the operating system: a global-namespace call such as
    ::close( or ::fork(, or a bare call of a name that is only ever a system call, such as
    waitpid( or pthread_atfork( (comments and string literals are not looked at).

    scripts/check_layout.py [ROOT]       # ROOT: the project's top directory (default: here's parent)

Exit status 0 when the layout holds; otherwise each violation is printed as path:line: reason.
"""
import os
import re
import sys

MAX_LINES = 700

# No file is over MAX_LINES: keep it so (split by concern, as issue 15 did).
KNOWN_OVERSIZE: set = set()

SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".cc", ".hpp.in")

# System headers: only src/platform/ includes them. C++'s own headers (<cstdio>, <thread>, ...)
# are not system calls and stay allowed; so are <cerrno> and <cstring>.
SYSTEM_HEADER = re.compile(
    r"^\s*#\s*include\s*<("
    r"sys/[^>]+|unistd\.h|signal\.h|csignal|fcntl\.h|poll\.h|pthread\.h|arpa/[^>]+|netinet/[^>]+|"
    r"netdb\.h|dirent\.h|spawn\.h|sched\.h|linux/[^>]+|dlfcn\.h|link\.h|malloc\.h|semaphore\.h|"
    r"termios\.h|mqueue\.h|time\.h"
    r")>")

# Names that are only ever system calls (or their C library wrappers): flagged however called.
SYSCALL_ONLY = (
    "fork vfork waitpid waitid wait3 wait4 execv execve execvp execl execle execlp fexecve "
    "posix_spawn posix_spawnp pthread_atfork pthread_self pthread_create pthread_sigmask "
    "pthread_setname_np pthread_kill sigaction sigprocmask sigemptyset sigaddset sigfillset "
    "sigdelset sigismember sigpending sigtimedwait sigwaitinfo signalfd eventfd epoll_create1 "
    "epoll_ctl epoll_wait socketpair accept4 getsockopt setsockopt getsockname getpeername "
    "sendmsg recvmsg sendto recvfrom mmap munmap madvise mprotect shm_open shm_unlink "
    "memfd_create ftruncate fallocate fstat flock fcntl ioctl pipe2 dup2 dup3 getpid getppid "
    "gettid syscall prctl sysconf sched_getaffinity getrandom isatty dlopen dlsym dlclose "
    "dl_iterate_phdr opendir readdir closedir mkdtemp pidfd_open pidfd_send_signal "
    "clock_gettime nanosleep usleep inet_ntop inet_pton getaddrinfo freeaddrinfo htonl ntohl "
    "htons ntohs htobe64 be64toh"
).split()
# Names that are also ordinary method names (Process::kill, Connection::close, ...): flagged
# only when called in the global namespace (::close).
GLOBAL_ONLY = (
    "read write readv writev close open openat send recv poll ppoll select kill raise signal "
    "socket connect accept bind listen shutdown pipe dup unlink rmdir stat lstat exit _exit "
    "sleep alarm pause"
).split()
BARE_CALL = re.compile(r"(?<![\w.>:])(" + "|".join(SYSCALL_ONLY) + r")\s*\(")
GLOBAL_CALL = re.compile(r"(?<![\w])::(" + "|".join(SYSCALL_ONLY + GLOBAL_ONLY) + r")\s*\(")


def strip_comments_and_strings(text):
    """The text with comments, string and character literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == 'R' and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            open_paren = text.find("(", i + 2)
            delim = text[i + 2:open_paren]
            end = text.find(")" + delim + '"', open_paren)
            j = n if end < 0 else end + len(delim) + 2
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def source_files(root):
    for top in ("src", "include"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(SOURCE_SUFFIXES):
                    path = os.path.join(dirpath, name)
                    yield os.path.relpath(path, root).replace(os.sep, "/"), path


def check(root):
    problems = []
    for rel, path in source_files(root):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > MAX_LINES and rel not in KNOWN_OVERSIZE:
            problems.append(f"{rel}: {lines} lines (at most {MAX_LINES}): split it by concept")
        if rel.startswith("src/platform/"):
            continue
        for no, line in enumerate(text.splitlines(), 1):
            m = SYSTEM_HEADER.match(line)
            if m:
                problems.append(f"{rel}:{no}: includes <{m.group(1)}>: system headers belong in src/platform/")
        for no, line in enumerate(strip_comments_and_strings(text).splitlines(), 1):
            for m in list(GLOBAL_CALL.finditer(line)) + list(BARE_CALL.finditer(line)):
                problems.append(f"{rel}:{no}: calls {m.group(0).rstrip('( ')}: OS calls belong in src/platform/")
    stale = sorted(p for p in KNOWN_OVERSIZE if not os.path.exists(os.path.join(root, p)))
    for p in stale:
        problems.append(f"{p}: listed in KNOWN_OVERSIZE but gone: take it off the list")
    return problems


def main():
    root = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layout: {len(problems)} problem(s)")
        return 1
    print("check_layout: the layout holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
