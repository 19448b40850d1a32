"""Builders of the torch + transformers references the tests compare accelkit with: seeded parameters, a
byte-level BPE tokenizer with Whisper's special tokens, and a Whisper config with its generation config.

Imported directly (``import torch_reference``) by tests/fixtures/make_fixtures.py (the bundled
checkpoints and their references) and by the live tests, which build fresh checkpoints the same way.
Needs torch, transformers and tokenizers: import it after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers


def scramble_parameters(
    model: torch.nn.Module, seed: int, embedding_std: float = 0.5, boost: dict[str, float] | None = None
) -> None:
    """Overwrite every parameter with seeded noise of a scale that keeps activations O(1).

    Random init in transformers zeroes biases and sets LayerNorm to (1, 0), which would hide a swapped
    weight/bias or a dropped bias in a port. Here: LayerNorm weight 1 + 0.2 n, every bias 0.1 n,
    linear/conv weights n * 1.2 / sqrt(fan_in), embeddings (token, position, type, CLS) n * embedding_std.
    `boost` maps a regular expression to a factor for the weights and embeddings whose name it matches.
    Parameters are visited by sorted name; tied parameters once.
    """
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
            owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            leaf = name.rsplit(".", 1)[-1]
            shape = tuple(param.shape)
            noise = rng.standard_normal(shape)
            factor = float(np.prod([f for pattern, f in (boost or {}).items() if re.search(pattern, name)]))
            if isinstance(owner, torch.nn.LayerNorm):
                value = 1.0 + 0.2 * noise if leaf == "weight" else 0.1 * noise
            elif leaf == "bias" or (len(shape) == 1 and not isinstance(owner, torch.nn.Embedding)):
                value = 0.1 * noise
            elif isinstance(owner, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)):
                fan_in = int(np.prod(shape[1:]))
                value = noise * factor * 1.2 / np.sqrt(fan_in)
            else:  # nn.Embedding tables and bare tensors such as ViT's cls_token / position_embeddings
                value = noise * factor * embedding_std
            param.copy_(torch.from_numpy(value.astype(np.float32)))


def fresh_checkpoint(model: torch.nn.Module, seed: int, directory) -> torch.nn.Module:
    """Scramble ``model``'s parameters (seeded), save it to ``directory`` with ``save_pretrained`` and return
    transformers' float64 model of that checkpoint (eager attention): the reference to compare with."""
    scramble_parameters(model, seed)
    model.save_pretrained(directory, safe_serialization=True)
    return type(model).from_pretrained(directory, attn_implementation="eager").double().eval()


# --------------------------------------------------------------------------- Whisper


def whisper_specials(languages: list[str]) -> list[str]:
    """Whisper's special tokens in Whisper's order. Language tokens follow <|startoftranscript|> in the order
    of transformers' LANGUAGES table (the tokenizer computes a language id as sot + 1 + index)."""
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{code}|>" for code in languages],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]


def byte_level_bpe(sentences: list[str], vocab_size: int, specials: list[str]) -> Tokenizer:
    """A byte-level BPE (GPT-2's, which Whisper uses) of ``vocab_size`` tokens trained on ``sentences``,
    then ``specials`` added after them as special tokens."""
    tokenizer = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tokenizer.train_from_iterator(sentences, trainer)
    assert tokenizer.get_vocab_size() == vocab_size
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tokenizer


def whisper_configs(
    tokenizer: Tokenizer, languages: list[str], suppress_symbols: str, generation: dict | None = None, **dims
) -> tuple[transformers.WhisperConfig, transformers.GenerationConfig]:
    """A WhisperConfig (``dims``: d_model, layers, ...) and its GenerationConfig for a tokenizer made by
    ``byte_level_bpe(..., whisper_specials(languages))``: <|endoftext|> is pad, bos and eos; the
    ``suppress_symbols`` characters and the task and context tokens are suppressed, a leading space and
    <|endoftext|> at the first step. ``generation`` adds to (or overrides) the generation config."""
    ids = {t: tokenizer.token_to_id(t) for t in whisper_specials(languages)}
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    tasks = ("<|translate|>", "<|transcribe|>", "<|startoftranscript|>")
    context = ("<|startofprev|>", "<|startoflm|>", "<|nocaptions|>")
    suppress = sorted(
        [tokenizer.token_to_id(s) for s in suppress_symbols] + [ids[t] for t in tasks + context]
    )
    begin_suppress = [tokenizer.token_to_id("Ġ"), eot]
    config = transformers.WhisperConfig(
        vocab_size=tokenizer.get_vocab_size(),
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress,
        **dims,
    )
    settings = dict(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=config.max_target_positions,
        suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress,
        forced_decoder_ids=None,
        is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids[f"<|{code}|>"] for code in languages},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        return_timestamps=False,
    )
    return config, transformers.GenerationConfig(**(settings | (generation or {})))


def whisper_tokenizer(tokenizer: Tokenizer, **kwargs) -> transformers.WhisperTokenizer:
    """transformers' WhisperTokenizer over ``tokenizer``, <|endoftext|> in every role (as Whisper has it)."""
    eot = "<|endoftext|>"
    return transformers.WhisperTokenizer(
        tokenizer_object=tokenizer, unk_token=eot, bos_token=eot, eos_token=eot, pad_token=eot, **kwargs
    )
