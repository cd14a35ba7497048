"""Diffusion math against closed forms, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ichseg.diffusion import (
    BETA_SCHEDULES,
    DiffusionConfig,
    GaussianDiffusion,
    SAMPLERS,
    make_betas,
    respaced_timesteps,
    sample,
)

F64 = torch.float64


def make(schedule="linear", T=1000, **kw) -> GaussianDiffusion:
    return GaussianDiffusion(DiffusionConfig(timesteps=T, schedule=schedule, **kw), dtype=F64)


def toy_mask(batch=2, size=12, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 1, size, size, generator=g, dtype=F64) > 0.6).to(F64)


def oracle_for(d: GaussianDiffusion, x0: torch.Tensor, ensemble: int):
    """The ε a perfect network would predict for the known x0 (rows ordered as ``sample`` repeats)."""
    target = x0.repeat_interleave(ensemble, dim=0)

    def eps_fn(x, t, cond):
        return d.eps_from_x0(x, t, target)

    return eps_fn


@pytest.mark.parametrize("schedule", sorted(BETA_SCHEDULES))
@pytest.mark.parametrize("T", [21, 1000])
def test_alpha_bar_strictly_decreasing_in_open_unit_interval(schedule, T):
    ab = make(schedule, T).np["alphas_cumprod"]
    assert ab.dtype == np.float64
    assert np.all(ab > 0) and np.all(ab < 1)
    assert np.all(np.diff(ab) < 0)


def test_linear_schedule_matches_guided_diffusion_scaling():
    b = make_betas("linear", 1000)
    assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.02)
    b250 = make_betas("linear", 250)  # betas scaled by 1000/T
    assert b250[0] == pytest.approx(4e-4) and b250[-1] == pytest.approx(0.08)


def test_cosine_alpha_bar_follows_closed_form():
    T, s = 1000, 0.008
    ab = make("cosine", T).np["alphas_cumprod"]
    f = lambda u: math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    expected = np.array([f(t + 1) / f(0) for t in range(T)])
    # equal up to the 0.999 clip of the very last betas
    np.testing.assert_allclose(ab[:-5], expected[:-5], rtol=1e-10)


def test_buffers_are_float32_by_default_and_computed_in_float64():
    d32 = GaussianDiffusion(DiffusionConfig())
    d64 = make()
    assert d32.alphas_cumprod.dtype == torch.float32
    np.testing.assert_allclose(d32.alphas_cumprod.numpy(), d64.np["alphas_cumprod"].astype(np.float32))


def test_x0_from_eps_inverts_q_sample():
    d = make()
    g = torch.Generator().manual_seed(1)
    x0 = d.encoding.encode(toy_mask(4))
    eps = torch.randn(x0.shape, generator=g, dtype=F64)
    t = torch.tensor([0, 10, 500, 999])
    xt = d.q_sample(x0, t, eps)
    torch.testing.assert_close(d.x0_from_eps(xt, t, eps), x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(d.eps_from_x0(xt, t, x0), eps, rtol=0, atol=1e-9)


def test_q_sample_has_closed_form_moments():
    d = make()
    t = 300
    x0 = torch.full((20000, 1, 1, 1), 0.7, dtype=F64)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    xt = d.q_sample(x0, torch.full((len(x0),), t), eps)
    ab = d.np["alphas_cumprod"][t]
    assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=0.02)
    assert xt.var().item() == pytest.approx(1 - ab, rel=0.05)


@pytest.mark.parametrize("schedule", sorted(BETA_SCHEDULES))
def test_posterior_matches_gaussian_conditioning(schedule):
    """q(x_{t-1}|x_t,x_0) from Bayes' rule on the two Gaussians q(x_t|x_{t-1}) and q(x_{t-1}|x_0)."""
    d = make(schedule, 100)
    betas, ab = d.np["betas"], d.np["alphas_cumprod"]
    x0 = torch.tensor([[[[0.3]]], [[[-0.8]]], [[[1.0]]]], dtype=F64)
    xt = torch.tensor([[[[0.1]]], [[[0.5]]], [[[-1.2]]]], dtype=F64)
    ts = [1, 37, 99]
    mean, var, logvar = d.q_posterior(x0, xt, torch.tensor(ts))
    for i, t in enumerate(ts):
        a_t, ab_prev = 1 - betas[t], ab[t - 1]
        # prior x_{t-1} ~ N(√ab_prev x0, 1-ab_prev); likelihood x_t | x_{t-1} ~ N(√a_t x_{t-1}, β_t)
        prec = 1 / (1 - ab_prev) + a_t / betas[t]
        exp_var = 1 / prec
        exp_mean = exp_var * (math.sqrt(ab_prev) * x0[i].item() / (1 - ab_prev) + math.sqrt(a_t) * xt[i].item() / betas[t])
        assert var[i].item() == pytest.approx(exp_var, rel=1e-12)
        assert mean[i].item() == pytest.approx(exp_mean, rel=1e-10, abs=1e-12)
        assert logvar[i].item() == pytest.approx(math.log(exp_var), rel=1e-12)


