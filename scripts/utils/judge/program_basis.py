"""What a program's totals count, in words for the console, the report and the plots.

`basis` in program_growth.csv is one of these for a whole series (utils.reduce.pss_totals
never mixes two inside one). docs/memory-numbers.md says why each is used where it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from utils.reduce.pss_totals import BASIS_CARRIED, BASIS_PSS

PSS_BASES = (BASIS_PSS, BASIS_CARRIED)
BASIS_WORDS = {
    BASIS_PSS: "PSS: shared pages counted once",
    BASIS_CARRIED: "PSS: shared pages counted once, some shares carried from another snapshot",
    "anon+swap": "anon + swap: pages shared by forked processes counted in each",
    "RSS": "RSS: shared pages counted in each process",
    "mixed": "anon + swap where the dumps have it, else RSS",
}


def basis_words(basis: str) -> str:
    """What a total of this basis counts."""
    return BASIS_WORDS.get(basis, basis)


def any_pss(bases: Sequence[str]) -> bool:
    """Whether any total is counted in PSS (the outputs then name each total's basis; they
    are as before otherwise)."""
    return any(basis in PSS_BASES for basis in bases)


def basis_legend(bases: Sequence[str]) -> str:
    """One line naming each basis the totals use, in the order of BASIS_WORDS."""
    used = [name for name in BASIS_WORDS if name in set(bases)]
    return "Totals by basis: " + "; ".join(f"{name} = {BASIS_WORDS[name]}" for name in used)
