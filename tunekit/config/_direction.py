"""Which way a monitored metric is optimized, read from its name when the config gives no ``direction:``.

A name is split into lowercase tokens (``val_acc`` -> ``val``, ``acc``; ``val/Accuracy`` -> ``val``,
``accuracy``; ``validF1Macro`` -> ``valid``, ``f1``, ``macro``), and a token that names a score (accuracy, AUC,
F1, IoU, BLEU, R2, ...) means maximize, one that names a loss or an error (loss, MSE, perplexity, NLL, ...) means
minimize. A name with tokens of both kinds, or of neither, is not guessed: the config must say.
"""

from __future__ import annotations

import re

from tunekit.exceptions import ConfigError

# Metric names as torchmetrics, scikit-learn and Lightning's own examples spell them (lowercase tokens).
MAXIMIZE_TOKENS = frozenset({
    "acc", "accuracy", "top1", "top5", "auc", "auroc", "roc", "auprc", "ap", "map", "f1", "f2", "fbeta", "precision",
    "prec", "recall", "sensitivity", "specificity", "iou", "miou", "jaccard", "dice", "bleu", "rouge", "meteor",
    "chrf", "r2", "psnr", "ssim", "ndcg", "mrr", "hit", "hits", "hitrate", "mcc", "kappa", "pearson", "spearman",
    "corr", "correlation", "reward", "return", "likelihood", "elbo", "tpr", "tnr",
})
MINIMIZE_TOKENS = frozenset({
    "loss", "error", "err", "mse", "mae", "rmse", "msle", "rmsle", "mape", "smape", "perplexity", "ppl", "nll",
    "ce", "bce", "xent", "crossentropy", "kl", "kld", "divergence", "wer", "cer", "ter", "fid", "bpd", "bpc",
    "eer", "brier", "hinge", "huber", "distance", "regret", "cost", "fpr", "fnr",
})
_PART = re.compile(r"[A-Za-z0-9]+")  # the parts between separators (_ / . - and the like)
_HUMP = re.compile(r"[A-Z]?[a-z]+\d*|[A-Z]+\d*(?![a-z])|\d+")  # camelCase humps, acronyms with digits


def name_tokens(monitor: str) -> list[str]:
    """The lowercase tokens of a metric name.

    Example:
        >>> name_tokens("val/Accuracy"), name_tokens("valid_f1_macro"), name_tokens("valAUROC"), name_tokens("val_IoU")
        (['val', 'accuracy'], ['valid', 'f1', 'macro'], ['val', 'auroc'], ['val', 'iou'])
    """
    tokens = []
    for part in _PART.findall(monitor):
        known = part.lower() in MAXIMIZE_TOKENS | MINIMIZE_TOKENS  # a known word is one token however cased (IoU)
        tokens += [part.lower()] if known else [h.lower() for h in _HUMP.findall(part)]
    return tokens


def infer_direction(monitor: str, source: str = "<config>") -> tuple[str, str]:
    """``minimize`` or ``maximize`` for ``monitor``, and the token of its name that decided it.

    Raises:
        ConfigError: the name has no known token, or tokens of both kinds (one line asking for ``direction:``).

    Example:
        >>> infer_direction("val_acc"), infer_direction("val/loss_epoch"), infer_direction("test_mse")
        (('maximize', 'acc'), ('minimize', 'loss'), ('minimize', 'mse'))
    """
    tokens = name_tokens(monitor)
    up = [t for t in tokens if t in MAXIMIZE_TOKENS]
    down = [t for t in tokens if t in MINIMIZE_TOKENS]
    if up and down:
        raise ConfigError(f"{source}: monitor {monitor!r} names both a score ({up[0]}) and a loss ({down[0]}): "
                          "add direction: maximize or direction: minimize.")
    if not up and not down:
        raise ConfigError(f"{source}: cannot tell from its name whether monitor {monitor!r} is to be minimized or "
                          "maximized: add direction: minimize (a loss, an error) or direction: maximize (a score).")
    return ("maximize", up[0]) if up else ("minimize", down[0])
