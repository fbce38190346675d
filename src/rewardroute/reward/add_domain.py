"""Adding a domain to a saved routed reward model (`rm add-domain`): load, grow, save.

How a model grows is in `domain_growth` (the models use it); this is the pipeline around it.

"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.schemas import PreferencePair
from ..errors import ConfigError
from .routed import RoutedRewardModel, part_name


def routed_archs() -> list[str]:
    """The registered architectures that can gain a domain: those built on a domain router."""
    from .registry import REWARD_MODELS, get_arch

    return [name for name in REWARD_MODELS if issubclass(get_arch(name), RoutedRewardModel)]


def add_domain_to_checkpoint(model_dir: str | Path, domain: str, train: Sequence[PreferencePair],
                             valid: Sequence[PreferencePair], args, out: str | Path | None = None) -> dict[str, Any]:
    """Load `model_dir`, add `domain`, save to `out` (default: in place, atomically)."""
    from .checkpoint import load_model, read_reward_meta, save_model

    model_dir = Path(model_dir)
    arch = read_reward_meta(model_dir).get("arch")
    routed = routed_archs()
    if arch not in routed:
        raise ConfigError(f"{model_dir} is a '{arch}' model; add-domain works on {' and '.join(routed)} "
                          "(a single or more model must be retrained with the new domain)")
    model = load_model(model_dir)
    out = Path(out) if out is not None else model_dir
    resume_dir = out.with_name(out.name + f".add-{part_name('', domain)}.resume")
    record = model.add_domain(domain, train, valid, args, resume_dir=resume_dir)
    save_model(model, out)
    import shutil
    shutil.rmtree(resume_dir, ignore_errors=True)
    return {"arch": arch, "domain": domain, "domains": model.config.domains, "out": str(out), **record}
