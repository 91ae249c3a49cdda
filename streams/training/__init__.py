"""Training of the prompt-injection / jailbreak classifier (``detectors.classifier``) on the public corpora.

``python -m streams.training.train_injection --corpora ../shared/corpora --out detectors/models/injection-v1.npz``
"""
