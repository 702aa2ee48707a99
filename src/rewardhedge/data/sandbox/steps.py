"""Multi-step tasks whose every step can be checked: the process-reward sandbox.

Two families, each a chain of exact operations on integers:

    chain:  "Start with 17. Add 8, then multiply by 3, then subtract 12. What is the result?"
            (2-4 operations; division only where it is exact)
            steps "17 + 8 = 25." / "25 × 3 = 75." / "75 - 12 = 63." / "Answer: 63"
    units:  "Convert 3 kilometres to metres, then to centimetres. How many centimetres is that?"
            (2-3 conversions with exact integer factors)
            steps "3 kilometres is 3000 metres." / ... / "Answer: 300000 centimetres"

Gold validity is *local*, as in ProcessBench where only the first error
matters: an operation step is valid iff it applies the next required
operation correctly to the value the previous step stated (for the first
operation: the start value). After an error, later steps that compute
correctly from the stated (wrong) value are valid, so the outcome is wrong
while later steps can be right. An answer step is valid iff it restates the
previous step's value and every operation is done. The outcome gold
(:func:`solution_correct`) only asks whether the stated answer is the task's.

The step generator (:class:`StepPolicy`) makes four kinds of error, chosen so
that a frozen sentence encoder can learn some but not all of them:

    slip      the right operation, a result off by a little ("25 × 3 = 76."):
              the text looks exactly like a right step; hard to see without arithmetic
    wrong_op  another operation with the right operand ("25 + 3 = 28." when the
              prompt says multiply by 3; for units the factor of another
              conversion): visible only against the prompt
    skip      jumps ahead: applies the operation after the next one, so one is
              never done (before the last operation: gives the answer early)
    unsure    a visibly unsure guess ("Probably about 80, I am guessing."): visible

Measured with a 3-member MiniLM PRM on the default training step pairs
(``docs/step-sandbox.md``): held-out step-pair accuracy 1.00 on unsure steps,
0.73 on skips, 0.72 on slips (0.80 for wrong answers, which must copy the
previous value; 0.65 for slipped operations) and 0.49 (chance) on wrong
operations.

Pad steps ("The running total is 25.", "Multiplying by 1 leaves 25
unchanged.") restate the running value, are always valid and add nothing:
they are what a policy adds to game a sum of step rewards
(:func:`pad_solution`, the padding attack).

With the default policy (``p_error=0.2``, ``p_pad=0.1``) one rollout solves
41% of the tasks (measured on 2,000 tasks: chains 37%, unit chains 46%; 40%
of the rollouts have every step valid), so step-level search has headroom.

Default sizes (1,500 / 300 / 50 tasks) give 1,463 training step pairs and
1,499 outcome pairs; frozen MiniLM encodes 1,000 step pairs (2,000 texts) in
13 s on a 2-core CPU, and generating all of it takes well under a second.

Every draw is deterministic in ``StepSandboxConfig.seed``: each split and
each use (tasks, step pairs, outcome pairs, solutions) has its own stream
``np.random.default_rng([seed, <use>, <split index>])``, so changing one
split's size leaves the others as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rewardhedge.config import check_seed
from rewardhedge.errors import ConfigError
from rewardhedge.types import PreferencePair, StepSolution, step_prompt

STEP_FAMILIES = ("chain", "units")
ERROR_KINDS = ("slip", "wrong_op", "skip", "unsure")
STEP_SPLITS = ("train", "test", "search")

_SYMBOLS = {"add": "+", "subtract": "-", "multiply": "×", "divide": "÷"}
_PHRASES = {"add": "add {k}", "subtract": "subtract {k}", "multiply": "multiply by {k}"}
_PHRASES["divide"] = "divide by {k}"


def _fmt(x: float) -> str:
    """An integer-valued float as an integer, anything else as ``%g``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Op:
    """One operation of a task: arithmetic on the running value, or a unit conversion."""

    name: str
    """``add``, ``subtract``, ``multiply``, ``divide`` or ``convert``."""
    operand: float
    """The number added, subtracted, multiplied or divided by (the factor for ``convert``)."""
    unit_from: str = ""
    unit_to: str = ""
    wrong_factor: float = 0.0
    """``convert`` only: the tempting factor of another conversion (the ``wrong_op`` error)."""

    def apply(self, x: float) -> float:
        if self.name == "add":
            return x + self.operand
        if self.name == "subtract":
            return x - self.operand
        if self.name == "divide":
            return x / self.operand
        return x * self.operand  # multiply, convert

    def phrase(self) -> str:
        """How the prompt asks for it ("multiply by 3", "to metres")."""
        if self.name == "convert":
            return f"to {self.unit_to}"
        return _PHRASES[self.name].format(k=_fmt(self.operand))

    def text(self, x: float, y: float, name: str | None = None) -> str:
        """The step that states ``y`` as the result of applying this op (or ``name``) to ``x``."""
        if self.name == "convert":
            return f"{_fmt(x)} {self.unit_from} is {_fmt(y)} {self.unit_to}."
        symbol = _SYMBOLS[name or self.name]
        return f"{_fmt(x)} {symbol} {_fmt(self.operand)} = {_fmt(y)}."