def test_posterior_at_t0_returns_x0():
    d = make()
    x0, xt = toy_mask(1), torch.randn(1, 1, 12, 12, dtype=F64)
    mean, var, _ = d.q_posterior(x0, xt, torch.tensor([0]))
    torch.testing.assert_close(mean, x0)
    assert var.item() == 0.0


def test_ddim_eta0_full_grid_equals_deterministic_recursion():
    """DDIM(η=0, K=T) against the recursion written out independently."""
    T = 50
    d = make("linear", T, clip_x0=False)
    ab = d.np["alphas_cumprod"]

    def eps_fn(x, t, cond):  # a non-trivial, t-dependent predictor
        return 0.3 * x + 0.05 * torch.sin(t.to(F64) / 7.0).view(-1, 1, 1, 1) + 0.1 * cond

    cond = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(3), dtype=F64)
    xT = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    got = sample(d, eps_fn, cond, sampler="ddim", steps=T, eta=0.0, x_T=xT, return_raw=True)[:, 0]
    x = xT.clone()
    for t in range(T - 1, -1, -1):
        e = eps_fn(x, torch.full((2,), t), cond)
        x0 = (x - math.sqrt(1 - ab[t]) * e) / math.sqrt(ab[t])
        ab_prev = ab[t - 1] if t > 0 else 1.0
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * e
    torch.testing.assert_close(got, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("encoding", ["symmetric", "binary"])
@pytest.mark.parametrize(
    "sampler,steps,eta",
    [("ddpm", None, 0.0), ("ddim", 1000, 0.0), ("ddim", 10, 0.0), ("ddim", 10, 1.0), ("dpm-solver++", 20, 0.0), ("dpm-solver++", 5, 0.0)],
)
def test_every_sampler_recovers_x0_from_an_oracle(sampler, steps, eta, encoding):
    d = make(mask_encoding=encoding)
    mask = toy_mask(2)
    x0 = d.encoding.encode(mask)
    n = 3
    out = sample(d, oracle_for(d, x0, n), torch.zeros_like(mask), sampler=sampler, steps=steps, eta=eta,
                 ensemble=n, generator=torch.Generator().manual_seed(5))
    assert out.shape == (2, n, 1, 12, 12)
    torch.testing.assert_close(out, mask[:, None].expand_as(out), rtol=0, atol=1e-6)


def test_dpm_solver_and_ddim_agree_on_the_oracle():
    d = make()
    mask = toy_mask(2, seed=7)
    x0 = d.encoding.encode(mask)
    xT = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(8), dtype=F64)
    a = sample(d, oracle_for(d, x0, 1), mask, sampler="ddim", steps=10, x_T=xT, return_raw=True)
    b = sample(d, oracle_for(d, x0, 1), mask, sampler="dpm-solver++", steps=10, x_T=xT, return_raw=True)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_dpm_solver_first_step_is_ddim_and_second_order_differs_for_a_real_network():
    """On a non-oracle ε, the 2M correction must change the result (it is not silently first order)."""
    d = make(clip_x0=False)
    eps_fn = lambda x, t, c: 0.5 * x + 0.01 * t.to(F64).view(-1, 1, 1, 1) / 1000  # noqa: E731
    cond = torch.zeros(1, 1, 4, 4, dtype=F64)
    xT = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(9), dtype=F64)
    one = sample(d, eps_fn, cond, sampler="dpm-solver++", steps=2, x_T=xT, return_raw=True)
    ddim_one = sample(d, eps_fn, cond, sampler="ddim", steps=2, x_T=xT, return_raw=True)
    torch.testing.assert_close(one, ddim_one)  # two grid points: only first-order steps are taken
    many = sample(d, eps_fn, cond, sampler="dpm-solver++", steps=10, x_T=xT, return_raw=True)
    ddim_many = sample(d, eps_fn, cond, sampler="ddim", steps=10, x_T=xT, return_raw=True)
    assert (many - ddim_many).abs().max() > 1e-6


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_same_generator_seed_gives_identical_samples(sampler):
    d = make("linear", 100)
    eps_fn = lambda x, t, c: 0.1 * x  # noqa: E731
    cond = torch.zeros(2, 1, 8, 8, dtype=F64)
    kw = dict(sampler=sampler, steps=None if sampler == "ddpm" else 10, eta=1.0 if sampler == "ddim" else 0.0, ensemble=2)
    a = sample(d, eps_fn, cond, generator=torch.Generator().manual_seed(11), **kw)
    b = sample(d, eps_fn, cond, generator=torch.Generator().manual_seed(11), **kw)
    c = sample(d, eps_fn, cond, generator=torch.Generator().manual_seed(12), **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_ensemble_members_differ_and_run_in_one_batch():
    d = make("linear", 100)
    seen = []

    def eps_fn(x, t, c):
        seen.append(x.shape[0])
        return 0.1 * x

    out = sample(d, eps_fn, torch.zeros(3, 1, 8, 8, dtype=F64), sampler="ddim", steps=5, ensemble=4,
                 generator=torch.Generator().manual_seed(0), return_raw=True)
    assert seen == [12] * 5  # one network call per step, the whole ensemble in the batch
    assert not torch.equal(out[:, 0], out[:, 1])


def test_learned_range_variance_uses_the_second_channel():
    d = make("linear", 50, variance="learned_range")
    cond = torch.zeros(1, 1, 4, 4, dtype=F64)
    outs = []
    for v in (-1.0, 1.0):
        fn = lambda x, t, c, v=v: torch.cat([0.1 * x, torch.full_like(x, v)], dim=1)  # noqa: E731
        outs.append(sample(d, fn, cond, sampler="ddpm", generator=torch.Generator().manual_seed(0), return_raw=True))
    assert not torch.equal(outs[0], outs[1])
    with pytest.raises(ValueError, match="eps_fn"):
        sample(d, lambda x, t, c: x, cond, sampler="ddpm")


def test_mask_encodings_round_trip():
    m = toy_mask(1)
    for name in ("symmetric", "binary"):
        d = make(mask_encoding=name)
        torch.testing.assert_close(d.encoding.decode(d.encoding.encode(m)), m)
    assert make(mask_encoding="symmetric").encoding.encode(m).min() == -1


def test_training_pair_and_loss():
    d = make()
    mask = toy_mask(2)
    noise = torch.randn(mask.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    xt, target = d.training_pair(mask, torch.tensor([5, 900]), noise)
    assert torch.equal(target, noise)
    assert d.eps_loss(target, noise).item() == 0.0
    assert d.eps_loss(torch.zeros_like(noise), noise).item() == pytest.approx(noise.pow(2).mean().item())
    t = d.sample_timesteps(1000, generator=torch.Generator().manual_seed(0))
    assert t.min() >= 0 and t.max() <= 999 and t.dtype == torch.long


def test_respaced_timesteps():
    assert list(respaced_timesteps(1000, 1000)) == list(range(1000))
    grid = respaced_timesteps(1000, 10)
    assert grid[0] == 0 and grid[-1] == 999 and len(np.unique(grid)) == 10


def test_config_round_trips_through_yaml():
    cfg = DiffusionConfig(timesteps=250, schedule="cosine", mask_encoding="binary", clip_x0=False, variance="fixed_large")
    assert DiffusionConfig.from_yaml(cfg.to_yaml()) == cfg
    assert DiffusionConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(schedule="quadratic"), "schedule"),
        (dict(mask_encoding="onehot"), "mask_encoding"),
        (dict(variance="learned"), "variance"),
        (dict(timesteps=1), "timesteps"),
        (dict(timesteps=10.5), "timesteps"),
        (dict(timesteps=20, schedule="linear"), "timesteps: the linear schedule"),
    ],
)
def test_bad_config_values_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffusionConfig(**kwargs)


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="betas_start"):
        DiffusionConfig.from_dict({"betas_start": 0.1})


