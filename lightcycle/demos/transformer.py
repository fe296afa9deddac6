"""Lightning's transformer language-model demo (``lightning.pytorch.demos.transformer``), on lightcycle.

Same names, arguments and defaults as Lightning 2.6's module (adapted there from PyTorch's
``word_language_model`` example). One difference: lightcycle never downloads. Where Lightning's
:class:`WikiText2` fetches ``wikitext-2.txt``, lightcycle reads that file when it is already in
``data_dir`` and otherwise builds a synthetic corpus of the same shape in memory (see
:func:`synthetic_corpus`), so the demo runs offline.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader, Dataset

from lightcycle.core.module import LightningModule

__all__ = ["Dictionary", "LightningTransformer", "PositionalEncoding", "Transformer", "WikiText2", "tokenize"]

#: Words in the synthetic corpus's vocabulary and tokens in it (about a 20th of WikiText-2's 2M).
SYNTHETIC_VOCAB = 1000
SYNTHETIC_TOKENS = 100_000


class Transformer(nn.Module):
    """An encoder-decoder ``nn.Transformer`` over token embeddings with a sinusoidal position encoding.

    Args:
        vocab_size: tokens in the vocabulary (WikiText-2's 33278 by default).
        ninp: embedding width.
        nhead: attention heads.
        nhid: feed-forward width.
        nlayers: encoder and decoder layers (each).
        dropout: dropout probability.
    """

    def __init__(
        self,
        vocab_size: int = 33278,
        ninp: int = 200,
        nhead: int = 2,
        nhid: int = 200,
        nlayers: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        self.embedding = nn.Embedding(vocab_size, ninp)
        self.transformer = nn.Transformer(
            d_model=ninp,
            nhead=nhead,
            num_encoder_layers=nlayers,
            num_decoder_layers=nlayers,
            dim_feedforward=nhid,
            dropout=dropout,
            batch_first=True,
        )
        self.decoder = nn.Linear(ninp, vocab_size)
        self.ninp = ninp
        self.vocab_size = vocab_size
        self.src_mask: Tensor | None = None

    def generate_square_subsequent_mask(self, size: int) -> Tensor:
        """A ``size``×``size`` mask with ``-inf`` above the diagonal, so no position sees later tokens."""
        mask = torch.triu(torch.ones(size, size), diagonal=1)
        return mask.float().masked_fill(mask == 1, float("-inf")).masked_fill(mask == 0, 0.0)

    def forward(self, inputs: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        _, t = inputs.shape
        if self.src_mask is None or self.src_mask.size(0) != t:
            self.src_mask = self.generate_square_subsequent_mask(t).to(inputs.device)
        if mask is None:
            mask = self.generate_square_subsequent_mask(t).to(inputs.device)
        src = self.pos_encoder(self.embedding(inputs) * math.sqrt(self.ninp))
        tgt = self.pos_encoder(self.embedding(target) * math.sqrt(self.ninp))
        output = self.decoder(self.transformer(src, tgt, tgt_mask=mask))
        return F.log_softmax(output, dim=-1).view(-1, self.vocab_size)


class PositionalEncoding(nn.Module):
    """Adds Lightning's (sliced) sinusoidal position encoding, then dropout.

    Args:
        dim: embedding width.
        dropout: dropout probability.
        max_len: longest sequence encoded.
    """

    def __init__(self, dim: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        self.dim = dim
        self.max_len = max_len
        # Not a buffer, as in Lightning: it is built lazily on the input's device and never checkpointed.
        self.pe: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.pe is None:
            self.pe = self._init_pos_encoding(device=x.device)
        # Lightning adds the encoding of position x.size(1) to every position; kept for identical numbers.
        return self.dropout(x + self.pe[:, x.size(1)])  # type: ignore[no-any-return]

    def _init_pos_encoding(self, device: torch.device) -> Tensor:
        pe = torch.zeros(self.max_len, self.dim, device=device)
        position = torch.arange(0, self.max_len, dtype=torch.float, device=device).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, self.dim, 2, device=device).float() * (-math.log(10000.0) / self.dim))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        return pe.unsqueeze(0)


class Dictionary:
    """Word ↔ index maps, indices in order of first appearance."""

    def __init__(self) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []

    def add_word(self, word: str) -> int:
        """Add ``word`` if new and return its index."""
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self) -> int:
        return len(self.idx2word)


def _tokenize_lines(lines: list[str]) -> tuple[Tensor, Dictionary]:
    dictionary = Dictionary()
    ids = [dictionary.add_word(word) for line in lines for word in [*line.split(), "<eos>"]]
    return torch.tensor(ids, dtype=torch.int64), dictionary


def tokenize(path: Path) -> tuple[Tensor, Dictionary]:
    """Lightning's ``tokenize``: every word of the file (one ``<eos>`` per line) as indices, and the dictionary.

    Args:
        path: a text file.

    Returns:
        The token indices (int64) and the dictionary.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"tokenize: {path} does not exist.")
    with open(path, encoding="utf8") as f:
        return _tokenize_lines(f.readlines())


