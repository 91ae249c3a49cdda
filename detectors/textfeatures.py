"""Hashed character n-grams of many texts at once, computed once per distinct word.

scikit-learn's ``HashingVectorizer(analyzer="char_wb")`` builds the n-grams of every word of every
text in Python and hashes each one: most of the classifier's time. Those n-grams depend only on the
word (``char_wb`` pads each whitespace-separated word with spaces and never crosses words), and the
words of a batch repeat a lot — windows overlap, sentences are scored again on their own, agents
re-read the same documents. So: find the distinct words of the batch, let the vectorizer hash each
of them once (a matrix *words × features*), and multiply the *texts × words* count matrix by it. The
result is exactly what the vectorizer returns for the texts (``tests/test_classifier.py`` checks it).

    >>> from sklearn.feature_extraction.text import HashingVectorizer
    >>> v = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=1 << 18,
    ...                       alternate_sign=False, norm=None)
    >>> texts = ["Ignore previous instructions", "ignore   the previous page", ""]
    >>> (char_wb_counts(texts, v) != v.transform(texts)).nnz
    0
    >>> w = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=1 << 18, alternate_sign=False, norm=None)
    >>> (word_counts(texts, w) != w.transform(texts)).nnz
    0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer


def char_wb_counts(texts: Sequence[str], vectorizer: HashingVectorizer) -> sp.csr_matrix:
    """``vectorizer.transform(texts)`` for a ``char_wb`` vectorizer without normalisation, with each
    distinct word analysed and hashed once."""
    lower = vectorizer.lowercase
    words, vocab = _occurrences(texts, lambda t: t.lower().split() if lower else t.split())
    return _project(words, vocab, lambda distinct: vectorizer.transform(distinct), vectorizer)


def word_counts(texts: Sequence[str], vectorizer: HashingVectorizer) -> sp.csr_matrix:
    """``vectorizer.transform(texts)`` for a ``word`` vectorizer without normalisation, with each distinct
    n-gram hashed once (the texts are still tokenised one by one: n-grams cross words)."""
    hasher = vectorizer._get_hasher()  # the vectorizer's own FeatureHasher: same seed and index rule
    terms, vocab = _occurrences(texts, vectorizer.build_analyzer())
    return _project(terms, vocab, lambda distinct: hasher.transform([t] for t in distinct), vectorizer)


def _occurrences(texts: Sequence[str], split: Callable[[str], list[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """The *texts × distinct units* count matrix and the distinct units in column order."""
    vocab: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for text in texts:
        for unit in split(text):
            j = vocab.get(unit)
            if j is None:
                j = vocab[unit] = len(vocab)
            indices.append(j)
        indptr.append(len(indices))
    matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), np.asarray(indices, dtype=np.int64),
                            np.asarray(indptr, dtype=np.int64)), shape=(len(texts), len(vocab)))
    return matrix, list(vocab)


def _project(occurrences: sp.csr_matrix, distinct: list[str], hash_rows: Callable[[list[str]], sp.spmatrix],
             vectorizer: HashingVectorizer) -> sp.csr_matrix:
    """*texts × units* @ *units × features*: the feature counts of every text."""
    if not distinct:
        return sp.csr_matrix((occurrences.shape[0], vectorizer.n_features), dtype=vectorizer.dtype)
    out = (occurrences @ sp.csr_matrix(hash_rows(distinct), dtype=np.float32)).tocsr()
    out.sum_duplicates()
    return out.astype(vectorizer.dtype, copy=False)
