"""The built-in HTTP server: model files for executors, predict, plugin uploads, job progress.

``create_app`` (in :mod:`skil_sdk.server.app`) builds the FastAPI app;
:class:`skil_sdk.server.embedded.EmbeddedServer` runs it in-process for one job;
``skil-sdk serve`` runs it standalone. Importing this package imports nothing heavy.
"""