def synthetic_corpus(vocab: int = SYNTHETIC_VOCAB, tokens: int = SYNTHETIC_TOKENS, seed: int = 0) -> list[str]:
    """Lines of made-up words whose frequencies follow Zipf's law, like natural text.

    Drawn from a private generator, so building the corpus leaves torch's global random state
    (and so the run's seeding) untouched.

    Args:
        vocab: distinct words.
        tokens: words in all.
        seed: the generator's seed (the same corpus every time by default).

    Returns:
        The corpus as lines of about 20 words.
    """
    gen = torch.Generator().manual_seed(seed)
    weights = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64)
    words = torch.multinomial(weights, tokens, replacement=True, generator=gen).tolist()
    line = 20
    return [" ".join(f"w{w}" for w in words[i : i + line]) for i in range(0, tokens, line)]


class WikiText2(Dataset[tuple[Tensor, Tensor]]):
    """Blocks of ``block_size`` tokens and the same block shifted by one (the next-token targets).

    Reads ``data_dir/wikitext-2.txt`` when it exists. lightcycle does not download it: without
    the file, the corpus is :func:`synthetic_corpus` (``download`` is accepted for Lightning's
    signature and changes nothing).

    Args:
        data_dir: the folder that may hold ``wikitext-2.txt``.
        block_size: tokens per item.
        download: Lightning downloads the file when True; lightcycle never does.
    """

    def __init__(self, data_dir: Path = Path("./data"), block_size: int = 35, download: bool = True) -> None:
        super().__init__()
        self.path = Path(data_dir) / "wikitext-2.txt"
        self.synthetic = not self.path.is_file()
        self.data, self.dictionary = _tokenize_lines(synthetic_corpus()) if self.synthetic else tokenize(self.path)
        self.block_size = block_size

    @property
    def vocab_size(self) -> int:
        """Distinct tokens in the corpus."""
        return len(self.dictionary)

    def __len__(self) -> int:
        return len(self.data) // self.block_size - 1

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        start = index * self.block_size
        end = start + self.block_size
        return self.data[start:end], self.data[start + 1 : end + 1]


class LightningTransformer(LightningModule):
    """:class:`Transformer` trained on :class:`WikiText2` with NLL loss and SGD(lr=0.1).

    Args:
        vocab_size: tokens in the vocabulary; pass ``WikiText2().vocab_size``.
    """

    def __init__(self, vocab_size: int = 33278) -> None:
        super().__init__()
        self.model = Transformer(vocab_size=vocab_size)

    def forward(self, inputs: Tensor, target: Tensor) -> Tensor:
        return self.model(inputs, target)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, target = batch
        return F.nll_loss(self(inputs, target), target.view(-1))

    def configure_optimizers(self) -> Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=0.1)

    def prepare_data(self) -> None:
        WikiText2(download=True)

    def train_dataloader(self) -> DataLoader[tuple[Tensor, Tensor]]:
        return DataLoader(WikiText2())
