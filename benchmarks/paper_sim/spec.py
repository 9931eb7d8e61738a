"""What the simulated paper run must produce: Tables 2, 3 and 4, optionally scaled down.

The paper's tables are in the registry (``registry.paper_sizes``). A simulation with ``scale``
``s`` divides every count by ``s`` (rounded, at least 1), so a small run in a test has the
same shape as the full one. From the tables follow the synthetic inputs:

* Japanese originals per sub-dataset = Table 2's Japanese row (the paper kept them complete);
* translation samples (``translate.items.*.sample``) = 10,000 for SCPOS-AdjN/Adj/N and TCONER
  ja/zh; the other sub-datasets are translated whole;
* rows the simulated model must lose per (language, sub-dataset) = translated - Table 2;
* Pile-NER texts = Table 2's English TCONER + 1 (one text fails labelling, as 45,889 -> 45,888).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mmm import registry

MRE = ("SCNM", "SCPOS-RW", "SCPOS-AdjN", "SCPOS-Adj", "SCPOS-N", "TCREE")
SAMPLED = ("SCPOS-AdjN", "SCPOS-Adj", "SCPOS-N")  # "10,000 samples from each of three sub-datasets within SCPOS"
PAPER_SAMPLE = 10_000
TARGETS = ("en", "zh")
TCONER_TARGETS = ("ja", "zh")
LOST_IN_LABELLING = 1  # Pile-NER-type 45,889 texts -> 45,888 English TCONER rows

Table = dict[str, dict[str, int]]


@dataclass(frozen=True)
class SimSpec:
    """The counts of one simulation (``scale`` 1 = the paper's sizes)."""

    scale: int = 1

    def _scaled(self, n: int) -> int:
        return n if self.scale == 1 else max(1, round(n / self.scale))

    def _table(self, name: str) -> Table:
        return {lang: {ds: self._scaled(n) for ds, n in cells.items()}
                for lang, cells in registry.paper_sizes(name).items()}  # type: ignore[arg-type]

    @cached_property
    def released(self) -> Table:
        """Table 2: rows of the released dataset per language and sub-dataset."""
        return self._table("translated")

    @cached_property
    def train(self) -> Table:
        """Table 3 (the split's ``train_size``)."""
        return self._table("train")

    @property
    def test(self) -> Table:
        """Table 4: every released row not in train (``split.max_train_fraction: 1``, ``leakage: keep``)."""
        return {lang: {ds: n - self.train[lang][ds] for ds, n in cells.items()} for lang, cells in self.released.items()}

    @property
    def sample_size(self) -> int:
        return self._scaled(PAPER_SAMPLE)

    def originals(self, dataset: str) -> int:
        """Japanese source rows of an MRE sub-dataset (train + test repositories together)."""
        return self.released["ja"][dataset]

    def translated(self, dataset: str) -> int:
        """Rows sent for translation into en/zh (the sample, or the whole sub-dataset)."""
        return self.sample_size if dataset in SAMPLED else self.originals(dataset)

    @property
    def tconer_texts(self) -> int:
        return self.released["en"]["TCONER"] + LOST_IN_LABELLING

    def lost(self, lang: str, dataset: str) -> int:
        """Rows the simulated translator must spoil in one cell so that Table 2 comes out."""
        sent = self.sample_size if dataset == "TCONER" else self.translated(dataset)
        return sent - self.released[lang][dataset]

    def train_size_param(self) -> str | Table:
        """``split.train_size``: the paper's own keyword at full scale, the scaled table otherwise."""
        return "paper" if self.scale == 1 else self.train

    def check(self) -> None:
        """Refuse a scale at which the tables are no longer consistent (a cell losing rows it never had)."""
        problems = [f"{lang}/{ds}: {self.lost(lang, ds)} rows to lose" for lang, ds in translated_cells()
                    if self.lost(lang, ds) < 0]
        problems += [f"{lang}/{ds}: test {n} < 0" for lang, cells in self.test.items() for ds, n in cells.items() if n < 0]
        if problems:
            raise ValueError(f"scale {self.scale} gives inconsistent tables: " + "; ".join(problems))


def translated_cells() -> list[tuple[str, str]]:
    """The (language, sub-dataset) cells made by translation."""
    return [(lang, ds) for lang in TARGETS for ds in MRE] + [(lang, "TCONER") for lang in TCONER_TARGETS]


def sample_params(spec: SimSpec) -> dict[str, dict]:
    """``translate.items.<item>.sample`` for the simulation (the paper profile's values, scaled)."""
    size = spec.sample_size
    return {"en": {ds: size for ds in SAMPLED}, "zh": {ds: size for ds in SAMPLED},
            "tconer_ja": {"TCONER": size}, "tconer_zh": {"TCONER": size}}
