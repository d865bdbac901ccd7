"""User errors: bad input that the user can fix. `python -m seqmodel.run` prints their message as
one line on stderr and exits non-zero instead of showing a traceback."""


class UserError(Exception):
    """Base of every error caused by user input; the message is one line naming the field/file/line."""
