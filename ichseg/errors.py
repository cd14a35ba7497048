"""The one exception type the command line turns into a one-line message and exit code 2.

Library code raises ``IchsegError`` (or ``ValueError`` for bad arguments) with a message that
names the file or argument and the problem; ``ichseg.cli`` prints it without a traceback.
"""


class IchsegError(Exception):
    """A user-facing error: bad input file, bad layout, missing weights, refused checkpoint."""
