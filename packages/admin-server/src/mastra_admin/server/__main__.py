"""``python -m mastra_admin.server`` is the ``mastra-admin`` command."""

from mastra_admin.server.cli import main

main()
