"""The one exception type for bad user input."""


class UserError(Exception):
    """Bad input (an option, a file, a budget): its message is one line that names the fix.

    The CLI prints it as ``pynqrepro: error: <message>`` and exits 2; the pytest plugin turns it
    into a usage error. Anything else escaping is a bug and keeps its traceback.
    """
