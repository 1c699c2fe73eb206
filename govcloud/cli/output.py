"""Output formatting: tables (rich, wide-character aware), JSON and YAML. The only importer of rich."""

from __future__ import annotations

import sys

from govcloud.errors import ConfigError, GovcloudError


def print_error(exc: GovcloudError) -> None:
    """Print an error to stderr: every problem of a ConfigError on its own line."""
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            print(f"error: {problem.render()}", file=sys.stderr)
        print(f"{len(exc.problems)} error(s)", file=sys.stderr)
        return
    print(f"error: {exc}", file=sys.stderr)