def test_bad_sampling_arguments_are_named():
    d = make("linear", 100)
    cond = torch.zeros(1, 1, 4, 4, dtype=F64)
    eps_fn = lambda x, t, c: x  # noqa: E731
    with pytest.raises(ValueError, match="steps: K=101 exceeds"):
        sample(d, eps_fn, cond, sampler="ddim", steps=101)
    with pytest.raises(ValueError, match="steps"):
        sample(d, eps_fn, cond, sampler="ddpm", steps=10)
    with pytest.raises(ValueError, match="sampler"):
        sample(d, eps_fn, cond, sampler="euler")
    with pytest.raises(ValueError, match="cond"):
        sample(d, eps_fn, cond[0], sampler="ddim", steps=5)
    with pytest.raises(ValueError, match="ensemble"):
        sample(d, eps_fn, cond, sampler="ddim", steps=5, ensemble=0)
    with pytest.raises(ValueError, match="eps_fn"):
        sample(d, lambda x, t, c: x[:, :, :2], cond, sampler="ddim", steps=5)
    with pytest.raises(ValueError, match="t: indices"):
        d.q_sample(cond, torch.tensor([100]), cond)
    with pytest.raises(ValueError, match="t: expected shape"):
        d.q_sample(cond, torch.tensor([1, 2]), cond)


