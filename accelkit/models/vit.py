"""ViT (Dosovitskiy et al. 2020) in one file: config, patch embeddings, pre-LN encoder, pooler, classifier.

Names are transformers' (``vit.encoder.layer.0.attention.attention.query``). The image is cut into
patches by a convolution with kernel = stride = patch size (a strided view and one matmul), a [CLS]
token is prepended and position embeddings added; each layer is pre-LN:
``x = x + attn(LN(x)); x = x + mlp(LN(x))``, with q/k/v fused into one matmul and bias+GELU in the
matmul epilogue.

    vit = accelkit.load("tiny-random-vit")
    vit.classify(image, top_k=3)       # [[("cat", 0.41), ("dog", 0.22), ...]]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import nn, ops
from ..errors import ConfigError, InputError
from ..tensor.tensor import Tensor
from .config import ACTIVATIONS, Config, check_activation, labels_from_config, positive
from .model import PreTrainedModel
from .outputs import ModelOutput, top_labels


@dataclasses.dataclass
class ViTConfig(Config):
    model_type = "vit"

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True
    pooler_output_size: int | None = None
    pooler_act: str = "tanh"
    id2label: dict | None = None

    def validate(self) -> None:
        positive(
            self,
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "image_size",
            "patch_size",
            "num_channels",
        )
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        check_activation(self.hidden_act)
        check_activation(self.pooler_act, "pooler_act")
        labels_from_config(self.id2label)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 2


# ------------------------------------------------------------------------------------ modules


class ViTPatchEmbeddings(nn.Module):
    """Cut the image into patch_size x patch_size patches and project each to hidden_size."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        p = config.patch_size
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size, p, stride=p)

    def __call__(self, pixel_values: Tensor) -> Tensor:
        y = self.projection(pixel_values)  # (B, C, h, w), a permuted view of a dense (B, h, w, C)
        b, c, h, w = y.shape
        return y.permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, N, C), no copy


class ViTEmbeddings(nn.Module):
    """[CLS] token + patch embeddings, plus learned position embeddings."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        c = config.hidden_size
        self.cls_token = nn.Parameter((1, 1, c))
        self.patch_embeddings = ViTPatchEmbeddings(config)
        self.position_embeddings = nn.Parameter((1, config.num_patches + 1, c))

    def __call__(self, pixel_values: Tensor) -> Tensor:
        patches = self.patch_embeddings(pixel_values)  # (B, N, C)
        b, _, c = patches.shape
        x = ops.concat([self.cls_token.expand(b, 1, c), patches], axis=1)  # (B, N+1, C)
        return x + self.position_embeddings  # (B, N+1, C)


class ViTSelfAttention(nn.QKVSelfAttention):
    """Multi-head self-attention: ``query``/``key``/``value`` (bias per qkv_bias), fused into one matmul after loading."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__(config.hidden_size, config.num_attention_heads, bias=config.qkv_bias)

    def __call__(self, x: Tensor) -> Tensor:
        q, k, v = self.project(x)  # (B, T, C) each, from one (B, T, 3C) matmul
        # per head (B, H, T, D): softmax(q k^T / sqrt(D)) v over all tokens (no mask: every image is full)
        return nn.multi_head_attention(q, k, v, self.num_heads)  # (B, T, C)


class ViTOutput(nn.Module):
    """``dense`` back to hidden_size (after attention and after the MLP), the layer's residual added in its epilogue."""

    def __init__(self, in_features: int, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)

    def __call__(self, h: Tensor, residual: Tensor | None = None) -> Tensor:
        return self.dense(h, residual=residual)  # (B, T, C), + residual in the matmul epilogue


