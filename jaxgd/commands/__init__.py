"""The subcommands of the ``jaxgd`` command line, one module each.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. At module level it imports only the standard library, so that
``jaxgd --help`` stays fast; jax and the rest of jaxgd are imported inside ``run``.
"""
