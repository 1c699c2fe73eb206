#!/usr/bin/env python3
"""Top-level entry point the province's admins asked for: ``python cli.py …`` runs ``govcloud``."""

from govcloud.cli import main

if __name__ == "__main__":
    main()
