"""The one exception type users see: a clear, one-line message and exit code 2."""


class UserError(Exception):
    """Bad input from the user (file, recipe key, checkpoint, argument).

    The CLI prints ``seqgan-kit: error: <message>`` on one line and exits with code 2, no traceback.
    """

    exit_code = 2
