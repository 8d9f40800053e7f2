"""The one place that keeps the libraries' notices and progress bars off a user's terminal.

The command line calls it at its start with imported_only=True, which is cheap (the environment variables
the libraries read when imported, and their loggers' levels); the model loaders call it in full before a
load. Our own lines are app.cli.logs's business.
"""

from __future__ import annotations

import logging
import os
import sys

# read by the libraries when they are imported; a user's own setting wins
ENVIRONMENT = {
    "TOKENIZERS_PARALLELISM": "false",  # the tokenizers' fork warning
    "DIFFUSERS_VERBOSITY": "error",  # diffusers' notices (casting, unexpected keys, deprecations)
    "TRANSFORMERS_VERBOSITY": "error",  # transformers' notices
}
LOGGERS = ("nncf", "openvino")  # plain loggers: only their errors
OURS = ("app", "models", "training")  # our packages: their info lines are shown, their warnings reach the window


def quiet_libraries(imported_only: bool = False) -> None:
    """Only errors from diffusers, transformers, NNCF and OpenVINO; no progress bars from diffusers,
    transformers or the hub (a download's own progress class, like the window's, still reports).
    imported_only: leave the libraries not imported yet unimported (seconds saved at a command's start)."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if imported_only and not {"huggingface_hub", "diffusers", "transformers"} & set(sys.modules):
        return
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    if not imported_only or "diffusers" in sys.modules:
        from diffusers.utils import logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
    if not imported_only or "transformers" in sys.modules:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