@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 10), ("dpm-solver++", 5)])
def test_x0_prediction_oracle_is_recovered_and_matches_the_eps_oracle(sampler, steps):
    """``prediction="x0"``: a network that returns the true x0 gives the mask, on the same path as
    the ε-oracle of an ε-network (the samplers turn either into the same (ε̂, x̂_0))."""
    d_eps, d_x0 = make(), make(prediction="x0")
    mask = toy_mask(2)
    x0 = d_x0.encoding.encode(mask)
    xT = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(1), dtype=F64)
    x0_oracle = lambda x, t, cond: x0  # noqa: E731
    a = sample(d_x0, x0_oracle, mask, sampler=sampler, steps=steps, x_T=xT, generator=torch.Generator().manual_seed(2),
               return_raw=True)
    b = sample(d_eps, oracle_for(d_eps, x0, 1), mask, sampler=sampler, steps=steps, x_T=xT,
               generator=torch.Generator().manual_seed(2), return_raw=True)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a[:, 0], x0, rtol=0, atol=1e-6)


def test_training_target_follows_the_prediction():
    mask = toy_mask(2)
    t = torch.tensor([10, 900])
    noise = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(0), dtype=F64)
    x_eps, target_eps = make().training_pair(mask, t, noise)
    x_x0, target_x0 = make(prediction="x0").training_pair(mask, t, noise)
    torch.testing.assert_close(x_eps, x_x0)
    assert torch.equal(target_eps, noise) and torch.equal(target_x0, 2 * mask - 1)
    with pytest.raises(ValueError, match="prediction"):
        DiffusionConfig(prediction="v")


def gaussian_data_eps(d: GaussianDiffusion, mu: float, s: float):
    """The exact E[ε | x_t] when every pixel of x_0 ~ N(mu, s²): σ_t (x_t - α_t mu) / (α_t² s² + σ_t²)."""
    ab = torch.as_tensor(d.np["alphas_cumprod"], dtype=F64)

    def eps_fn(x, t, cond):
        a2 = ab[t].view(-1, 1, 1, 1)
        return (1 - a2).sqrt() * (x - a2.sqrt() * mu) / (a2 * s * s + 1 - a2)

    return eps_fn


