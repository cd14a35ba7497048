"""One device resolver and one autocast serve the whole engine (``ichseg.engine.devices``)."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import nullcontext

import pytest
import torch

from ichseg.engine.devices import autocast, cpu_has_bf16, resolve_device, reuse_large_allocations
from ichseg.errors import IchsegError


@pytest.mark.parametrize("field", ["train.device", "nnunet.device"])
def test_one_device_resolver_names_the_field(monkeypatch, field):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", field) == torch.device("cpu")
    with pytest.raises(IchsegError, match=f"^{field}: cuda requested"):
        resolve_device("cuda", field)


_FAULTS = """
import resource, sys, torch
from ichseg.engine.devices import resolve_device
if sys.argv[1] == "cpu":
    resolve_device("cpu")
torch.ones(1 << 24)  # 64 MiB, once, before counting
counts = []
for _ in range(3):  # the fewest of three rounds: the host's proactive reclaim may take back an idle block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(1 << 24)  # allocated, touched, freed
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(min(counts))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_cpu_device_reuses_large_blocks_instead_of_faulting_them_in_again():
    """On the CPU the resolver makes glibc keep large freed blocks: ten 64 MiB tensors after the
    first fault in at most one block's pages (16,384) in all, where by default each is mapped and
    zero-filled anew (in every round, so the fewest of three rounds still shows it)."""
    def faults(device: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FAULTS, device], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        return int(out.stdout.split()[-1])

    default, reused = faults("none"), faults("cpu")
    assert default > 10 * 16_000 and reused <= 16_384 + 1_000, (default, reused)
    assert reuse_large_allocations() is True


def test_autocast_is_bf16_where_asked_and_never_silently_fp32(monkeypatch):
    from ichseg.engine import devices

    assert isinstance(autocast(torch.device("cpu"), "none"), nullcontext)
    assert isinstance(autocast(torch.device("cuda"), "none"), nullcontext)
    ctx = autocast(torch.device("cuda"), "bf16")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    ctx = autocast(torch.device("cpu"), "bf16")
    assert isinstance(ctx, torch.autocast) and ctx.device == "cpu" and ctx.fast_dtype == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    with pytest.raises(IchsegError, match="amp: bf16 needs a CPU with bf16 instructions"):
        autocast(torch.device("cpu"), "bf16")


def test_a_bf16_trained_model_samples_on_any_cpu_and_says_so(monkeypatch):
    from ichseg.engine import devices

    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="trained with amp: bf16.*sampling in fp32"):
        assert devices.inference_amp(torch.device("cpu"), "bf16") == "none"
    assert devices.inference_amp(torch.device("cuda"), "bf16") == "bf16"
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert devices.inference_amp(torch.device("cpu"), "bf16") == "bf16"
    assert devices.inference_amp(torch.device("cpu"), "none") == "none"


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions")
def test_cpu_bf16_autocast_runs_the_convolutions_in_bf16():
    conv = torch.nn.Conv2d(1, 4, 3)
    with autocast(torch.device("cpu"), "bf16"):
        out = conv(torch.randn(1, 1, 8, 8))
    assert out.dtype == torch.bfloat16