@dataclass(frozen=True)
class Step:
    """One step of a solution with its gold validity."""

    text: str
    valid: bool
    """Gold: locally correct given the previous step's stated value."""
    kind: str
    """``op`` (applies one operation), ``pad`` (an easy correct step that adds
    nothing) or ``answer`` (the final "Answer: …" line)."""
    value: float
    """The running value this step states (for ``answer``: the stated answer)."""
    error: str = ""
    """The error kind of an invalid step (one of ``ERROR_KINDS``), ``""`` when valid."""
    done: int = 0
    """How many of the task's operations count as done after this step (a skip
    counts the one it jumped over); the policy's progress through the task."""


@dataclass(frozen=True)
class StepTask:
    """A multi-step prompt with its exact operations and answer."""

    id: str
    family: str
    """``chain`` (multi-step arithmetic) or ``units`` (unit conversion chain)."""
    prompt: str
    answer: float
    """The exact final value."""
    n_ops: int
    """Number of operations a correct solution applies."""
    start: float = 0.0
    """The value the first operation applies to."""
    ops: tuple[Op, ...] = ()
    start_unit: str = ""
    """``units`` only: the unit of the start value."""

    def __post_init__(self) -> None:
        if len(self.ops) != self.n_ops or self.n_ops < 1:
            raise ValueError(f"task {self.id!r}: n_ops == {self.n_ops} but {len(self.ops)} ops.")

    def unit_after(self, done: int) -> str:
        """The unit of the running value after ``done`` operations (``""`` for chains)."""
        return self.ops[done - 1].unit_to if done else self.start_unit

    def answer_text(self, value: float, done: int | None = None) -> str:
        unit = self.unit_after(self.n_ops if done is None else done)
        return f"Answer: {_fmt(value)}" + (f" {unit}" if unit else "")

    def reference(self) -> tuple[Step, ...]:
        """A correct solution: every operation in order, then the answer step."""
        steps, x = [], self.start
        for i, op in enumerate(self.ops):
            y = op.apply(x)
            steps.append(Step(op.text(x, y), True, "op", y, done=i + 1))
            x = y
        steps.append(Step(self.answer_text(x), True, "answer", x, done=self.n_ops))
        return tuple(steps)


# ---------------------------------------------------------------- task generation

# Unit ladders: (unit, factor to the next unit, the tempting wrong factor).
_LADDERS = (
    (("kilometres", 1000, 100), ("metres", 100, 10), ("centimetres", 10, 100), ("millimetres",)),
    (("days", 24, 60), ("hours", 60, 24), ("minutes", 60, 100), ("seconds",)),
    (("tonnes", 1000, 100), ("kilograms", 1000, 100), ("grams", 1000, 100), ("milligrams",)),
    (("gallons", 4, 8), ("quarts", 2, 4), ("pints", 2, 4), ("cups", 16, 12), ("tablespoons",)),
    (("weeks", 7, 5), ("days", 24, 12), ("hours", 60, 100), ("minutes",)),
    (("yards", 3, 12), ("feet", 12, 10), ("inches",)),
)


