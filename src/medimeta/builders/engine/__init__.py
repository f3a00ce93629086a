"""The builder engine: registry, driver, source location and the merged tree of raw files.

* :mod:`~medimeta.builders.engine.registry`: :class:`Builder`, :class:`BuildPlan`, registration
  and look-up by dataset id (builders are discovered in :mod:`medimeta.builders.sources`).
* :mod:`~medimeta.builders.engine.driver`: :func:`build_dataset` / :func:`run_build` (scan,
  validate, check counts, stage, write).
* :mod:`~medimeta.builders.engine.scan`, :mod:`~medimeta.builders.engine.tree`,
  :mod:`~medimeta.builders.engine.archives`: the paths a user gives, merged into one virtual tree
  of files on disk and inside (nested) archives, read lazily.
* :mod:`~medimeta.builders.engine.source`: locating and validating a raw source in that tree.
* :mod:`~medimeta.builders.engine.staging`: copying files out of tar and nested archives once.
* :mod:`~medimeta.builders.engine.common`: image recipes, split policies, label tables.
* :mod:`~medimeta.builders.engine.dicom`: reading DICOM files into 8-bit images.

This package imports nothing itself; import its modules directly.
"""
