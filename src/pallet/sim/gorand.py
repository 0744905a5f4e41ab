"""Go's ``math/rand`` generator (Go 1.19), so the FGD protocol's arrival sequences are
the paper's seed for seed; pure (numpy arithmetic only).

The source is an additive lagged Fibonacci generator (Mitchell and Reeds): 607 words,
``x[n] = x[n-607] + x[n-273]`` mod 2**64, read through a feed and a tap index that
walk down the register. ``Seed`` fills the register from a Lehmer generator
(``x <- 48271 x mod 2**31-1``) XOR a fixed "cooked" table, which is the register of
the same generator, seeded with 1 by a slightly different filler, after 7.8e12 steps.
Instead of shipping that table we compute it: the recurrence is linear, so 7.8e12
steps are ``x**N`` modulo the characteristic polynomial ``x**607 - x**334 - 1`` (43
squarings of 607-term polynomials, well under a second, done once per process).

The derived methods follow Go's ``rand.go``: ``Int31n`` rejects above the largest
multiple of n, ``Shuffle`` uses Lemire's multiply-shift bound on ``Uint32``, ``Perm``
inserts each i at a random earlier place.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

__all__ = ["GoRand"]

_LEN = 607
_TAP = 273
_M31 = (1 << 31) - 1
_MASK63 = (1 << 63) - 1
_MASK64 = (1 << 64) - 1
_COOKED_STEPS = 7_800_000_000_000

U64Array = npt.NDArray[np.uint64]


def _lehmer(x: int) -> int:
    """One step of ``x <- 48271 x mod (2**31 - 1)`` (Schrage's form, as Go writes it)."""
    hi, lo = divmod(x, 44488)
    x = 48271 * lo - 3399 * hi
    return x + _M31 if x < 0 else x


def _fill(seed: int, shifts: tuple[int, int]) -> list[int]:
    """The register filled from the Lehmer generator: 20 steps thrown away, then three
    steps per word, shifted by ``shifts`` and XORed."""
    seed %= _M31
    if seed < 0:
        seed += _M31
    if seed == 0:
        seed = 89482311
    x = seed
    words = []
    for i in range(-20, _LEN):
        x = _lehmer(x)
        if i >= 0:
            u = x << shifts[0]
            x = _lehmer(x)
            u ^= x << shifts[1]
            x = _lehmer(x)
            words.append((u ^ x) & _MASK64)
    return words


def _mulmod(a: U64Array, b: U64Array) -> U64Array:
    """``a * b`` modulo ``x**607 - x**334 - 1``, coefficients mod 2**64 (numpy's
    unsigned arithmetic wraps)."""
    with np.errstate(over="ignore"):
        c = np.convolve(a, b)
        hi = len(c) - 1
        while hi >= _LEN:  # x**k = x**(k-273) + x**(k-607), a block of 273 at a time
            lo = max(_LEN, hi - _TAP + 1)
            v = c[lo : hi + 1].copy()
            c[lo - _TAP : hi - _TAP + 1] += v
            c[lo - _LEN : hi - _LEN + 1] += v
            hi = lo - 1
    return c[:_LEN].copy()


def _times_x(r: U64Array) -> U64Array:
    out = np.zeros(_LEN, dtype=np.uint64)
    out[1:] = r[:-1]
    top = r[-1]
    with np.errstate(over="ignore"):
        out[0] += top
        out[_LEN - _TAP] += top
    return out


def _register_after(start_words: list[int], steps: int) -> list[int]:
    """The register after ``steps`` steps from ``start_words`` (feed at 334, tap at 0).

    Step k (from 1) writes index ``(334 - k) mod 607``; so the word at index i starts
    as term ``334 - i`` of the sequence (less 607 when that is positive), the sequence
    obeys the recurrence, and after ``steps`` steps index i holds its latest term
    ``k <= steps`` with ``k = 334 - i`` mod 607. Terms are counted from -606, so
    ``x**n`` modulo the characteristic polynomial gives term ``n - 606`` as a
    combination of the first 607."""
    first = np.zeros(_LEN, dtype=np.uint64)  # terms -606..0
    for i, word in enumerate(start_words):
        k = _LEN - _TAP - i - (_LEN if i < _LEN - _TAP else 0)
        first[k + _LEN - 1] = word
    power = np.zeros(_LEN, dtype=np.uint64)
    power[0] = 1
    base = np.zeros(_LEN, dtype=np.uint64)
    base[1] = 1
    n = steps
    while n:
        if n & 1:
            power = _mulmod(power, base)
        n >>= 1
        if n:
            base = _mulmod(base, base)
    terms = {}
    with np.errstate(over="ignore"):
        for j in range(_LEN):  # terms steps-606 .. steps
            terms[steps - (_LEN - 1) + j] = int(np.sum(power * first, dtype=np.uint64))
            power = _times_x(power)
    return [terms[steps - ((steps - (_LEN - _TAP - i)) % _LEN)] for i in range(_LEN)]


@cache
def _cooked() -> tuple[int, ...]:
    """Go's cooked table: the register filled from seed 1 (shifts 20 and 10) after
    7.8e12 steps."""
    return tuple(_register_after(_fill(1, (20, 10)), _COOKED_STEPS))


class GoRand:
    """``rand.New(rand.NewSource(seed))``: the same numbers, call for call."""

    def __init__(self, seed: int) -> None:
        cooked = _cooked()
        self._vec = [
            (word ^ c) & _MASK64 for word, c in zip(_fill(seed, (40, 20)), cooked, strict=True)
        ]
        self._tap = 0
        self._feed = _LEN - _TAP

    def uint64(self) -> int:
        self._tap = self._tap - 1 if self._tap else _LEN - 1
        self._feed = self._feed - 1 if self._feed else _LEN - 1
        x = (self._vec[self._feed] + self._vec[self._tap]) & _MASK64
        self._vec[self._feed] = x
        return x

    def int63(self) -> int:
        return self.uint64() & _MASK63

    def uint32(self) -> int:
        return self.int63() >> 31

    def int31(self) -> int:
        return self.int63() >> 32

    def int63n(self, n: int) -> int:
        if n <= 0:
            raise ValueError("n must be positive")
        if n & (n - 1) == 0:
            return self.int63() & (n - 1)
        top = (1 << 63) - 1 - (1 << 63) % n
        v = self.int63()
        while v > top:
            v = self.int63()
        return v % n

    def int31n(self, n: int) -> int:
        if not 0 < n <= _M31:
            raise ValueError("n must be in 1..2**31-1")
        if n & (n - 1) == 0:
            return self.int31() & (n - 1)
        top = _M31 - (1 << 31) % n
        v = self.int31()
        while v > top:
            v = self.int31()
        return v % n

    def intn(self, n: int) -> int:
        return self.int31n(n) if n <= _M31 else self.int63n(n)

    def float64(self) -> float:
        while True:
            f = self.int63() / (1 << 63)
            if f < 1.0:
                return f

    def _bounded32(self, n: int) -> int:
        """Go's unexported ``int31n``: Lemire's multiply-shift, used by ``Shuffle``."""
        prod = self.uint32() * n
        low = prod & 0xFFFFFFFF
        if low < n:
            thresh = ((1 << 32) - n) % n
            while low < thresh:
                prod = self.uint32() * n
                low = prod & 0xFFFFFFFF
        return prod >> 32

    def shuffle_order(self, n: int) -> list[int]:
        """``Shuffle(n, swap)`` applied to ``0..n-1``: the resulting order."""
        order = list(range(n))
        i = n - 1
        while i > _M31 - 1:  # pragma: no cover - lists of 2**31 items
            j = self.int63n(i + 1)
            order[i], order[j] = order[j], order[i]
            i -= 1
        while i > 0:
            j = self._bounded32(i + 1)
            order[i], order[j] = order[j], order[i]
            i -= 1
        return order

    def perm(self, n: int) -> list[int]:
        m = [0] * n
        for i in range(n):
            j = self.intn(i + 1)
            m[i] = m[j]
            m[j] = i
        return m
