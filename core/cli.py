"""What the command-line tools share: usage errors in one line."""

from __future__ import annotations

import argparse
from typing import NoReturn

USAGE_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on stderr (argparse prints the usage before it)
    and exit status 2; `--help` still prints the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")
