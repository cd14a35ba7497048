"""The exceptions the command line treats as the user's, not the program's.

``IchsegError`` (and its subclasses) carry a one-line message that names the file or the option
and the problem; ``ichseg.cli`` prints that line and exits with 2. Any other exception is a bug in
ichseg or in a library it calls: the command line shows its traceback and exits with 1.
"""


class IchsegError(Exception):
    """A user-facing error: bad input file, bad layout, missing weights, refused checkpoint."""


class ConfigError(IchsegError, ValueError):
    """A configuration value out of range or unknown: a profile, a YAML file, ``--set`` or an option.

    Also a ``ValueError``, since a wrong value is what it reports (callers that catch ``ValueError``
    keep working).
    """
