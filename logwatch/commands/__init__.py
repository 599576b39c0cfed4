"""Commands: the CLI verbs other than ``run``, built on the pipeline.

``check`` (:mod:`~logwatch.commands.check`), ``test`` (:mod:`~logwatch.commands.replay`,
over worker processes in :mod:`~logwatch.commands.parallel`, and ``--alerts`` in
:mod:`~logwatch.commands.simulate` with :mod:`~logwatch.commands.timestamps`),
``status`` (:mod:`~logwatch.commands.status`) and ``init``
(:mod:`~logwatch.commands.init`). The CLI imports each lazily, so a verb pays
only for what it uses.
"""
