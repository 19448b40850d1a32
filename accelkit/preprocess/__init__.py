"""Model inputs from raw data, in numpy, matching Hugging Face transformers' preprocessing exactly.

- text: `TextTokenizer` (tokenizer.json via `tokenizers`) -> input_ids / attention_mask / token_type_ids
- images: `ImageProcessor` (ViT preprocessor_config.json) -> pixel_values (B, 3, H, W) float32
- audio: `FeatureExtractor` / `log_mel_spectrogram` (Whisper) -> input_features (B, n_mels, 3000)
  float32, with `to_mono_float32`, `resample` and `chunk_audio` to get audio into shape first

Each class has `from_dir(checkpoint_dir)`; all raise `accelkit.errors.InputError` for bad input
and `WeightsError` / `ConfigError` for missing or malformed files.
"""

from accelkit.preprocess.audio import (
    WHISPER_SAMPLING_RATE,
    FeatureExtractor,
    chunk_audio,
    log_mel_spectrogram,
    mel_filters,
    resample,
    to_mono_float32,
)
from accelkit.preprocess.image import ImageProcessor
from accelkit.preprocess.tokenizer import TextTokenizer

__all__ = [
    "TextTokenizer",
    "ImageProcessor",
    "FeatureExtractor",
    "log_mel_spectrogram",
    "mel_filters",
    "resample",
    "chunk_audio",
    "to_mono_float32",
    "WHISPER_SAMPLING_RATE",
]
