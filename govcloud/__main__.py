"""``python -m govcloud`` runs the CLI."""

from govcloud.cli import main

main()
