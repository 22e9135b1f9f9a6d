"""Extraction: HMDB51-format videos to MMAction2 rawframes (RGB frames and quantised flow).

- :mod:`~twostream.extract.settings`: the options every clip is extracted with;
- :mod:`~twostream.extract.dataset`: one clip (:func:`~twostream.extract.dataset.extract_clip`)
  and a whole dataset with its lists and report;
- :mod:`~twostream.extract.clip_folder`: one clip's folder, written whole or not at all;
- :mod:`~twostream.extract.workers`: the extraction processes;
- :mod:`~twostream.extract.batched`: extraction with flow batched on a device (``tvl1-torch``).

Nothing is imported here: each stage imports only what it uses.
"""
