"""newsmon: an event-driven news monitoring and alerting daemon.

The listing of this package is the architecture; read it in pipeline order:

    schedule -> fetch -> parse -> normalise -> store -> stories -> match -> plan
             -> outbox -> deliver

``pipeline.poll_source`` composes the stages for one source; ``daemon.Daemon``
runs it on a schedule. ``cli`` is the command line; ``config`` the settings.
"""

__version__ = "0.1.0"