def _chain(rng: np.random.Generator, task_id: str) -> StepTask:
    start = int(rng.integers(2, 31))
    n_ops = int(rng.integers(2, 5))
    ops, x = [], start
    for _ in range(n_ops):
        name = str(rng.choice(("add", "subtract", "multiply", "divide")))
        divisors = [d for d in (2, 3, 4, 5) if x % d == 0 and x // d >= 2]
        if name == "divide" and not divisors:
            name = "multiply"
        if name == "multiply" and x > 200:
            name = "subtract"
        if name == "subtract" and x <= 4:
            name = "add"
        if name == "add":
            k = int(rng.integers(2, 21))
        elif name == "subtract":
            k = int(rng.integers(2, min(20, x - 2) + 1))
        elif name == "multiply":
            k = int(rng.integers(2, 6))
        else:
            k = int(rng.choice(divisors))
        op = Op(name, float(k))
        ops.append(op)
        x = int(op.apply(x))
    phrases = [op.phrase() for op in ops]
    asks = phrases[0].capitalize() + "".join(f", then {p}" for p in phrases[1:])
    prompt = f"Start with {start}. {asks}. What is the result?"
    return StepTask(task_id, "chain", prompt, float(x), n_ops, float(start), tuple(ops))


def _units(rng: np.random.Generator, task_id: str) -> StepTask:
    ladder = _LADDERS[int(rng.integers(len(_LADDERS)))]
    n_ops = int(rng.integers(2, min(3, len(ladder) - 1) + 1))
    first = int(rng.integers(0, len(ladder) - n_ops))
    amount = int(rng.integers(2, 10))
    ops, x = [], amount
    for rung, nxt in zip(ladder[first : first + n_ops], ladder[first + 1 :], strict=False):
        unit, factor, bad = rung
        ops.append(Op("convert", float(factor), unit, nxt[0], float(bad)))
        x *= factor
    src, units = ladder[first][0], [op.unit_to for op in ops]
    if rng.random() < 0.5:
        via = "".join(f", then to {u}" for u in units[1:])
        prompt = f"Convert {amount} {src} to {units[0]}{via}. How many {units[-1]} is that?"
    else:
        via = ", ".join(units[:-1])
        prompt = f"How many {units[-1]} are in {amount} {src}? Convert step by step through {via}."
    return StepTask(
        task_id, "units", prompt, float(x), n_ops, float(amount), tuple(ops), start_unit=src
    )


_MAKERS = {"chain": _chain, "units": _units}


def make_step_task(family: str, rng: np.random.Generator, task_id: str) -> StepTask:
    """One task of ``family`` drawn with ``rng``."""
    if family not in _MAKERS:
        raise ConfigError(f"step family == {family!r}, must be one of {', '.join(STEP_FAMILIES)}.")
    return _MAKERS[family](rng, task_id)


def make_step_tasks(
    n: int,
    rng: np.random.Generator,
    families: Sequence[str] = STEP_FAMILIES,
    prefix: str = "steps",
) -> list[StepTask]:
    """``n`` tasks cycling through ``families`` (ids ``"<prefix>-<i>"``)."""
    return [make_step_task(families[i % len(families)], rng, f"{prefix}-{i}") for i in range(n)]


# ---------------------------------------------------------------- solution state


def _state(task: StepTask, prefix: Sequence[Step]) -> tuple[float, int]:
    """The running value and the number of operations done after ``prefix``."""
    if not prefix:
        return task.start, 0
    return prefix[-1].value, prefix[-1].done


def is_complete(steps: Sequence[Step]) -> bool:
    """Whether the solution ends with an answer step."""
    return bool(steps) and steps[-1].kind == "answer"


def solution_correct(task: StepTask, steps: Sequence[Step]) -> bool:
    """Outcome gold: complete, and the stated answer equals ``task.answer``."""
    return is_complete(steps) and steps[-1].value == task.answer


def solution_text(steps: Sequence[str]) -> str:
    """A full solution rendered as one response: the steps, one per line."""
    return "\n".join(steps)


def to_step_solution(task: StepTask, steps: Sequence[Step]) -> StepSolution:
    """The solution as a :class:`StepSolution` whose labels are the steps' gold validity."""
    return StepSolution(
        task.prompt, tuple(s.text for s in steps), tuple(s.valid for s in steps), task.id
    )


def _pad_text(task: StepTask, value: float, done: int, rng: np.random.Generator) -> str:
    v, unit = _fmt(value), task.unit_after(done)
    if unit:
        choices = [
            f"So far we have {v} {unit}.",
            f"That is still {v} {unit}.",
            f"Multiplying by 1 leaves {v} {unit} unchanged.",
        ]
    else:
        choices = [
            f"The running total is {v}.",
            f"So far we have {v}.",
            f"Multiplying by 1 leaves {v} unchanged.",
        ]
        if float(value).is_integer() and value > 10 and value % 10:
            tens = int(value) - int(value) % 10
            choices.append(f"Let me check: {v} is {tens} + {int(value) % 10}.")
    return str(choices[int(rng.integers(len(choices)))])


def pad_step(task: StepTask, prefix: Sequence[Step], rng: np.random.Generator) -> Step:
    """An easy, always-valid step that restates the running value and adds nothing."""
    value, done = _state(task, prefix)
    return Step(_pad_text(task, value, done, rng), True, "pad", value, done=done)


def pad_solution(
    task: StepTask, steps: Sequence[Step], n_pad: int, rng: np.random.Generator
) -> tuple[Step, ...]:
    """Insert ``n_pad`` pad steps before the answer step (at the end if incomplete).

    The padding attack: correctness and every label stay as they were, the
    solution only gets longer.
    """
    if n_pad < 0:
        raise ValueError(f"n_pad == {n_pad}, must be >= 0.")
    body = list(steps[:-1] if is_complete(steps) else steps)
    tail = [steps[-1]] if is_complete(steps) else []
    for _ in range(n_pad):
        body.append(pad_step(task, body, rng))
    return (*body, *tail)


# ---------------------------------------------------------------- the policy


def _slip(correct: float, rng: np.random.Generator) -> float:
    """A value a little off ``correct`` (scaled to its size), never ``correct`` itself."""
    digits = len(str(int(abs(correct))))
    scale = 10 ** max(0, digits - 3)
    deltas = [d * scale for d in (-10, -2, -1, 1, 2, 10)]
    if correct > 0:
        deltas = [d for d in deltas if correct + d > 0] or [scale]
    return correct + float(deltas[int(rng.integers(len(deltas)))])


def _guess(correct: float, rng: np.random.Generator) -> float:
    """A round number near ``correct`` that is not ``correct`` (an unsure guess)."""
    digits = len(str(int(abs(correct))))
    unit = 10 ** max(1, digits - 1)
    guess = float(round(correct / unit) * unit)
    if guess == correct or guess <= 0:
        guess = correct + unit * (1 if rng.random() < 0.5 or correct - unit <= 0 else -1)
    return guess


_UNSURE = (
    "Probably about {x}, I am guessing.",
    "Not sure, maybe {x}?",
    "I think it is roughly {x}, but I am not certain.",
)
_WRONG_OPS = {
    "add": ("subtract", "multiply"),
    "subtract": ("add",),
    "multiply": ("add",),
    "divide": ("multiply", "subtract"),
}


@dataclass(frozen=True)
class StepPolicy:
    """The sandbox's step generator: proposes next steps, some of them wrong.

    Each proposal for a prefix with operations left is an error with
    probability ``p_error`` (its kind drawn by ``error_weights``), else a pad
    step with probability ``p_pad``, else the correct next operation. Once
    every operation is done it proposes the answer step, which states a
    slipped value with probability ``p_error``.
    """

    p_error: float = 0.2
    """P(a proposed step is wrong)."""
    p_pad: float = 0.1
    """P(a proposed step is a pad step), among proposals that are not errors."""
    error_weights: tuple[float, float, float, float] = (0.35, 0.25, 0.15, 0.25)
    """Relative weights of the error kinds slip, wrong_op, skip, unsure."""
    max_extra_steps: int = 8
    """A rollout stops, incomplete, after ``n_ops + 1 + max_extra_steps`` steps."""

    def __post_init__(self) -> None:
        for name in ("p_error", "p_pad"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"step_policy.{name} == {value!r}, must be in [0, 1].")
        w = self.error_weights
        if len(w) != len(ERROR_KINDS) or any(x < 0 for x in w) or sum(w) <= 0:
            raise ConfigError(
                f"step_policy.error_weights == {w!r}, must be {len(ERROR_KINDS)} weights >= 0 "
                f"({', '.join(ERROR_KINDS)}) with a positive sum."
            )
        if self.max_extra_steps < 0:
            raise ConfigError(
                f"step_policy.max_extra_steps == {self.max_extra_steps}, must be >= 0."
            )

    def propose(
        self, task: StepTask, prefix: Sequence[Step], k: int, rng: np.random.Generator
    ) -> list[Step]:
        """``k`` independent candidate next steps for ``prefix`` (they may repeat)."""
        if is_complete(prefix):
            raise ValueError(f"task {task.id!r}: the prefix already ends with an answer step.")
        if k < 1:
            raise ValueError(f"k == {k}, must be >= 1.")
        return [self._one(task, prefix, rng) for _ in range(k)]

    def rollout(
        self, task: StepTask, rng: np.random.Generator, prefix: Sequence[Step] = ()
    ) -> tuple[Step, ...]:
        """A full solution continuing ``prefix``, one proposal per step.

        Ends with an answer step, or after ``n_ops + 1 + max_extra_steps``
        steps (then incomplete).
        """
        steps = list(prefix)
        limit = task.n_ops + 1 + self.max_extra_steps
        while not is_complete(steps) and len(steps) < limit:
            steps.append(self._one(task, steps, rng))
        return tuple(steps)

    def right_and_wrong(
        self, task: StepTask, rng: np.random.Generator, tries: int
    ) -> tuple[tuple[Step, ...] | None, tuple[Step, ...] | None]:
        """The first correct and the first wrong complete rollout within ``tries``
        rollouts (``None`` for a side not found): an outcome pair, or a padding attack's
        two solutions."""
        good = bad = None
        for _ in range(tries):
            steps = self.rollout(task, rng)
            if not is_complete(steps):
                continue
            if solution_correct(task, steps):
                good = good or steps
            else:
                bad = bad or steps
            if good and bad:
                break
        return good, bad

    def _one(self, task: StepTask, prefix: Sequence[Step], rng: np.random.Generator) -> Step:
        x, done = _state(task, prefix)
        if done >= task.n_ops:
            if rng.random() < self.p_error:
                y = _slip(x, rng)
                return Step(task.answer_text(y, done), False, "answer", y, "slip", done)
            return Step(task.answer_text(x, done), True, "answer", x, done=done)
        u = rng.random()
        if u < self.p_error:
            w = np.asarray(self.error_weights, dtype=np.float64)
            kind = ERROR_KINDS[int(rng.choice(len(ERROR_KINDS), p=w / w.sum()))]
            return _error_step(task, x, done, kind, rng)
        if u < self.p_error + (1.0 - self.p_error) * self.p_pad:
            return pad_step(task, prefix, rng)
        op = task.ops[done]
        y = op.apply(x)
        return Step(op.text(x, y), True, "op", y, done=done + 1)


def _error_step(task: StepTask, x: float, done: int, kind: str, rng: np.random.Generator) -> Step:
    """An invalid step of ``kind`` after a prefix stating ``x`` with ``done`` ops done.

    Whatever the kind, the stated value differs from the correct next value
    (a draw that would coincide falls back to a slip), so validity can be
    re-checked from the values alone.
    """
    op = task.ops[done]
    right = op.apply(x)
    if kind == "skip":
        if done + 1 >= task.n_ops:  # jumping past the last op: the answer, too early
            return Step(task.answer_text(x, done), False, "answer", x, "skip", done)
        nxt = task.ops[done + 1]
        y = nxt.apply(x)
        if y != right:
            if op.name == "convert":  # the unit of the op after next, from the current unit
                text = f"{_fmt(x)} {op.unit_from} is {_fmt(y)} {nxt.unit_to}."
            else:
                text = nxt.text(x, y)
            return Step(text, False, "op", y, "skip", done + 2)
        kind = "slip"
    if kind == "wrong_op":
        if op.name == "convert":
            y = x * op.wrong_factor
            text = op.text(x, y)
        else:
            names = _WRONG_OPS[op.name]
            name = names[int(rng.integers(len(names)))]
            y = Op(name, op.operand).apply(x)
            text = op.text(x, y, name)
        if y != right:
            return Step(text, False, "op", y, "wrong_op", done + 1)
        kind = "slip"
    if kind == "unsure":
        y = _guess(right, rng)
        unit = task.unit_after(done + 1)
        template = _UNSURE[int(rng.integers(len(_UNSURE)))]
        text = template.format(x=_fmt(y) + (f" {unit}" if unit else ""))
        return Step(text, False, "op", y, "unsure", done + 1)
    y = _slip(right, rng)
    return Step(op.text(x, y), False, "op", y, "slip", done + 1)


# ---------------------------------------------------------------- the sandbox


@dataclass(frozen=True)
class StepSandboxConfig:
    """Sizes, families and the policy of the step sandbox."""

    seed: int = 0
    """Seed of every task and draw."""
    train_tasks: int = 1500
    """Tasks of the training split (one step pair and one outcome pair each, at most)."""
    test_tasks: int = 300
    """Held-out tasks (evaluation solutions and pairs)."""
    search_tasks: int = 50
    """Tasks for step-level search."""
    families: tuple[str, ...] = STEP_FAMILIES
    policy: StepPolicy = field(default_factory=StepPolicy)
    reference_share: float = 0.0
    """Share of tasks whose reference solution joins the sampled one in
    :meth:`StepSandbox.solutions`. With the default policy about 40% of the
    sampled solutions are already all-valid (first error "none"), so none are
    added; raise it for a policy that errs more."""
    candidate_tries: int = 16
    """Proposals drawn at one prefix to find a valid and an invalid step."""
    rollout_tries: int = 16
    """Rollouts drawn per task to find a correct and a wrong solution."""

    def __post_init__(self) -> None:
        check_seed("step_sandbox.seed", self.seed)
        for name in ("train_tasks", "test_tasks", "search_tasks", "candidate_tries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"step_sandbox.{name} == {getattr(self, name)}, must be >= 1.")
        if self.rollout_tries < 2:
            raise ConfigError(f"step_sandbox.rollout_tries == {self.rollout_tries}, must be >= 2.")
        unknown = sorted(set(self.families) - set(STEP_FAMILIES))
        if unknown or not self.families:
            raise ConfigError(
                f"step_sandbox.families == {self.families!r}, must be among "
                f"{', '.join(STEP_FAMILIES)} (at least one)."
            )
        if not 0.0 <= self.reference_share <= 1.0:
            raise ConfigError(
                f"step_sandbox.reference_share == {self.reference_share!r}, must be in [0, 1]."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Stream constants: one random stream per (use, split).
_TASKS, _STEP_PAIRS, _OUTCOME_PAIRS, _SOLUTIONS = 51001, 51002, 51003, 51004


@dataclass(frozen=True)
class StepSandbox:
    """The step tasks of each split and the data built from them."""

    config: StepSandboxConfig
    train: tuple[StepTask, ...]
    test: tuple[StepTask, ...]
    search: tuple[StepTask, ...]

    def tasks(self, split: str) -> tuple[StepTask, ...]:
        _check_split(split)
        return getattr(self, split)

    def rng(self, use: int, split: str) -> np.random.Generator:
        """The random stream of one use (an integer tag) on one split."""
        _check_split(split)
        return np.random.default_rng([self.config.seed, use, STEP_SPLITS.index(split)])

    def step_pairs(self, split: str) -> list[PreferencePair]:
        """PRM training pairs: a valid next step chosen over an invalid one, same prefix.

        Per task: roll out a solution, cut it at a random depth, and draw
        proposals for that prefix until one is valid and one invalid (tasks
        where ``candidate_tries`` proposals give no such pair are skipped).
        ``subset`` is the rejected step's error kind.
        """
        rng, policy, out = self.rng(_STEP_PAIRS, split), self.config.policy, []
        for task in self.tasks(split):
            steps = policy.rollout(task, rng)
            prefix = steps[: int(rng.integers(len(steps)))]
            good = bad = None
            for _ in range(self.config.candidate_tries):
                (step,) = policy.propose(task, prefix, 1, rng)
                if step.valid and good is None:
                    good = step
                elif not step.valid and bad is None:
                    bad = step
                if good is not None and bad is not None:
                    break
            if good is None or bad is None:
                continue
            out.append(
                PreferencePair(
                    prompt=step_prompt(task.prompt, [s.text for s in prefix]),
                    chosen=good.text,
                    rejected=bad.text,
                    subset=bad.error,
                    source=f"steps:{split}",
                    id=f"{task.id}@{len(prefix)}",
                )
            )
        return out

    def outcome_pairs(self, split: str) -> list[PreferencePair]:
        """ORM training pairs: a correct complete solution chosen over a wrong one.

        Per task, up to ``rollout_tries`` rollouts until one of each; the
        response is :func:`solution_text` of the steps; ``subset`` is the family.
        """
        rng, policy, out = self.rng(_OUTCOME_PAIRS, split), self.config.policy, []
        for task in self.tasks(split):
            good, bad = policy.right_and_wrong(task, rng, self.config.rollout_tries)
            if not (good and bad):
                continue
            out.append(
                PreferencePair(
                    prompt=task.prompt,
                    chosen=solution_text([s.text for s in good]),
                    rejected=solution_text([s.text for s in bad]),
                    subset=task.family,
                    source=f"steps:{split}",
                    id=task.id,
                )
            )
        return out

    def solutions(self, split: str) -> list[StepSolution]:
        """One sampled solution per task with gold step labels, plus the reference
        solution for a ``reference_share`` of the tasks (id ``"<task>#ref"``)."""
        rng, policy, out = self.rng(_SOLUTIONS, split), self.config.policy, []
        for task in self.tasks(split):
            out.append(to_step_solution(task, policy.rollout(task, rng)))
            if rng.random() < self.config.reference_share:
                ref = to_step_solution(task, task.reference())
                out.append(StepSolution(ref.prompt, ref.steps, ref.labels, f"{task.id}#ref"))
        return out


def _check_split(split: str) -> None:
    if split not in STEP_SPLITS:
        raise ConfigError(
            f"step sandbox split == {split!r}, must be one of {', '.join(STEP_SPLITS)}."
        )


def generate_step_sandbox(config: StepSandboxConfig | None = None) -> StepSandbox:
    """Build the step tasks of every split (deterministic in ``config.seed``)."""
    cfg = config or StepSandboxConfig()
    splits = {}
    for i, split in enumerate(STEP_SPLITS):
        rng = np.random.default_rng([cfg.seed, _TASKS, i])
        n = getattr(cfg, f"{split}_tasks")
        splits[split] = tuple(make_step_tasks(n, rng, cfg.families, prefix=f"steps-{split}"))
    return StepSandbox(cfg, splits["train"], splits["test"], splits["search"])
