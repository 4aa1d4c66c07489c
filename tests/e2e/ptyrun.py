"""Runs a program with stdin, stdout and stderr on a pseudo-terminal, for
the tests of what moss draws there (test_progress.py, test_long_graph.py).

This side keeps the terminal's slave end open until the program has exited
and its output has stopped coming, so no read fails early (EIO) while the
kernel still moves the last bytes to the master: with pty.fork's reader a
loaded machine lost the last lines once."""
import fcntl
import os
import select
import struct
import subprocess
import termios


def run_on_pty(argv, env=None, cols=0):
    """(exit status, everything written, decoded); |cols|: the terminal's
    width (0: none known)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    chunks, quiet = [], 0
    while quiet < 4:  # after the exit: 4 x 50 ms without a byte
        if select.select([master], [], [], 0.05)[0]:
            chunks.append(os.read(master, 65536))
            quiet = 0
        elif p.poll() is not None:
            quiet += 1
    os.close(slave)
    os.close(master)
    return p.returncode, b"".join(chunks).decode("utf-8", "replace")
