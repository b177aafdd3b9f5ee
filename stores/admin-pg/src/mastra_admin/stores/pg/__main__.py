"""``python -m mastra_admin.stores.pg migrate [--check]``."""

from mastra_admin.stores.pg._cli import main

main()
