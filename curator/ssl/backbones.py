"""Encoders (docs/ssl.md): torchvision ResNets with the CIFAR stem for small images, small CNNs for CPUs, and any
torchvision or timm classification model or open_clip image tower (to start from pretrained weights).

- ``resnet18_cifar``: torchvision ResNet-18 whose stem is a 3x3 stride-1 convolution and no
  max-pool (the usual CIFAR variant, as in SimSiam's CIFAR experiments), 512-d output.
- ``resnet18`` / ``resnet50``: the standard torchvision models (224 px), 512-d / 2048-d output.
- ``tiny_cnn``: a four-layer CNN of configurable width for 8x8 digits, so the CPU demo stays fast.
- ``small_cnn``: the same four layers with a stride-2 first layer: a quarter of the cost at 32 px,
  for pre-training on a CPU (`curator.ssl.budget` picks it when the budget is short).
- ``patch_kmeans``: patch k-means features (Coates et al. 2011; `curator.ssl.patch_kmeans`), fitted rather
  than trained — what a CPU budget too short for a real self-supervised schedule gets (``width`` = centroids).
- ``torchvision:NAME``: `torchvision.models.get_model(NAME, weights=None)`, classifier removed.
- ``timm:NAME``: `timm.create_model(NAME, pretrained=False)` (optional extra ``timm``), classifier removed.
- ``openclip:ARCH``: the image tower of `open_clip.create_model(ARCH)` (optional extra ``openclip``); its output is
  CLIP's image embedding.

Every backbone maps (B, 3, H, W) float images to (B, d) features. `build_backbone` returns the module and a
`BackboneInfo` with d and, for torchvision/timm models, the backbone's own input size and normalisation
(torchvision's weights transforms, timm's ``pretrained_cfg``, open_clip's preprocessing config — metadata only).
Weights — a file (`curator.ssl.weights`) or a name the library knows, from its cache (`curator.ssl.pretrained`) — are
loaded into the model with its classifier, then the classifier is removed, so the keys are checked against the whole
architecture.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

LOG = logging.getLogger(__name__)

BACKBONES = ("resnet18_cifar", "resnet18", "resnet50", "tiny_cnn", "small_cnn", "patch_kmeans")
FITTED = ("patch_kmeans",)   # fitted on the images (no SSL epochs)
PREFIXES = ("torchvision:", "timm:", "openclip:")


@dataclass(frozen=True)
class BackboneInfo:
    """What the rest of the pipeline needs to know about an encoder."""
    name: str
    dim: int
    input_size: int | None = None                          # the model's own input side (pretrained models)
    mean: tuple[float, float, float] | None = None         # its own normalisation; None: the method's recipe
    std: tuple[float, float, float] | None = None


class TinyCNN(nn.Module):
    """conv3x3/s(w) -> conv3x3(w) -> conv3x3/2(2w) -> conv3x3(2w) -> global average pool; (B,3,H,W) -> (B, 2w).

    `stem_stride` 1 is the digits network; 2 (``small_cnn``) quarters the cost of every later layer."""

    def __init__(self, width: int = 32, stem_stride: int = 1):
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(*block(3, width, stem_stride), *block(width, width), *block(width, 2 * width, 2),
                                 *block(2 * width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _resnet(name: str, cifar_stem: bool) -> tuple[nn.Module, int]:
    import torchvision  # here, not at import: the audit of given embeddings never builds a network (1.5 s of start-up)

    model = getattr(torchvision.models, name)(weights=None)  # weights=None: nothing is downloaded
    if cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    dim = model.fc.in_features
    model.fc = nn.Identity()
    return model, dim


def check_backbone_name(name: str) -> None:
    """Raise ValueError naming the problem when `name` is not a backbone curator can build."""
    if name.startswith("torchvision:"):
        import torchvision

        arch = name.split(":", 1)[1]
        known = torchvision.models.list_models(module=torchvision.models)
        if arch not in known:
            raise ValueError(f"{arch!r} is not a torchvision classification model; e.g. resnet50, convnext_tiny, "
                             "vit_b_16 (torchvision.models.list_models())")
        return
    if name.startswith("timm:"):
        timm = import_timm()
        arch = name.split(":", 1)[1]
        if not timm.is_model(arch):
            raise ValueError(f"{arch!r} is not a timm model (timm.list_models())")
        return
    if name.startswith("openclip:"):
        arch = name.split(":", 1)[1]
        if arch not in import_open_clip().list_models():
            raise ValueError(f"{arch!r} is not an open_clip model (open_clip.list_models(), e.g. ViT-B-32)")
        return
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: auto, {', '.join(BACKBONES)}, torchvision:NAME, timm:NAME, "
                         "openclip:ARCH")


def import_open_clip():
    try:
        import open_clip
    except ImportError:
        raise ValueError("openclip backbones need the optional package open_clip_torch: "
                         "pip install 'curator[openclip]'") from None
    return open_clip


def import_timm():
    try:
        import timm
    except ImportError:
        raise ValueError("timm backbones need the optional package timm: pip install 'curator[timm]'") from None
    return timm


def resolve_backbone(name: str | None, image_size: int) -> str:
    """None/'auto' -> tiny_cnn (<= 16 px), resnet18_cifar (<= 64 px) or resnet18 (the GPU defaults)."""
    if name not in (None, "auto"):
        check_backbone_name(name)
        return name
    if image_size <= 16:
        return "tiny_cnn"
    return "resnet18_cifar" if image_size <= 64 else "resnet18"


def native_preprocessing(name: str) -> BackboneInfo:
    """The input size and normalisation a torchvision/timm model was trained with (metadata, no download);
    for curator's own backbones: none (the method's recipe decides)."""
    if name.startswith("torchvision:"):
        import torchvision

        arch = name.split(":", 1)[1]
        try:
            t = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
            return BackboneInfo(name, 0, int(t.crop_size[0]), tuple(t.mean), tuple(t.std))
        except (ValueError, AttributeError, KeyError, TypeError):   # a model without published weights
            return BackboneInfo(name, 0, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    if name.startswith("timm:"):
        model = _timm_model(name)
        return _timm_info(name, model, 0)
    if name.startswith("openclip:"):
        return _open_clip_info(name, _open_clip_model(name).visual)
    return BackboneInfo(name, 0)


def _timm_model(name: str) -> nn.Module:
    return import_timm().create_model(name.split(":", 1)[1], pretrained=False)


def _open_clip_model(name: str) -> nn.Module:
    return import_open_clip().create_model(name.split(":", 1)[1], pretrained=None)


def _open_clip_info(name: str, visual: nn.Module) -> BackboneInfo:
    pp = dict(getattr(visual, "preprocess_cfg", {}) or {})   # open_clip's preprocessing of the architecture
    size = pp.get("size") or getattr(visual, "image_size", 224)
    size = size[-1] if isinstance(size, (tuple, list)) else size
    mean = pp.get("mean") or (0.48145466, 0.4578275, 0.40821073)   # OpenAI CLIP's
    std = pp.get("std") or (0.26862954, 0.26130258, 0.27577711)
    return BackboneInfo(name, int(getattr(visual, "output_dim", 0) or 0), int(size), tuple(float(v) for v in mean),
                        tuple(float(v) for v in std))


def _timm_info(name: str, model: nn.Module, dim: int) -> BackboneInfo:
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    size = cfg.get("input_size") or (3, 224, 224)
    mean, std = cfg.get("mean") or (0.485, 0.456, 0.406), cfg.get("std") or (0.229, 0.224, 0.225)
    return BackboneInfo(name, dim, int(size[-1]), tuple(float(v) for v in mean), tuple(float(v) for v in std))


def full_model(name: str) -> tuple[nn.Module, list[str]]:
    """A torchvision/timm model WITH its classifier (for loading a file's weights) and the classifier's module names."""
    if name.startswith("torchvision:"):
        import torchvision

        model = torchvision.models.get_model(name.split(":", 1)[1], weights=None)
        last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not last:
            raise ValueError(f"{name}: no final linear classifier to remove; use a model that ends in one")
        return model, [last[-1]]
    if name.startswith("timm:"):
        model = _timm_model(name)
        clf = (getattr(model, "pretrained_cfg", {}) or {}).get("classifier") or "head"
        return model, [clf] if isinstance(clf, str) else list(clf)
    if name.startswith("openclip:"):   # the whole CLIP model: its checkpoints hold both towers
        return _open_clip_model(name), []
    raise ValueError(f"{name}: not a torchvision:/timm:/openclip: backbone")


def strip_classifier(name: str, model: nn.Module, classifier: list[str]) -> tuple[nn.Module, BackboneInfo]:
    """Remove the classifier of a torchvision/timm model (the text tower of a CLIP model); returns (feature
    extractor, info)."""
    if name.startswith("openclip:"):
        visual = model.visual
        info = _open_clip_info(name, visual)
        if not info.dim:
            with torch.no_grad():
                was = visual.training
                visual.eval()
                dim = int(visual(torch.zeros(1, 3, info.input_size, info.input_size)).shape[-1])
                visual.train(was)
            info = BackboneInfo(name, dim, info.input_size, info.mean, info.std)
        return visual, info
    if name.startswith("timm:"):
        model.reset_classifier(0)
        was = model.training
        model.eval()
        info = _timm_info(name, model, 0)
        with torch.no_grad():
            dim = int(model(torch.zeros(1, 3, info.input_size, info.input_size)).shape[-1])
        model.train(was)
        return model, BackboneInfo(name, dim, info.input_size, info.mean, info.std)
    parent_name, _, attr = classifier[0].rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    linear = getattr(parent, attr)
    setattr(parent, attr, nn.Identity())
    native = native_preprocessing(name)
    return model, BackboneInfo(name, int(linear.in_features), native.input_size, native.mean, native.std)


def load_library_weights(model: nn.Module, name: str, weights: str, classifier: list[str], *,
                         download: bool = True):
    """Load `weights` into the torchvision/timm/open_clip `model`: a file of that name when one exists, else the
    weights the library knows by that name, from its cache (downloaded first only when `download`). Returns the
    `curator.ssl.pretrained.Named` weights, or None for a file."""
    from curator.ssl.pretrained import fetch, resolve
    from curator.ssl.weights import load_weights

    named = resolve(name, weights, model)
    if named is None:
        LOG.info("--weights %s: the file of that name is used", weights)
        load_weights(model, weights, name, optional=classifier)
        return None
    load_weights(model, fetch(named, download=download), name, optional=classifier)
    return named


def build_backbone(name: str | None, image_size: int, width: int | None = None, *,
                   weights: str | None = None, download: bool = True) -> tuple[nn.Module, BackboneInfo]:
    """Return (module mapping (B,3,H,W) -> (B,d), info). `weights`: a local file (`curator.ssl.weights`) or, for a
    torchvision/timm/open_clip model, a weights name from the library's cache (`curator.ssl.pretrained`; fetched
    when absent only if `download`)."""
    name = resolve_backbone(name, image_size)
    if name.startswith(PREFIXES):
        model, classifier = full_model(name)
        named = load_library_weights(model, name, weights, classifier, download=download) if weights else None
        model, info = strip_classifier(name, model, classifier)
        if named is not None and named.mean is not None:   # normalisation of these weights (open_clip's per tag)
            info = BackboneInfo(name, info.dim, info.input_size, named.mean, named.std)
        return model, info
    if name == "patch_kmeans":
        from curator.ssl.patch_kmeans import PatchKMeans

        net = PatchKMeans(width or 128)
        module, dim = net, net.out_dim
    elif name in ("tiny_cnn", "small_cnn"):
        net = TinyCNN(width or 32, stem_stride=2 if name == "small_cnn" else 1)
        module, dim = net, net.out_dim
    else:
        module, dim = _resnet("resnet18" if name == "resnet18_cifar" else name, cifar_stem=name == "resnet18_cifar")
    info = BackboneInfo(name, dim) if name not in FITTED else BackboneInfo(name, dim, None, (0.0,) * 3, (1.0,) * 3)
    if weights is not None:
        from curator.ssl.weights import load_weights

        meta = load_weights(module, weights, name)
        rec = (meta or {}).get("recipe")
        if rec:   # a curator checkpoint keeps the normalisation it was trained with
            info = BackboneInfo(name, dim, None, tuple(rec["mean"]), tuple(rec["std"]))
    return module, info
