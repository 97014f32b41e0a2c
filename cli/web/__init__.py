"""``proctor ui``: the dashboard, a small ASGI app over the store (DESIGN O1).

Only this package imports the web stack (Starlette, uvicorn: the ``ui``
extra), and ``cli`` imports it lazily, in the ``ui`` command, so the rest of
the command line works without the extra. It reads the store as the
``runs`` commands do and never writes it, except through the very functions
``proctor cancel`` and ``proctor terminate`` call.
"""
