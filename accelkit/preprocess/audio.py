"""Whisper audio preprocessing in numpy: mono float32, resampling, 30 s chunks and log-mel features.

`log_mel_spectrogram` reproduces `transformers.WhisperFeatureExtractor`'s numpy path step by step
(same float32/float64 casts), so features agree with it to float32 rounding:

    audio -> float32 -> pad with zeros / cut to chunk_length s -> reflect-pad n_fft/2 on both sides
    -> frames of n_fft every hop_length -> periodic Hann window -> rfft -> |X|^2
    -> slaney mel filters (0..8000 Hz, slaney norm) -> max(., 1e-10) -> log10
    -> drop the last frame -> max(x, x.max() - 8) -> (x + 4) / 4

Example::

    features = log_mel_spectrogram(resample(to_mono_float32(pcm), 44100, 16000))  # (80, 3000)
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from accelkit.errors import ConfigError, InputError
from accelkit.io import read_preprocessor_config

WHISPER_SAMPLING_RATE = 16000
MAX_CHANNELS = 8  # a (samples, channels) array with at most this many channels is one multichannel clip

# Integer PCM formats and the value that maps to 1.0 (uint8 is offset binary, centred on 128).
_PCM_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
_PCM_OFFSET_UINT8 = 128.0


def to_mono_float32(audio: np.ndarray | Sequence[float]) -> np.ndarray:
    """Return `audio` as one channel of float32 samples.

    Accepts float arrays (any float dtype, values as they are), integer PCM (int16 / int32 / int8
    scaled to [-1, 1); uint8 as offset binary around 128) and two-dimensional multichannel audio,
    either (channels, samples) or (samples, channels): the shorter axis is taken as the channel
    axis and the channels are averaged. Empty, non-finite or non-numeric audio raises InputError.

    >>> to_mono_float32(np.array([[0, 16384], [0, -16384]], dtype=np.int16))   # (2, N) stereo
    array([0., 0.], dtype=float32)
    """
    array = np.asarray(audio)
    if array.dtype.kind not in "iuf":
        raise InputError(f"audio: expected float or integer PCM samples, got dtype {array.dtype}")
    if array.ndim not in (1, 2):
        raise InputError(
            f"audio: expected (samples,) or a (channels, samples) / (samples, channels) array, got shape {array.shape}"
        )
    if array.size == 0:
        raise InputError(f"audio: empty audio, shape {array.shape}")

    if array.dtype.kind == "f":
        samples = array.astype(np.float32, copy=False)
        if not np.isfinite(samples).all():
            raise InputError(f"audio: contains NaN or Inf (shape {array.shape})")
    elif array.dtype == np.uint8:
        samples = ((array.astype(np.float32) - _PCM_OFFSET_UINT8) / _PCM_OFFSET_UINT8).astype(np.float32)
    elif array.dtype in _PCM_SCALE:
        samples = (array.astype(np.float64) / _PCM_SCALE[array.dtype]).astype(np.float32)
    else:
        raise InputError(f"audio: integer PCM must be int16, int32, int8 or uint8, got {array.dtype}")

    if samples.ndim == 2:
        channel_axis = 0 if samples.shape[0] <= samples.shape[1] else 1
        samples = samples.mean(axis=channel_axis, dtype=np.float32)
    return np.ascontiguousarray(samples)


MIN_RATE = 1000  # Hz: below this it is not audio a speech model hears (a sample count passed by mistake?)
MAX_RATE = 768000


def _check_rate(name: str, rate: float, audio: bool = False) -> int:
    """A positive integer rate in Hz; ``audio``: also within MIN_RATE..MAX_RATE (rates resampled for a model)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: expected a positive integer rate in Hz, got {rate!r}")
    if not rate > 0 or rate != int(rate):
        raise InputError(f"{name}: expected a positive integer rate in Hz, got {rate!r}")
    if audio and not MIN_RATE <= rate <= MAX_RATE:
        # 1 Hz would make 16,000 Whisper samples of each input sample (gigabytes for a second of audio)
        raise InputError(
            f"{name}: expected an audio rate between {MIN_RATE} and {MAX_RATE} Hz (16000 for Whisper, "
            f"44100 or 48000 for most files), got {rate!r}"
        )
    return int(rate)


def _mono(audio: np.ndarray | Sequence[float], what: str) -> np.ndarray:
    """Validate one-channel audio (raises InputError for a 2-D array: see to_mono_float32)."""
    shape = np.shape(audio)
    if len(shape) != 1:
        raise InputError(
            f"{what}: expected one channel of samples, shape (samples,), got shape {shape}; "
            "use to_mono_float32() to mix down multichannel audio"
        )
    return to_mono_float32(audio)


