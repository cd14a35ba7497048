"""ichseg.models.resnet builds torchvision's ResNet18 without importing torchvision."""

import pytest
import torch

from ichseg.models.resnet import resnet18

torchvision = pytest.importorskip("torchvision")


def test_seeded_resnet18_equals_torchvision_tensor_for_tensor():
    torch.manual_seed(7)
    ours = resnet18().state_dict()
    torch.manual_seed(7)
    theirs = torchvision.models.resnet18(weights=None).state_dict()
    assert list(ours) == list(theirs)
    for k in theirs:
        assert torch.equal(ours[k], theirs[k]), k
    # both consumed the same draws: the next one agrees too
    torch.manual_seed(7)
    resnet18()
    a = torch.rand(3)
    torch.manual_seed(7)
    torchvision.models.resnet18(weights=None)
    assert torch.equal(a, torch.rand(3))


def test_forward_matches_torchvision_with_the_same_weights():
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(weights=None).eval()
    ours = resnet18().eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
        f = torch.randn(2, 64, 32, 32)  # the condition branch uses layer1-3 on its own 64 maps
        assert torch.equal(ours.layer3(ours.layer2(ours.layer1(f))), theirs.layer3(theirs.layer2(theirs.layer1(f))))
