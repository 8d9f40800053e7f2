"""Checks several test files share."""


def one_line(code: int, err: str, *needles: str) -> None:
    """A command's failure as the user sees it: exit code 2 and one `error: ...` line holding every needle."""
    err = err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
