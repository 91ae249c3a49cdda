"""Evaluation of the prompt-injection / jailbreak detectors on the public corpora (``../shared/corpora``).

``corpora`` reads each corpus into cases, ``events`` turns them into Event v1 sessions with the labels
beside them, ``protocol`` holds the measurement method (near-duplicate clusters, group splits,
leave-one-source-out, metrics), ``report`` prints the tables, ``run`` is the command
(``python -m streams.evaluation``). Nothing here is imported by the worker.
"""

from streams.evaluation.metrics import at_threshold, recall_at_fpr

__all__ = ["at_threshold", "recall_at_fpr", "evaluate"]


def evaluate(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy re-export (keeps numpy-heavy imports out of package import)
    from streams.evaluation.run import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
