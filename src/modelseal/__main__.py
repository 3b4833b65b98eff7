"""``python -m modelseal`` runs the CLI."""

from modelseal.cli import main

main()
