"""User errors: bad input that the user can fix. `python -m seqmodel.run` prints their message as
one line on stderr and exits non-zero instead of showing a traceback."""


class UserError(Exception):
    """Base of every error caused by user input; the message is one line naming the field/file/line."""


class Stopped(Exception):
    """SIGTERM (an eviction, a preemption, a deletion) stopped the run before it finished. Not the user's
    error, and not a finished run: `python -m seqmodel.run` exits EXIT_STOPPED, which a Job retries, and a
    training run leaves the last.ckpt its retry resumes from."""