# --- resampling -------------------------------------------------------------------------------
# A band-limited (windowed-sinc) polyphase resampler. For orig_sr -> target_sr with
# target/orig = up/down in lowest terms, output sample n sits at input time t = n*down/up and is
#     y[n] = sum_k x[k] * h(t - k),   h(d) = fc * sinc(fc * d) * kaiser(d / half_width)
# with fc = ROLLOFF * min(1, up/down) the cutoff as a fraction of the input Nyquist frequency (so
# downsampling removes what would alias) and half_width = ZERO_CROSSINGS / fc input samples.
# The fractional part of t takes `up` values, the phases; each phase is one matrix-vector
# product of a strided view of the signal with that phase's taps. With 64 zero crossings and
# Kaiser beta 10 the stopband is below -100 dB from the lower Nyquist frequency on, and the
# passband is flat (error < 1e-5) up to about 0.88 of it (7 kHz when the output is 16 kHz).
# For odd rate pairs with more than MAX_EXACT_PHASES phases (44101 -> 16000), taps come from
# a table of TABLE_PHASES phases, linearly interpolated (tap error < 1e-8).
# Samples outside the signal count as zero, so the first and last half_width input samples
# see a partial filter. The output has ceil(len * target / orig) samples.
ZERO_CROSSINGS = 64
ROLLOFF = 0.945
KAISER_BETA = 10.0
MAX_EXACT_PHASES = 1024
TABLE_PHASES = 2048


def _taps(frac: np.ndarray, cutoff: float, half_width: float, n_side: int) -> np.ndarray:
    """Filter taps (..., 2 n_side + 1) for input samples floor(t) - n_side .. floor(t) + n_side."""
    offsets = np.asarray(frac, dtype=np.float64)[..., None] - np.arange(-n_side, n_side + 1)  # t - k
    u = np.clip(1.0 - (offsets / half_width) ** 2, 0.0, None)
    window = np.where(
        np.abs(offsets) <= half_width, np.i0(KAISER_BETA * np.sqrt(u)) / np.i0(KAISER_BETA), 0.0
    )
    return cutoff * np.sinc(cutoff * offsets) * window