@pytest.mark.parametrize("steps", [5, 10, 14, 15, 25])
def test_dpm_solver_matches_diffusers_multistep_scheduler(steps):
    """DPM-Solver++(2M) step by step against diffusers' reference scheduler on the same timesteps,
    lower-order final steps included (K < 15), on Gaussian data whose exact ε is known."""
    diffusers = pytest.importorskip("diffusers")
    T = 1000
    d = make("linear", T, clip_x0=False)
    eps_fn = gaussian_data_eps(d, mu=0.3, s=0.5)
    xT = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(3), dtype=F64)
    ours = sample(d, eps_fn, torch.zeros(2, 1, 6, 6, dtype=F64), sampler="dpm-solver++", steps=steps, x_T=xT,
                  return_raw=True)[:, 0]
    betas = d.np["betas"]
    sched = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=T, beta_start=float(betas[0]), beta_end=float(betas[-1]), beta_schedule="linear",
        solver_order=2, prediction_type="epsilon", algorithm_type="dpmsolver++", solver_type="midpoint",
        lower_order_final=True, final_sigmas_type="zero", thresholding=False)
    sched.set_timesteps(timesteps=[int(t) for t in respaced_timesteps(T, steps)[::-1]])
    x = xT.clone()
    for t in sched.timesteps:
        tt = torch.full((x.shape[0],), int(t), dtype=torch.long)
        x = sched.step(eps_fn(x, tt, None), t, x).prev_sample
    # diffusers keeps its schedule in float32: agreement to ~1e-5, while taking the step into the
    # last grid point at first order (as a K < 15 "lower order final" might be read) moves the
    # result by ~0.2 at K = 5 here
    torch.testing.assert_close(ours, x.to(F64), rtol=0, atol=2e-5)


# -- the variational bound of a learned variance -----------------------------------------------
def test_normal_kl_matches_two_gaussians_by_hand():
    from ichseg.diffusion.gaussian import normal_kl

    # KL(N(1, 2) ‖ N(0, 1)) = ½(log(1/2) + 2/1 + (1-0)²/1 - 1) = ½(2 - log 2)
    kl = normal_kl(torch.tensor(1.0, dtype=F64), torch.tensor(math.log(2.0), dtype=F64),
                   torch.tensor(0.0, dtype=F64), torch.tensor(0.0, dtype=F64))
    assert float(kl) == pytest.approx(0.5 * (2 - math.log(2.0)), rel=1e-12)
    same = normal_kl(torch.tensor(0.3, dtype=F64), torch.tensor(-1.0, dtype=F64), 0.3, torch.tensor(-1.0, dtype=F64))
    assert float(same) == pytest.approx(0.0, abs=1e-15)


def test_discretised_gaussian_likelihood_integrates_the_bins():
    from ichseg.diffusion.gaussian import discretized_gaussian_log_likelihood

    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    mu, s, w = 0.2, 0.3, 2 / 255
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=F64)
    got = discretized_gaussian_log_likelihood(x, torch.full_like(x, mu), torch.full_like(x, math.log(s)))
    want = [math.log(phi((-1 + w / 2 - mu) / s)),  # lowest bin open to -∞
            math.log(phi((w / 2 - mu) / s) - phi((-w / 2 - mu) / s)),  # interior bin
            math.log(1 - phi((1 - w / 2 - mu) / s))]  # highest bin open to +∞
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)


def test_vb_terms_closed_form_kl_and_decoder_nll():
    d = make("linear", 100, variance="learned_range")
    mask = toy_mask(2)
    x0 = d.encoding.encode(mask)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = torch.tensor([40, 40])
    xt = d.q_sample(x0, t, noise)
    # the true ε gives the true posterior mean: only the variances differ
    v = torch.cat([torch.full_like(x0[:1], -1.0), torch.full_like(x0[:1], 1.0)])  # β̃_t, then β_t
    vb = d.vb_terms(x0, xt, t, noise, v)
    b, bt = d.np["betas"][40], d.np["posterior_variance"][40]
    assert float(vb[0]) == pytest.approx(0.0, abs=1e-9)
    assert float(vb[1]) == pytest.approx(0.5 * (-1 + math.log(b / bt) + bt / b) / math.log(2), rel=1e-9)
    # t = 0: the decoder NLL of the exact x0 at the posterior mean with σ² = β̃_1 (clipped)
    t0 = torch.tensor([0, 0])
    xt0 = d.q_sample(x0, t0, noise)
    nll = d.vb_terms(x0, xt0, t0, noise, torch.full_like(x0, -1.0))
    sd = math.sqrt(d.np["posterior_variance"][1])
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    per_px = -math.log(phi((1 / 255) / sd)) / math.log(2)  # either end bin, mean exactly at x0
    torch.testing.assert_close(nll, torch.full((2,), per_px, dtype=F64), rtol=1e-9, atol=0)
