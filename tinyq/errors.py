"""User-facing errors: one clear line, exit code 2, no traceback."""


class TinyqError(Exception):
    """An error the user can act on; its message is the whole story."""