def resample(audio: np.ndarray | Sequence[float], orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample one channel of audio from `orig_sr` to `target_sr` Hz (band-limited, pure numpy).

    A Kaiser-windowed sinc polyphase filter (64 zero crossings, ~100 dB stopband; see the
    comment above). Returns float32 of length ceil(len(audio) * target_sr / orig_sr).

    >>> resample(np.zeros(44100, np.float32), 44100, 16000).shape
    (16000,)
    """
    orig_sr = _check_rate("resample: orig_sr", orig_sr, audio=True)
    target_sr = _check_rate("resample: target_sr", target_sr, audio=True)
    samples = _mono(audio, "resample")
    if orig_sr == target_sr:
        return samples.copy()

    g = math.gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    cutoff = ROLLOFF * min(1.0, up / down)
    half_width = ZERO_CROSSINGS / cutoff
    n_side = math.ceil(half_width)
    n_out = -(-samples.size * up // down)

    padded = np.pad(samples.astype(np.float64), (n_side, n_side))
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * n_side + 1)  # row b: x[b - n_side ...]
    out = np.empty(n_out, dtype=np.float64)
    if up <= MAX_EXACT_PHASES:
        taps = _taps(np.arange(up) / up, cutoff, half_width, n_side)  # (up, 2 n_side + 1)
        down_inverse = pow(down, -1, up) if up > 1 else 0
        for phase in range(up):
            first = (phase * down_inverse) % up  # first output n with n * down % up == phase
            if first >= n_out:
                continue
            count = len(range(first, n_out, up))
            base = (first * down) // up  # floor(t) of that output; later ones step by `down`
            out[first::up] = windows[base : base + (count - 1) * down + 1 : down] @ taps[phase]
        return out.astype(np.float32)

    table = _taps(np.arange(TABLE_PHASES + 1) / TABLE_PHASES, cutoff, half_width, n_side)
    for start in range(0, n_out, 4096):
        n = np.arange(start, min(start + 4096, n_out), dtype=np.int64)
        base, phase = np.divmod(n * down, up)
        position = phase * (TABLE_PHASES / up)
        lower = np.minimum(position.astype(np.int64), TABLE_PHASES - 1)
        weight = (position - lower)[:, None]
        rows = windows[base]
        taps = (1.0 - weight) * table[lower] + weight * table[lower + 1]
        out[start : start + n.size] = np.einsum("ij,ij->i", rows, taps)
    return out.astype(np.float32)


def chunk_audio(
    audio: np.ndarray | Sequence[float], sampling_rate: int, chunk_length: float = 30
) -> list[np.ndarray]:
    """Split one channel of audio into consecutive chunks of `chunk_length` seconds (the last may be shorter).

    Whisper sees 30 s at a time; feed each chunk to `log_mel_spectrogram` for longer recordings.

    >>> [c.size for c in chunk_audio(np.zeros(70 * 16000), 16000)]
    [480000, 480000, 160000]
    """
    sampling_rate = _check_rate("chunk_audio: sampling_rate", sampling_rate)
    if not chunk_length > 0:
        raise InputError(f"chunk_audio: chunk_length must be > 0 seconds, got {chunk_length!r}")
    samples = _mono(audio, "chunk_audio")
    step = int(round(chunk_length * sampling_rate))
    if step < 1:
        raise InputError(
            f"chunk_audio: chunk_length {chunk_length} s at {sampling_rate} Hz is less than one sample"
        )
    return [samples[start : start + step] for start in range(0, samples.size, step)]


# --- log-mel features -------------------------------------------------------------------------
def _hertz_to_mel_slaney(freq: np.ndarray) -> np.ndarray:
    # linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4)
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    mels[log_region] = 15.0 + np.log(freq[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hertz_slaney(mels: np.ndarray) -> np.ndarray:
    freq = 200.0 * mels / 3.0
    log_region = mels >= 15.0
    freq[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[log_region] - 15.0))
    return freq


@functools.lru_cache(maxsize=8)
def mel_filters(n_mels: int, n_fft: int = 400, sampling_rate: int = WHISPER_SAMPLING_RATE) -> np.ndarray:
    """Slaney-style mel filter bank, (1 + n_fft // 2, n_mels) float64, 0..8000 Hz as Whisper uses.

    Same construction as `transformers.audio_utils.mel_filter_bank(norm="slaney",
    mel_scale="slaney")` (and librosa's default). The returned array is read-only (it is cached).
    """
    n_freqs = 1 + n_fft // 2
    mel_edges = np.linspace(
        _hertz_to_mel_slaney(np.array([0.0]))[0], _hertz_to_mel_slaney(np.array([8000.0]))[0], n_mels + 2
    )
    filter_freqs = _mel_to_hertz_slaney(mel_edges)  # (n_mels + 2,) left edge, centre, right edge
    fft_freqs = np.linspace(0, sampling_rate // 2, n_freqs)

    filter_diff = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]  # (n_freqs, n_mels + 2)
    down_slopes = -slopes[:, :-2] / filter_diff[:-1]
    up_slopes = slopes[:, 2:] / filter_diff[1:]
    filters = np.maximum(np.zeros(1), np.minimum(down_slopes, up_slopes))
    filters *= 2.0 / (filter_freqs[2 : n_mels + 2] - filter_freqs[:n_mels])  # slaney: equal area
    filters.setflags(write=False)
    return filters


def log_mel_spectrogram(
    audio: np.ndarray | Sequence[float],
    n_mels: int = 80,
    sampling_rate: int = WHISPER_SAMPLING_RATE,
    n_fft: int = 400,
    hop_length: int = 160,
    chunk_length: int = 30,
    padding: bool = True,
) -> np.ndarray:
    """Whisper's log-mel features of one channel of audio sampled at `sampling_rate`.

    Returns float32 (n_mels, chunk_length * sampling_rate // hop_length) -- (80, 3000) for the
    defaults -- with the audio zero-padded or cut to `chunk_length` seconds (use `chunk_audio`
    first for longer audio). With padding=False the audio is used as it is and the result has
    len(audio) // hop_length frames. Matches `transformers.WhisperFeatureExtractor` (numpy path).

    >>> log_mel_spectrogram(np.zeros(16000, np.float32)).shape
    (80, 3000)
    """
    sampling_rate = _check_rate("log_mel_spectrogram: sampling_rate", sampling_rate)
    for name, value in (("n_mels", n_mels), ("n_fft", n_fft), ("hop_length", hop_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise InputError(f"log_mel_spectrogram: {name} must be a positive integer, got {value!r}")
    samples = _mono(audio, "log_mel_spectrogram")

    if padding:
        n_samples = int(chunk_length * sampling_rate)
        if n_samples < hop_length:
            raise InputError(f"log_mel_spectrogram: chunk_length {chunk_length} s is shorter than one hop")
        samples = samples[:n_samples]
        samples = np.pad(samples, (0, n_samples - samples.size))
    elif samples.size < hop_length:
        raise InputError(
            f"log_mel_spectrogram: padding=False needs at least hop_length={hop_length} samples, got {samples.size}"
        )

    # centred frames: reflect-pad by n_fft // 2, as torch.stft(center=True) and transformers do
    padded = np.pad(samples, n_fft // 2, mode="reflect").astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]  # (T + 1, n_fft)
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    spectrum = np.fft.rfft(frames * window, axis=-1).astype(np.complex64)  # transformers keeps complex64
    power = np.abs(spectrum, dtype=np.float64) ** 2  # (T + 1, 1 + n_fft // 2)

    mel = np.maximum(1e-10, mel_filters(n_mels, n_fft, sampling_rate).T @ power.T)  # (n_mels, T + 1)
    log_spec = np.log10(mel).astype(np.float32)[:, :-1]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


class FeatureExtractor:
    """Whisper's feature extractor: audio (one clip or a batch) -> (B, n_mels, frames) float32.

    Reads the `preprocessor_config.json` of a Whisper checkpoint (feature_size, sampling_rate,
    n_fft, hop_length, chunk_length) and computes `log_mel_spectrogram` per clip. Unlike
    transformers, audio at another `sampling_rate` is resampled (`resample`) rather than refused.
    A 2-D array is a batch of clips, one per row, except a (samples, channels) array with 1-8 channels
    (more samples than channels), which is one multichannel clip: it is mixed to mono with a warning.
    Clips longer than chunk_length are cut, as in transformers; use `chunk_audio` to keep all.

    >>> fe = FeatureExtractor()  # or FeatureExtractor.from_dir("tiny-random-whisper/")
    >>> fe([np.zeros(16000), np.zeros(8000)]).shape
    (2, 80, 3000)
    """

    def __init__(
        self,
        feature_size: int = 80,
        sampling_rate: int = WHISPER_SAMPLING_RATE,
        n_fft: int = 400,
        hop_length: int = 160,
        chunk_length: int = 30,
    ):
        self.feature_size = int(feature_size)
        self.sampling_rate = int(sampling_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.chunk_length = int(chunk_length)

    @property
    def n_samples(self) -> int:
        return self.chunk_length * self.sampling_rate

    @property
    def nb_max_frames(self) -> int:
        return self.n_samples // self.hop_length

    @classmethod
    def from_config(cls, config: dict) -> FeatureExtractor:
        keys = ("feature_size", "sampling_rate", "n_fft", "hop_length", "chunk_length")
        kwargs = {key: config[key] for key in keys if key in config}
        for key, value in kwargs.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"preprocessor config: {key} must be a positive integer, got {value!r}")
        return cls(**kwargs)

    @classmethod
    def from_dir(cls, path: str | Path) -> FeatureExtractor:
        """Read `path/preprocessor_config.json` (or that file itself)."""
        return cls.from_config(read_preprocessor_config(path, "feature extractor"))

    def __call__(
        self,
        audio: np.ndarray | Sequence[float] | Sequence[np.ndarray],
        sampling_rate: int = WHISPER_SAMPLING_RATE,
    ) -> np.ndarray:
        sampling_rate = _check_rate("feature extractor: sampling_rate", sampling_rate, audio=True)
        if isinstance(audio, np.ndarray):
            if audio.ndim == 2 and audio.shape[1] <= MAX_CHANNELS and audio.shape[0] > audio.shape[1]:
                warnings.warn(
                    f"feature extractor: audio of shape {audio.shape} read as one clip of {audio.shape[1]} "
                    "channel(s) (samples, channels) and mixed to mono; pass a list of 1-D clips for a batch",
                    stacklevel=2,
                )
                audio = to_mono_float32(audio)
            clips = list(audio) if audio.ndim == 2 else [audio]
        elif isinstance(audio, (list, tuple)) and audio and isinstance(audio[0], (np.ndarray, list, tuple)):
            clips = list(audio)
        else:
            clips = [audio]
        features = []
        for clip in clips:
            samples = _mono(clip, "feature extractor")
            if sampling_rate != self.sampling_rate:
                samples = resample(samples, sampling_rate, self.sampling_rate)
            features.append(
                log_mel_spectrogram(
                    samples,
                    n_mels=self.feature_size,
                    sampling_rate=self.sampling_rate,
                    n_fft=self.n_fft,
                    hop_length=self.hop_length,
                    chunk_length=self.chunk_length,
                )
            )
        return np.stack(features)

    def __repr__(self) -> str:
        return (
            f"FeatureExtractor(feature_size={self.feature_size}, sampling_rate={self.sampling_rate}, "
            f"n_fft={self.n_fft}, hop_length={self.hop_length}, chunk_length={self.chunk_length})"
        )
