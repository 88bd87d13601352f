"""Write specs/zoo/*.yaml: LeNet-5, AlexNet, VGG16, ResNet-18, ResNet-50 and GoogLeNet as nnctl specs.

    python scripts/make_zoo_specs.py            # writes specs/zoo/
    python scripts/make_zoo_specs.py --check    # exit 1 when a committed file differs from what this writes

The architectures are torchvision's (AlexNet is torchvision's single-tower version, GoogLeNet without its
auxiliary classifiers, ResNet-50 is v1.5: the stride on the 3x3 convolution), and every layer with weights is
named after torchvision's module path (`features.0`, `layer1.0.conv1`, `inception3a.branch2.1.conv`), so a
torchvision `state_dict` maps onto the spec by name (docs/transfer.md). `tests/test_zoo.py` checks the
parameter counts against torchvision's and the outputs against PyTorch modules transcribed from torchvision.
The builders take the widths and sizes as arguments: `scripts/make_zoo_fixtures.py` builds reduced copies.
"""

from __future__ import annotations

import sys
from pathlib import Path

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"
TORCH_BN = {"momentum": 0.9, "epsilon": 1e-5}  # torch.nn.BatchNorm2d's defaults (torch momentum 0.1)


def conv(name, filters, k, s=1, p=0, bias=True, act=None, inputs=None, **kw):
    d = {"name": name, "type": "conv2d", "filters": filters, "kernel_size": k}
    if s != 1:
        d["strides"] = s
    if p:
        d["padding"] = p
    if not bias:
        d["use_bias"] = False
    return _tail(d, act, inputs, kw)


def layer(name, type_, act=None, inputs=None, **kw):
    return _tail({"name": name, "type": type_}, act, inputs, kw)


def _tail(d, act, inputs, kw):
    d.update(kw)
    if act:
        d["activation"] = act
    if inputs:
        d["inputs"] = inputs
    return d


def bn(name, act=None, inputs=None, bn_opts=TORCH_BN):
    return layer(name, "batch_norm", act, inputs, **bn_opts)


def lenet5(classes=10):
    return [
        conv("conv1", 6, 5, act="tanh"),
        layer("pool1", "avg_pool2d", pool_size=2),
        conv("conv2", 16, 5, act="tanh"),
        layer("pool2", "avg_pool2d", pool_size=2),
        layer("flatten", "flatten"),
        layer("fc1", "dense", "tanh", units=120),
        layer("fc2", "dense", "tanh", units=84),
        layer("fc3", "dense", "softmax", units=classes),
    ]


def alexnet(classes=1000, widths=(64, 192, 384, 256, 256), hidden=4096, pool_out=6):
    a, b, c, d, e = widths
    return [
        conv("features.0", a, 11, 4, 2, act="relu"),
        layer("features.2", "max_pool2d", pool_size=3, strides=2),
        conv("features.3", b, 5, p=2, act="relu"),
        layer("features.5", "max_pool2d", pool_size=3, strides=2),
        conv("features.6", c, 3, p=1, act="relu"),
        conv("features.8", d, 3, p=1, act="relu"),
        conv("features.10", e, 3, p=1, act="relu"),
        layer("features.12", "max_pool2d", pool_size=3, strides=2),
        layer("avgpool", "adaptive_avg_pool", output_size=pool_out),
        layer("flatten", "flatten"),
        layer("classifier.0", "dropout", rate=0.5),
        layer("classifier.1", "dense", "relu", units=hidden),
        layer("classifier.3", "dropout", rate=0.5),
        layer("classifier.4", "dense", "relu", units=hidden),
        layer("classifier.6", "dense", "softmax", units=classes),
    ]


VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg(classes=1000, cfg=tuple(VGG16), hidden=4096, pool_out=7):
    out, i = [], 0  # i: the index in torchvision's `features` (a convolution and its ReLU take two)
    for v in cfg:
        if v == "M":
            out.append(layer(f"features.{i}", "max_pool2d", pool_size=2))
            i += 1
        else:
            out.append(conv(f"features.{i}", v, 3, p=1, act="relu"))
            i += 2
    return out + [
        layer("avgpool", "adaptive_avg_pool", output_size=pool_out),
        layer("flatten", "flatten"),
        layer("classifier.0", "dense", "relu", units=hidden),
        layer("classifier.2", "dropout", rate=0.5),
        layer("classifier.3", "dense", "relu", units=hidden),
        layer("classifier.5", "dropout", rate=0.5),
        layer("classifier.6", "dense", "softmax", units=classes),
    ]


