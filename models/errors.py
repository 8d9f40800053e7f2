"""The one exception users see: a message that names the bad value and the fix."""


class UserError(Exception):
    """Bad input from a user. The command line prints it as one line and exits with code 2; the window
    shows it in a message. Never raised for bugs: those stay ordinary exceptions with tracebacks."""
