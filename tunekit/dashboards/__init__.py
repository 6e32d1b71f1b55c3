"""Dashboards: Weights & Biases for runs and studies (``tunekit.dashboards.wandb``) and the self-contained
HTML report (``tunekit.dashboards.report``). Both import their heavy packages only when used."""

from __future__ import annotations
