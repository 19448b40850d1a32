"""ViT image preprocessing: images -> (B, 3, H, W) float32, as transformers' ViTImageProcessor does it.

The steps and their float casts follow transformers' PIL backend exactly, so uint8 inputs give
the same pixel_values: convert to RGB -> resize with Pillow (uint8) -> [center crop] ->
rescale (float64 multiply, cast to float32) -> normalize ((x - mean) / std in float32).

Example::

    processor = ImageProcessor.from_dir("vit-checkpoint/")
    pixel_values = processor([Image.open("cat.jpg"), np.zeros((480, 640, 3), np.uint8)])  # (2, 3, 224, 224)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from accelkit.errors import ConfigError, InputError
from accelkit.io import read_preprocessor_config

ImageInput = Image.Image | np.ndarray | Sequence[Image.Image | np.ndarray]

IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
# Pillow's resampling filter codes, as preprocessor_config.json stores them
RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def _size_dict(size: Any, name: str) -> dict[str, int]:
    """Normalise a config size to {"height", "width"} or {"shortest_edge"} (an int means a square)."""
    if isinstance(size, bool):
        raise ConfigError(f"image processor: {name} must be an int, [height, width] or a dict, got {size!r}")
    if isinstance(size, int):
        size = {"height": size, "width": size}
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        size = {"height": size[0], "width": size[1]}
    if not isinstance(size, dict):
        raise ConfigError(f"image processor: {name} must be an int, [height, width] or a dict, got {size!r}")
    keys = set(size)
    if keys not in ({"height", "width"}, {"shortest_edge"}):
        raise ConfigError(
            f"image processor: {name} must have keys height+width or shortest_edge, got {sorted(keys)}"
        )
    for key, value in size.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"image processor: {name}[{key!r}] must be a positive int, got {value!r}")
    return dict(size)


def _channel_triple(values: Any, name: str) -> tuple[float, float, float]:
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values] * 3
    if (
        not isinstance(values, (list, tuple))
        or len(values) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ):
        raise ConfigError(f"image processor: {name} must be 3 numbers (one per RGB channel), got {values!r}")
    return tuple(float(v) for v in values)


class ImageProcessor:
    """Turns images into the `pixel_values` a ViT takes: float32 (B, 3, H, W).

    Configured like transformers' `ViTImageProcessor` (the keys of `preprocessor_config.json`):
    do_resize + size ({"height", "width"}, {"shortest_edge"} keeping the aspect ratio, or an int
    for a square), resample (Pillow filter code; 2 = bilinear), do_center_crop + crop_size,
    do_rescale + rescale_factor, do_normalize + image_mean / image_std.

    Inputs: a PIL image, an array, or a list of them (sizes may differ when they are resized to
    one size). Arrays are (H, W) grayscale, (H, W, C) or a batch (B, H, W, C); channels-first
    (C, H, W) / (B, C, H, W) is read when the last axis does not hold 1, 3 or 4 channels.
    Images always become RGB, whatever do_convert_rgb says (the model takes 3 channels):
    grayscale is repeated, and alpha is composited onto white as transformers' convert_to_rgb does.

    Values: uint8 arrays and PIL images are pixel values 0..255 and match transformers to float32
    rounding; other integer arrays must hold values in 0..255. Float arrays must lie in [0, 1]
    and mean intensity (x * 255 on the 0..255 scale): they are resized in float precision
    (Pillow mode "F"), so a float image equals its uint8 version up to Pillow's uint8 rounding.
    (transformers instead truncates floats to uint8 and rescales them twice.)
    """

    def __init__(
        self,
        *,
        do_resize: bool = True,
        size: int | dict[str, int] | None = None,
        resample: int = 2,
        do_center_crop: bool = False,
        crop_size: int | dict[str, int] | None = None,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: Sequence[float] = IMAGENET_STANDARD_MEAN,
        image_std: Sequence[float] = IMAGENET_STANDARD_STD,
        do_convert_rgb: bool | None = None,
    ):
        self.do_resize = bool(do_resize)
        self.size = _size_dict(224 if size is None else size, "size")
        if isinstance(resample, bool) or not isinstance(resample, int) or resample not in RESAMPLE_NAMES:
            raise ConfigError(
                f"image processor: resample must be a Pillow filter code 0..5, got {resample!r}"
            )
        self.resample = int(resample)
        self.do_center_crop = bool(do_center_crop)
        self.crop_size = _size_dict(224 if crop_size is None else crop_size, "crop_size")
        if "height" not in self.crop_size:
            raise ConfigError(f"image processor: crop_size needs height and width, got {self.crop_size}")
        self.do_rescale = bool(do_rescale)
        if isinstance(rescale_factor, bool) or not isinstance(rescale_factor, (int, float)):
            raise ConfigError(f"image processor: rescale_factor must be a number, got {rescale_factor!r}")
        self.rescale_factor = float(rescale_factor)
        self.do_normalize = bool(do_normalize)
        self.image_mean = _channel_triple(image_mean, "image_mean")
        self.image_std = _channel_triple(image_std, "image_std")
        if any(s == 0 for s in self.image_std):
            raise ConfigError(f"image processor: image_std must not contain 0, got {self.image_std}")
        self.do_convert_rgb = do_convert_rgb

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ImageProcessor:
        """Build from a `preprocessor_config.json` dict; unknown keys are ignored."""
        if not isinstance(config, dict):
            raise ConfigError(f"image processor: config must be a dict, got {type(config).__name__}")
        keys = (
            "do_resize",
            "size",
            "resample",
            "do_center_crop",
            "crop_size",
            "do_rescale",
            "rescale_factor",
            "do_normalize",
            "image_mean",
            "image_std",
            "do_convert_rgb",
        )
        return cls(**{key: config[key] for key in keys if config.get(key) is not None})

    @classmethod
    def from_dir(cls, path: str | Path) -> ImageProcessor:
        """Read `path/preprocessor_config.json` (or that file itself)."""
        return cls.from_config(read_preprocessor_config(path, "image processor"))

    def __call__(self, images: ImageInput) -> np.ndarray:
        processed = [self._process(image) for image in _split_batch(images)]
        shapes = {p.shape for p in processed}
        if len(shapes) > 1:
            raise InputError(
                f"images: processed images differ in shape {sorted(shapes)}; resize to a fixed "
                "size ({'height', 'width'}) or center-crop to batch them"
            )
        return np.stack(processed)

    def _process(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """One image -> float32 (3, H, W)."""
        pixels = _to_rgb(image)  # (H, W, 3) uint8, or float64 on the 0..255 scale
        if self.do_resize:
            pixels = self._resize(pixels)
        pixels = np.moveaxis(pixels, -1, 0)  # (3, H, W)
        if self.do_center_crop:
            pixels = _center_crop(pixels, self.crop_size["height"], self.crop_size["width"])
        if self.do_rescale:
            pixels = (pixels.astype(np.float64) * self.rescale_factor).astype(np.float32)
        if self.do_normalize:
            if not np.issubdtype(pixels.dtype, np.floating):
                pixels = pixels.astype(np.float32)
            mean = np.array(self.image_mean, dtype=pixels.dtype)[:, None, None]
            std = np.array(self.image_std, dtype=pixels.dtype)[:, None, None]
            pixels = (pixels - mean) / std
        return pixels.astype(np.float32)

    def _output_size(self, height: int, width: int) -> tuple[int, int]:
        if "height" in self.size:
            return self.size["height"], self.size["width"]
        # shortest edge -> size, the other keeps the aspect ratio (rounded down), as transformers does
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.size["shortest_edge"], int(self.size["shortest_edge"] * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)

    def _resize(self, pixels: np.ndarray) -> np.ndarray:
        height, width = self._output_size(*pixels.shape[:2])
        if pixels.dtype == np.uint8:
            resized = Image.fromarray(pixels, mode="RGB").resize((width, height), resample=self.resample)
            return np.asarray(resized)
        channels = [
            np.asarray(
                Image.fromarray(pixels[..., c].astype(np.float32), mode="F").resize(
                    (width, height), self.resample
                )
            )
            for c in range(3)
        ]
        return np.stack(channels, axis=-1).astype(np.float64)

    def __repr__(self) -> str:
        size = self.size if self.do_resize else None
        crop = self.crop_size if self.do_center_crop else None
        return (
            f"ImageProcessor(size={size}, resample={RESAMPLE_NAMES[self.resample]}, crop={crop}, "
            f"rescale={self.rescale_factor if self.do_rescale else None}, "
            f"mean={self.image_mean if self.do_normalize else None}, std={self.image_std if self.do_normalize else None})"
        )


def _split_batch(images: ImageInput) -> list[Image.Image | np.ndarray]:
    if isinstance(images, Image.Image):
        return [images]
    if isinstance(images, (list, tuple)):
        if not images:
            raise InputError("images: got an empty list")
        for image in images:
            if not isinstance(image, (Image.Image, np.ndarray)):
                raise InputError(
                    f"images: list items must be PIL images or numpy arrays, got {type(image).__name__}"
                )
            if isinstance(image, np.ndarray) and image.ndim not in (2, 3):
                raise InputError(
                    f"images: list items must be (H, W) or (H, W, C) arrays, got shape {image.shape}"
                )
        return list(images)
    if not isinstance(images, np.ndarray):
        raise InputError(
            f"images: expected a PIL image, a numpy array or a list of them, got {type(images).__name__}"
        )
    if images.ndim == 4:
        return list(images)
    if images.ndim in (2, 3):
        return [images]
    raise InputError(f"images: expected an (H, W), (H, W, C) or (B, H, W, C) array, got shape {images.shape}")


def _to_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 for PIL images and integer arrays; float64 on the 0..255 scale for float arrays."""
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise InputError(f"images: empty image of size {image.size}")
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))

    shape = image.shape
    if image.dtype.kind not in "uif":
        raise InputError(
            f"images: expected numeric pixels, got dtype {image.dtype} for an image of shape {shape}"
        )
    if image.ndim == 2:
        image = image[..., None]
    elif image.shape[-1] not in (1, 3, 4) and image.shape[0] in (1, 3, 4):
        image = np.moveaxis(image, 0, -1)  # (C, H, W) -> (H, W, C)
    if image.shape[-1] not in (1, 3, 4):
        raise InputError(f"images: expected 1, 3 or 4 channels (first or last axis), got shape {shape}")
    if image.size == 0:
        raise InputError(f"images: empty image of shape {shape}")

    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise InputError(f"images: float pixels contain NaN or Inf in an image of shape {shape}")
        if image.min() < 0 or image.max() > 1:
            raise InputError(
                f"images: float pixels must lie in [0, 1], got range [{image.min()}, {image.max()}] "
                f"in an image of shape {shape}"
            )
        image = image.astype(np.float64) * 255.0
        white = 255.0
    else:
        if image.dtype != np.uint8:
            if image.min() < 0 or image.max() > 255:
                raise InputError(
                    f"images: integer pixels must lie in 0..255, got range [{image.min()}, {image.max()}] "
                    f"in an image of shape {shape}"
                )
            image = image.astype(np.uint8)
        white = None

    channels = image.shape[-1]
    if channels == 1:
        return np.repeat(image, 3, axis=-1)
    if channels == 4:
        if white is None:  # transformers' numpy convert_to_rgb: blend onto white, round
            alpha = image[..., 3:4] / 255
            return np.round(alpha * image[..., :3] + (1 - alpha) * 255).astype(np.uint8)
        alpha = image[..., 3:4] / white
        return alpha * image[..., :3] + (1 - alpha) * white
    return np.ascontiguousarray(image)


def _center_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop (C, H, W) around the centre; a side shorter than the crop is zero-padded (as transformers)."""
    out = np.zeros(pixels.shape[:1] + (height, width), dtype=pixels.dtype)
    src, dst = [], []
    for have, want in zip(pixels.shape[1:], (height, width)):
        if want <= have:
            start = (have - want) // 2
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            start = math.ceil((want - have) / 2)
            src.append(slice(0, have))
            dst.append(slice(start, start + have))
    out[:, dst[0], dst[1]] = pixels[:, src[0], src[1]]
    return out
