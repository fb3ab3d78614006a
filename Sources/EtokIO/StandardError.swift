#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way etok writes diagnostics (errors, warnings, progress, summaries) to stderr.
///
/// A diagnostic that cannot be written is dropped: stderr closed (`2>&-`), full (`2>/dev/full`)
/// or a pipe whose reader left must never stop the work or change the exit status. Hence
/// `write(2)` and not `FileHandle.standardError.write`, which traps on an error; and SIGPIPE
/// blocked on the calling thread around the call (and a pending one taken), so that even a command
/// that keeps SIGPIPE's default for its stdout (`etok info`) is not killed by stderr.
/// Thread-safe (lines from two threads may interleave only at write(2) boundaries).
public enum StandardError {
    /// Writes `text` as it is (no newline added), or drops it.
    public static func write(_ text: String) {
        var pipe = sigset_t(), old = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        do {
            try stream.write(Array(text.utf8))
        } catch {
            #if canImport(Glibc)
            if error == .closed(file: stream.name) {   // take the SIGPIPE this thread raised, so it does not arrive once unblocked
                var zero = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&pipe, nil, &zero)
            }
            #endif
        }
    }

    /// Opens /dev/null on each of descriptors 0, 1 and 2 that is closed (`2>&-`), so that no file
    /// the process opens later gets one of those numbers: a diagnostic meant for stderr must never
    /// land in an output file. Call once, first thing in `main`.
    public static func reserveStandardDescriptors() {
        for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            let opened = open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY)
            if opened >= 0 && opened != fd {   // a lower descriptor was free too: move it where it belongs
                dup2(opened, fd)
                close(opened)
            }
        }
    }

    /// Writes `line` and a newline, or drops them.
    public static func line(_ line: String) { write(line + "\n") }

    /// Descriptor 2, never closed by etok (a `FileSink` holds no state but the descriptor).
    nonisolated(unsafe) private static let stream = FileSink(fd: STDERR_FILENO, name: "stderr")
}
