"""The core's business logic, one service per resource, sharing one ``ServiceContext``.

``MastraAdmin`` (``mastra_admin.core.admin``) is the facade over them and the only
entry point embedding code and the HTTP server use. The modules are imported by
their own names (``mastra_admin.core.services.teams``), not re-exported here: the
build orchestrator imports ``services.context`` and must not load the services
(the deployments service imports the orchestrator).
"""
