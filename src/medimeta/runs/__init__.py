"""Run records and result tables: what every run writes, and how runs are found, read and
merged into the paper's tables.

* :mod:`medimeta.runs.record`: :class:`~medimeta.runs.record.RunRecord` (one typed record
  for every kind of run), its file names, :func:`~medimeta.runs.record.read_run` /
  :func:`~medimeta.runs.record.write_run`;
* :mod:`medimeta.runs.convert`: records from a run's collected fields and from files of
  earlier versions;
* :mod:`medimeta.runs.tables`: records merged into the Table 3 / Table 4 layout;
* :mod:`medimeta.runs.files`: JSON and CSV written atomically, the environment facts;
* :mod:`medimeta.runs.integrity`: the digests that make run folders heal (sealed JSON results,
  the files a record lists with their sha256).
"""