class ViTAttention(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.attention = ViTSelfAttention(config)
        self.output = ViTOutput(config.hidden_size, config)

    def __call__(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        return self.output(self.attention(x), residual)  # (B, T, C)


class ViTIntermediate(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACTIVATIONS[config.hidden_act]

    def __call__(self, x: Tensor) -> Tensor:
        return self.dense(x, activation=self.activation)  # (B, T, I), bias + GELU in the matmul epilogue


class ViTLayer(nn.Module):
    """Pre-LN: x = x + attn(LN(x)); x = x + mlp(LN(x))."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.attention = ViTAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.intermediate = ViTIntermediate(config)
        self.output = ViTOutput(config.intermediate_size, config)

    def __call__(self, x: Tensor) -> Tensor:
        x = self.attention(self.layernorm_before(x), residual=x)  # (B, T, C)
        return self.output(self.intermediate(self.layernorm_after(x)), residual=x)  # (B, T, I) -> (B, T, C)


class ViTEncoder(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(ViTLayer(config) for _ in range(config.num_hidden_layers))

    def __call__(self, x: Tensor, hidden_states: list | None = None) -> Tensor:
        for layer in self.layer:
            x = layer(x)  # (B, T, C)
            if hidden_states is not None:
                hidden_states.append(x)
        return x


class ViTPooler(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.pooler_output_size or config.hidden_size)
        self.activation = ACTIVATIONS[config.pooler_act]

    def __call__(self, x: Tensor) -> Tensor:
        return self.dense(x[:, 0], activation=self.activation)  # the [CLS] token, (B, C)


# ------------------------------------------------------------------------------------ models


class ViTPreTrainedModel(PreTrainedModel):
    """What every ViT model shares: the config, loading rules, the image processor, input checks."""

    config_class = ViTConfig
    base_model_prefix = "vit"

    @property
    def image_processor(self):
        """The checkpoint's preprocessor_config.json as an ImageProcessor, loaded on first use."""
        proc = self.__dict__.get("_image_processor")
        if proc is None:
            from ..preprocess import ImageProcessor

            if self.checkpoint is None or not (self.checkpoint / "preprocessor_config.json").is_file():
                size = self.config.image_size
                proc = ImageProcessor(
                    size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
                )
            else:
                proc = ImageProcessor.from_dir(self.checkpoint)
            object.__setattr__(self, "_image_processor", proc)
        return proc

    def preprocess(self, images) -> np.ndarray:
        """Images (PIL, arrays, or a list) -> pixel_values (B, C, H, W) float32, as the checkpoint expects."""
        return self.image_processor(images)

    def _pixels(self, pixel_values, *, upload: bool = True):
        """Checked pixel values (B, C, H, W): a Tensor, or a host array with ``upload=False``."""
        cfg = self.config
        want = (cfg.num_channels, cfg.image_size, cfg.image_size)
        if not isinstance(pixel_values, Tensor):  # numpy, nested lists of numbers, torch
            pixel_values = self._host_input(pixel_values, "pixel_values")
        shape = tuple(pixel_values.shape)
        if len(shape) == 3:
            if isinstance(pixel_values, Tensor):
                pixel_values = pixel_values.unsqueeze(0)
            else:
                pixel_values = pixel_values[None]
            shape = (1,) + shape
        if len(shape) != 4 or shape[1:] != want:
            what = "channels" if len(shape) == 4 and shape[1] != want[0] else "size"
            raise InputError(
                f"pixel_values: expected shape (batch, {want[0]}, {want[1]}, {want[2]}), got {shape} (wrong {what}); "
                "use model.preprocess(images) to resize and normalise images"
            )
        return self._tensor_input(pixel_values, "pixel_values", self.compute_dtype, upload=upload)


class ViTModel(ViTPreTrainedModel):
    """The bare encoder: ``pixel_values (B, 3, H, W) -> last_hidden_state (B, N+1, C), pooler_output``."""

    optional_modules = ("pooler",)  # checkpoints saved from ViTForImageClassification have no pooler

    def __init__(self, config: ViTConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = ViTEmbeddings(config)
        self.encoder = ViTEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.pooler = ViTPooler(config) if add_pooling_layer else None

    def __call__(self, pixel_values, output_hidden_states: bool = False) -> ModelOutput:
        pixels = self._pixels(pixel_values, upload=False)
        return ModelOutput(**self.run_compiled(ViTModel.forward, pixels, output_hidden_states))

    def forward(self, pixel_values: Tensor, output_hidden_states: bool) -> dict:
        x = self.embeddings(pixel_values)  # (B, N+1, C)
        hidden = [x] if output_hidden_states else None
        x = self.layernorm(self.encoder(x, hidden))
        pooled = self.pooler(x) if self.pooler is not None else None
        return {"last_hidden_state": x, "pooler_output": pooled, "hidden_states": hidden}


class ViTForImageClassification(ViTPreTrainedModel):
    """ViT + a linear classifier on the final [CLS] state: ``.logits`` (B, num_labels), ``.id2label``."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__(config)
        self.vit = ViTModel(config, add_pooling_layer=False)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def __call__(self, pixel_values, output_hidden_states: bool = False) -> ModelOutput:
        pixels = self._pixels(pixel_values, upload=False)
        out = self.run_compiled(ViTForImageClassification.forward, pixels, output_hidden_states)
        return ModelOutput(id2label=self.id2label, **out)

    def forward(self, pixel_values: Tensor, output_hidden_states: bool) -> dict:
        out = self.vit.forward(pixel_values, output_hidden_states)
        out["logits"] = self.classifier(out["last_hidden_state"][:, 0])  # (B, num_labels)
        return out

    def classify(self, images, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image, the ``top_k`` (label, probability) pairs, best first (images are preprocessed here)."""
        return top_labels(self(self.preprocess(images)).logits, self.id2label, top_k)


__all__ = ["ViTConfig", "ViTForImageClassification", "ViTModel"]
