"""One module (or sub-package, for a multi-file source) per raw public source.

Every module and sub-package here is imported by :mod:`medimeta.builders.engine.registry` on
first use and registers its builders with
:func:`~medimeta.builders.engine.registry.register_builder`. This package imports nothing
itself.
"""
