"""MossError: what moss or libmossrt said when something failed."""


class MossError(Exception):
    """A failure of the moss CLI or of libmossrt.

    .diagnostics: the lines moss printed on standard error (DESIGN.md's shape
    `<file>: node '<name>' (<OpType>): <category>: <reason>`, or `moss: ...`),
    or libmossrt's one-line message; .returncode: the CLI's exit status (None
    for libmossrt and for checks made in Python); .command: the argument list
    run, if any. str(e) is the message followed by the diagnostics.
    """

    def __init__(self, message, diagnostics=(), returncode=None, command=None):
        self.message = message
        self.diagnostics = [d for d in diagnostics if d.strip()]
        self.returncode = returncode
        self.command = list(command) if command else None
        super().__init__(message)

    def __str__(self):
        return "\n".join([self.message] + ["  " + d for d in self.diagnostics])


class MossInputError(MossError, ValueError):
    """The caller's arrays do not fit the artifact (shape, dtype, count):
    refused in Python before anything runs."""
