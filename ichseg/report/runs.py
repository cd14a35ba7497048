"""One-paragraph descriptions of a run's configuration, for the training pages of the book."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..utils import method_of
from .paper import method_title


def run_summary(cfg: Mapping[str, Any], overrides: Iterable[str] = (), seed: int | None = None) -> str:
    """Markdown: what trained this run (diffusion variant, direct baseline or nnU-Net) and how."""
    name = method_of(cfg)
    seed = cfg.get("train", {}).get("seed", 0) if seed is None else seed
    head = f"**{method_title(name)}** (`{name}`), profile `{cfg.get('profile')}`, seed {seed}: "
    extra = f" Overrides: {', '.join(overrides) or 'none'}."
    if "nnunet" in cfg:
        n = cfg["nnunet"]
        return (head + f"nnU-Net v2 `{n['configuration']}` configuration, trainer `{n['trainer']}`, "
                f"{n['epochs']} epochs × {n['iterations_per_epoch']} iterations, normalisation `{n['channel_name']}`, "
                f"fold 0 = our patient split (validation = our validation patients, carved from the training patients)." + extra)
    t = cfg["train"]
    size = f"{cfg.get('model', {}).get('image_size')}² slices"
    schedule = f"{t['optimizer']} lr {t['lr']:g}" + (f" (momentum {t['momentum']:g})" if t["optimizer"] == "sgd" else "")
    schedule += f", {t['lr_schedule']} schedule, weight decay {t['weight_decay']:g}"
    budget = f"{t['iterations']} iterations at batch {t['batch_size']}"
    val = f"validation every {t['eval_every']} iterations on {t['val_slices']} slices of the {t['val_split']} split"
    if "diffusion" in cfg:
        return (head + f"{budget}, {schedule}, EMA {t['ema_rate']} (with warm-up), {size}; loss of Eq. 4; {val} "
                f"({t['val_sampler']}, {t['val_steps']} steps, ensemble {t['val_ensemble']})." + extra)
    loss = cfg.get("loss", {})
    return (head + f"direct segmenter, {budget}, {schedule} (its official recipe), {size}; loss "
            f"{loss.get('bce_weight', 0):g}·BCE + {loss.get('dice_weight', 0):g}·Dice; {val} (sigmoid > 0.5)." + extra)


__all__ = ["run_summary"]