def _block(name, prev, planes, stride, bottleneck, project):
    """One torchvision BasicBlock/Bottleneck: the residual path, the shortcut, and their sum (named `name`)."""
    if bottleneck:
        out = [
            conv(f"{name}.conv1", planes, 1, bias=False, inputs=[prev]),
            bn(f"{name}.bn1", "relu"),
            conv(f"{name}.conv2", planes, 3, stride, 1, bias=False),
            bn(f"{name}.bn2", "relu"),
            conv(f"{name}.conv3", planes * 4, 1, bias=False),
            bn(f"{name}.bn3"),
        ]
    else:
        out = [
            conv(f"{name}.conv1", planes, 3, stride, 1, bias=False, inputs=[prev]),
            bn(f"{name}.bn1", "relu"),
            conv(f"{name}.conv2", planes, 3, 1, 1, bias=False),
            bn(f"{name}.bn2"),
        ]
    last, shortcut = out[-1]["name"], prev
    if project:
        width = planes * 4 if bottleneck else planes
        out += [
            conv(f"{name}.downsample.0", width, 1, stride, bias=False, inputs=[prev]),
            bn(f"{name}.downsample.1"),
        ]
        shortcut = f"{name}.downsample.1"
    return out + [layer(name, "add", "relu", inputs=[last, shortcut])]


def resnet(blocks=(2, 2, 2, 2), bottleneck=False, classes=1000, widths=(64, 128, 256, 512)):
    out = [
        conv("conv1", widths[0], 7, 2, 3, bias=False),
        bn("bn1", "relu"),
        layer("maxpool", "max_pool2d", pool_size=3, strides=2, padding=1),
    ]
    prev, channels = "maxpool", widths[0]
    for stage, (n, planes) in enumerate(zip(blocks, widths), start=1):
        for i in range(n):
            stride = 2 if stage > 1 and i == 0 else 1
            width = planes * 4 if bottleneck else planes
            name = f"layer{stage}.{i}"
            out += _block(name, prev, planes, stride, bottleneck, stride != 1 or channels != width)
            prev, channels = name, width
    return out + [
        layer("avgpool", "adaptive_avg_pool", output_size=1),
        layer("flatten", "flatten"),
        layer("fc", "dense", "softmax", units=classes),
    ]


