"""The built-in few-shot methods, one module each; every module here registers itself with
:func:`medimeta.train.fewshot.registry.register_method` when the registry is first read."""