GOOGLENET_BN = {"momentum": 0.9, "epsilon": 1e-3}  # BasicConv2d: BatchNorm2d(eps=0.001)
INCEPTIONS = {  # torchvision's Inception(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), without `in`
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def basic_conv(name, filters, k, s=1, p=0, inputs=None):
    """torchvision's BasicConv2d: conv (no bias) + batch norm (eps 0.001) + relu."""
    return [
        conv(f"{name}.conv", filters, k, s, p, bias=False, inputs=inputs),
        bn(f"{name}.bn", "relu", None, GOOGLENET_BN),
    ]


def inception(name, prev, c1, c3r, c3, c5r, c5, pp):
    # branch3 is a 3x3 convolution in torchvision (its known deviation from the paper's 5x5; the weights
    # were trained that way)
    return [
        *basic_conv(f"{name}.branch1", c1, 1, inputs=[prev]),
        *basic_conv(f"{name}.branch2.0", c3r, 1, inputs=[prev]),
        *basic_conv(f"{name}.branch2.1", c3, 3, p=1),
        *basic_conv(f"{name}.branch3.0", c5r, 1, inputs=[prev]),
        *basic_conv(f"{name}.branch3.1", c5, 3, p=1),
        layer(f"{name}.branch4.0", "max_pool2d", inputs=[prev], pool_size=3, strides=1, padding=1, ceil_mode=True),
        *basic_conv(f"{name}.branch4.1", pp, 1),
        layer(
            name,
            "concat",
            inputs=[f"{name}.{b}" for b in ("branch1.bn", "branch2.1.bn", "branch3.1.bn", "branch4.1.bn")],
        ),
    ]


def googlenet(classes=1000, scale=1):
    """`scale` divides every width (the reduced fixture models); 1 is torchvision's GoogLeNet."""
    w = lambda c: max(c // scale, 1)
    out = [
        *basic_conv("conv1", w(64), 7, 2, 3),
        layer("maxpool1", "max_pool2d", pool_size=3, strides=2, ceil_mode=True),
        *basic_conv("conv2", w(64), 1),
        *basic_conv("conv3", w(192), 3, p=1),
        layer("maxpool2", "max_pool2d", pool_size=3, strides=2, ceil_mode=True),
    ]
    prev = "maxpool2"
    for key, widths in INCEPTIONS.items():
        out += inception(f"inception{key}", prev, *map(w, widths))
        prev = f"inception{key}"
        if key in ("3b", "4e"):
            pool = "maxpool3" if key == "3b" else "maxpool4"
            k = 3 if key == "3b" else 2
            out.append(layer(pool, "max_pool2d", pool_size=k, strides=2, ceil_mode=True))
            prev = pool
    return out + [
        layer("avgpool", "adaptive_avg_pool", output_size=1),
        layer("flatten", "flatten"),
        layer("dropout", "dropout", rate=0.2),
        layer("fc", "dense", "softmax", units=classes),
    ]


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def spec_text(title: str, about: str, input_shape: list[int], layers: list[dict], classes: int) -> str:
    """The spec as YAML: one flow mapping per layer."""
    head = "\n".join(f"# {line}".rstrip() for line in about.strip().splitlines())
    rows = "\n".join("    - {" + ", ".join(f"{k}: {_value(v)}" for k, v in d.items()) + "}" for d in layers)
    loss = "categorical_crossentropy"
    return (
        f"# {title} (generated by scripts/make_zoo_specs.py; do not edit by hand)\n{head}\n"
        f"name: {title.split()[0].lower()}\n"
        f"model:\n  input_shape: {_value(input_shape)}\n  layers:\n{rows}\n"
        f"train:\n  loss: {loss}\n  metrics: [accuracy]\n"
        f"  optimizer: {{type: sgd, learning_rate: 0.01, momentum: 0.9}}\n"
        f"  batch_size: 32\n  epochs: 90\n"
        f"# {classes} classes: add a `data:` section with images of shape {input_shape} and one label per image.\n"
    )


USE = """Start from weights you already have: `model.init_from: FILE`, e.g. {src}
(docs/transfer.md has the mapping). Count the parameters without data: nnctl inspect params specs/zoo/{file}"""

ZOO_SPECS = {
    "lenet5.yaml": (
        "LeNet-5 (LeCun et al. 1998): 61,706 parameters",
        "Two tanh convolutions with average-pool subsampling, then 120-84-10 dense layers, on 32x32 gray\n"
        "images; the layer names are PyTorch's usual ones (conv1, conv2, fc1-fc3).",
        [32, 32, 1],
        lenet5,
        10,
        "a PyTorch state_dict with conv1, conv2, fc1, fc2, fc3",
    ),
    "alexnet.yaml": (
        "AlexNet (torchvision): 61,100,840 parameters",
        "torchvision's single-tower AlexNet (no LRN, no grouped convolutions: the 'one weird trick' version\n"
        "torchvision's weights were trained with).",
        [224, 224, 3],
        alexnet,
        1000,
        "torchvision.models.alexnet's state_dict",
    ),
    "vgg16.yaml": (
        "VGG16 (torchvision, Keras): 138,357,544 parameters",
        "Thirteen 3x3 convolutions in five blocks, three dense layers (configuration D of Simonyan &\nZisserman).",
        [224, 224, 3],
        vgg,
        1000,
        "torchvision.models.vgg16's state_dict",
    ),
    "resnet18.yaml": (
        "ResNet-18 (torchvision): 11,689,512 parameters",
        "Basic blocks [2, 2, 2, 2]; each block is conv-bn-relu-conv-bn plus its shortcut (a 1x1 convolution\n"
        "and batch norm where the shape changes), summed and passed through relu.",
        [224, 224, 3],
        resnet,
        1000,
        "torchvision.models.resnet18's state_dict",
    ),
    "resnet50.yaml": (
        "ResNet-50 (torchvision, v1.5): 25,557,032 parameters",
        "Bottleneck blocks [3, 4, 6, 3] (1x1, 3x3 with the stride, 1x1 to 4x the width), torchvision's v1.5.",
        [224, 224, 3],
        lambda classes: resnet((3, 4, 6, 3), True, classes),
        1000,
        "torchvision.models.resnet50's state_dict",
    ),
    "googlenet.yaml": (
        "GoogLeNet (torchvision, without the auxiliary classifiers): 6,624,904 parameters",
        "Nine Inception modules (1x1 | 1x1-3x3 | 1x1-3x3 | 3x3 max pool-1x1, concatenated) with batch norm\n"
        "after every convolution, as torchvision builds it; its pools round up (ceil_mode).",
        [224, 224, 3],
        googlenet,
        1000,
        "torchvision.models.googlenet(aux_logits=False)'s state_dict",
    ),
}


def render(file: str) -> str:
    title, about, shape, build, classes, src = ZOO_SPECS[file]
    return spec_text(title, about + "\n" + USE.format(src=src, file=file), shape, build(classes=classes), classes)


def main(argv: list[str]) -> int:
    ZOO.mkdir(parents=True, exist_ok=True)
    stale = []
    for file in ZOO_SPECS:
        text = render(file)
        if "--check" in argv:
            if not (ZOO / file).exists() or (ZOO / file).read_text() != text:
                stale.append(file)
        else:
            (ZOO / file).write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run python scripts/make_zoo_specs.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
