"""Process reward models on the step sandbox: step accuracy, first-error detection, and
which credit assignment a padding attack hacks (issue 22).

Models (both the library default ``EnsembleConfig``: frozen MiniLM, ``dual`` pooling,
five linear heads, except ``calibration_folds = 0``: a temperature changes no reward,
rank or threshold reported here, and cross-fitting would multiply fit time by six):

- **trained PRM**: fitted on ``StepSandbox.step_pairs("train")`` (a valid next step over
  an invalid one, same prefix) and read through :class:`ProcessRewardModel`;
- **implicit PRM**: an outcome model fitted on ``outcome_pairs("train")`` (a correct
  whole solution over a wrong one) and read through :class:`ImplicitProcessRewardModel`
  (step reward = difference of the outcome scores of consecutive prefixes, the empty
  prefix scored as ``""``).

Step rewards are the members' mean (``rule="mean"``) unless said otherwise.

(a) **Step metrics** on ``solutions("test")`` (one rollout per test task, gold step
labels), with ``rewardhedge.evaluate.process.step_metrics``: step accuracy and balanced
accuracy at the cross-fitted threshold (its default), step AUROC, ProcessBench
first-error accuracy on erroneous / correct solutions and their F1; 95% bootstrap CIs
over solutions (2,000 resamples).

(b) **Padding attack**: per test task, rollouts of the sandbox policy (seeded stream
``[0, 7001]``, at most 32) until one complete *correct* and one complete *wrong*
solution are found (tasks without both are left out; their number is reported). Each
is padded with ``n_pad ∈ {0, 2, 4, 8}`` pad steps (``pad_solution``: easy, always
valid restatements inserted before the answer; the padding for 2 and 4 is the first 2
and 4 pads of the 8, so the variants are nested). Per credit kind (sum, mean, min,
softmin at PURE's τ = 0.1, last):

- **hack rate** at ``n_pad``: share of tasks where the wrong solution padded with
  ``n_pad`` steps outscores the *unpadded* correct one (ties count half);
- **pairwise accuracy** at ``n_pad``: share of tasks where the correct solution
  outscores the wrong one when both are padded with ``n_pad`` steps (ties half);

each with a 95% bootstrap CI over tasks (2,000 resamples), and the paired difference of
the hack rates at ``n_pad = 8`` between sum (and mean) and min.

(c) The same (a) and (b) for the implicit PRM beside the trained one.

(d) The trained PRM ensemble with a conservative aggregation over members (LCB β = 1
and WCO), after credit member-wise, against the mean, for (b).

Diagnostic (reported, no target): the trained PRM's mean reward of pad steps, valid
operation steps and invalid steps in the attack set, which says why sum credit moves
the way it does.

Added after the first run (300 attack tasks, 1,306 s cold on a CPU shared with another
benchmark), with no setting of the comparison changed: (i) the padding attack runs on
the first 100 test tasks by default (``--attack-tasks``; the first run's numbers on all
300 are in docs/process-rewards.md), to keep a cold run within minutes; (ii) a second
diagnostic, because min credit was hacked too (T3 missed): the mean reward of the
answer step per ``n_pad``, for correct and wrong solutions, and the share of unpadded
solutions whose lowest step is the answer step. Pads go in after the body and before
the answer, so under min credit padding can only move the answer step's reward (it is
read with the pads in its context) and add the pads' own rewards.

Targets and expectations, fixed before the first run:

- T1: the trained PRM's step AUROC ≥ 0.75 on the test solutions;
- T2: sum credit is hacked: its hack rate at ``n_pad = 8`` ≥ 0.5 and above min's, the
  paired CI of (sum − min) above 0;
- T3: min credit is not: its hack rate at ``n_pad = 8`` at most its ``n_pad = 0`` rate
  + 0.05;
- T4: the trained PRM beats the implicit one in step AUROC by ≥ 0.05 (expectation
  from the step-level supervision; a miss is reported, not tuned away);
- (d) has no target: it is reported as found.

Time: everything runs twice in one process. The first pass encodes into a fresh
embedding cache (a new temporary folder unless ``--cache-dir`` is given), so it is
the cold time; the second pass builds new models on the same cache (warm) and must
reproduce every reward exactly.

    python bench/prm.py [--out bench/results/prm.json] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import cell, machine, mean_ci
from rewardhedge.config import EncoderConfig, EnsembleConfig, UncertaintyConfig, to_dict
from rewardhedge.data.sandbox import (
    Step,
    StepSandbox,
    StepTask,
    generate_step_sandbox,
    pad_solution,
    solution_correct,
)
from rewardhedge.encoders import build_cached_encoder
from rewardhedge.estimators.ensemble import EnsembleRewardModel
from rewardhedge.estimators.process import (
    ImplicitProcessRewardModel,
    ProcessRewardModel,
    StepRewardModel,
    credit_estimates,
)
from rewardhedge.evaluate.process import step_metrics
from rewardhedge.types import RewardEstimate, StepSolution

CREDITS = ("sum", "mean", "min", "softmin", "last")
N_PADS = (0, 2, 4, 8)
RULES = ("mean", "lcb", "wco")
REPS = 2000
ATTACK_SEED = [0, 7001]
ATTACK_TASKS = 100
MAX_TRIES = 32
SOFTMIN_TAU = 0.1


def model_config() -> EnsembleConfig:
    return EnsembleConfig(uncertainty=UncertaintyConfig(calibration_folds=0))


def attack_set(
    sandbox: StepSandbox, n_tasks: int
) -> tuple[list[StepTask], list[list[list[tuple[Step, ...]]]]]:
    """Per kept task among the first ``n_tasks`` test tasks, ``[correct variants, wrong
    variants]``, each one per ``N_PADS``."""
    rng = np.random.default_rng(ATTACK_SEED)
    policy = sandbox.config.policy
    tasks, variants = [], []
    for task in sandbox.test[:n_tasks]:
        good, bad = policy.right_and_wrong(task, rng, MAX_TRIES)
        if not (good and bad):
            continue
        both = []
        for sol in (good, bad):
            full = pad_solution(task, sol, max(N_PADS), rng)
            body, pads, answer = sol[:-1], full[len(sol) - 1 : -1], sol[-1]
            both.append([(*body, *pads[:n], answer) for n in N_PADS])
        tasks.append(task)
        variants.append(both)
    return tasks, variants


def as_solutions(tasks: list[StepTask], variants: list[Any]) -> list[StepSolution]:
    """Flattened in (task, correct/wrong, n_pad) order."""
    return [
        StepSolution(task.prompt, tuple(s.text for s in sol))
        for task, both in zip(tasks, variants, strict=True)
        for side in both
        for sol in side
    ]


def beats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 where a > b, 0.5 on ties, 0 else."""
    return (a > b) + 0.5 * (a == b)


def attack_summary(rewards: np.ndarray) -> dict[str, Any]:
    """``rewards`` `(tasks, 2, len(N_PADS))` (correct, wrong) → hack rate and accuracy."""
    correct, wrong = rewards[:, 0], rewards[:, 1]
    out: dict[str, Any] = {"hack_rate": {}, "pairwise_accuracy": {}}
    for j, n in enumerate(N_PADS):
        out["hack_rate"][str(n)] = mean_ci(beats(wrong[:, j], correct[:, 0]), REPS)
        out["pairwise_accuracy"][str(n)] = mean_ci(beats(correct[:, j], wrong[:, j]), REPS)
    return out


def attack_block(ests: list[RewardEstimate], n_tasks: int, rules: tuple[str, ...]) -> dict:
    shape = (n_tasks, 2, len(N_PADS))
    block: dict[str, Any] = {}
    hacked8: dict[str, dict[str, np.ndarray]] = {}
    last = len(N_PADS) - 1
    for rule in rules:
        block[rule], hacked8[rule] = {}, {}
        for credit in CREDITS:
            r = credit_estimates(ests, credit, rule, temperature=SOFTMIN_TAU).reshape(shape)
            block[rule][credit] = attack_summary(r)
            hacked8[rule][credit] = beats(r[:, 1, last], r[:, 0, 0])
        m = hacked8[rule]
        block[rule]["hack8_sum_minus_min"] = mean_ci(m["sum"] - m["min"], REPS)
        block[rule]["hack8_mean_minus_min"] = mean_ci(m["mean"] - m["min"], REPS)
    for rule in rules[1:]:
        block[rule]["hack8_min_minus_mean_rule"] = mean_ci(
            hacked8[rule]["min"] - hacked8["mean"]["min"], REPS
        )
        block[rule]["hack8_sum_minus_mean_rule"] = mean_ci(
            hacked8[rule]["sum"] - hacked8["mean"]["sum"], REPS
        )
    return block


def step_kind_rewards(ests: list[RewardEstimate], tasks: list, variants: list) -> dict:
    """Mean step reward (members' mean) of pad, valid op, invalid and answer steps."""
    steps = [s for both in variants for side in both for sol in side for s in sol]
    r = np.concatenate([e.members.mean(axis=0) for e in ests])
    kinds = {
        "pad": [s.kind == "pad" for s in steps],
        "valid_op": [s.kind == "op" and s.valid for s in steps],
        "invalid": [not s.valid for s in steps],
        "answer": [s.kind == "answer" for s in steps],
    }
    return {k: float(r[np.array(m)].mean()) for k, m in kinds.items() if any(m)}


def answer_steps(ests: list[RewardEstimate], n_tasks: int) -> dict[str, Any]:
    """Mean answer-step reward per ``n_pad`` (correct, wrong), and how often the answer
    is the lowest step of an unpadded solution."""
    r = [e.members.mean(axis=0) for e in ests]  # (tasks · 2 · pads) solutions
    answer = np.array([x[-1] for x in r]).reshape(n_tasks, 2, len(N_PADS))
    lowest = np.array([np.argmin(x) == len(x) - 1 for x in r]).reshape(answer.shape)
    return {
        side: {
            "answer_reward_by_n_pad": {
                str(n): float(answer[:, k, j].mean()) for j, n in enumerate(N_PADS)
            },
            "answer_is_lowest_step_unpadded": float(lowest[:, k, 0].mean()),
        }
        for k, side in enumerate(("correct", "wrong"))
    }


def run_pass(
    sandbox: StepSandbox, cache_dir: Path, attack_tasks: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit both models, score everything; returns (results, raw rewards for the check)."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    encoder = build_cached_encoder(EncoderConfig(), cache_dir)
    step_pairs, outcome_pairs = sandbox.step_pairs("train"), sandbox.outcome_pairs("train")
    prm = EnsembleRewardModel(model_config(), encoder=encoder).fit(step_pairs)
    times["fit_prm_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    orm = EnsembleRewardModel(model_config(), encoder=encoder).fit(outcome_pairs)
    times["fit_orm_s"] = time.perf_counter() - t0

    test = sandbox.solutions("test")
    labels = [s.labels for s in test]
    tasks, variants = attack_set(sandbox, attack_tasks)
    attack = as_solutions(tasks, variants)
    models: dict[str, StepRewardModel] = {
        "trained": ProcessRewardModel(prm, rule="mean"),
        "implicit": ImplicitProcessRewardModel(orm, rule="mean"),
    }
    results: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        test_ests = model.step_scores(test)
        times[f"score_test_{name}_s"] = time.perf_counter() - t0
        calls_test = model.calls_
        t0 = time.perf_counter()
        attack_ests = model.step_scores(attack)
        times[f"score_attack_{name}_s"] = time.perf_counter() - t0
        step_r = [e.members.mean(axis=0) for e in test_ests]
        rules = RULES if name == "trained" else ("mean",)
        results[name] = {
            "step_metrics": step_metrics(step_r, labels, reps=REPS, seed=0),
            "attack": attack_block(attack_ests, len(tasks), rules),
            "reward_calls": {"test": calls_test, "attack": model.calls_ - calls_test},
            "mean_step_reward_by_kind": step_kind_rewards(attack_ests, tasks, variants),
            "answer_step": answer_steps(attack_ests, len(tasks)),
        }
        raw[name] = np.concatenate([e.members.ravel() for e in test_ests + attack_ests])
    gold_correct = [
        solution_correct(t, both[0][0]) for t, both in zip(tasks, variants, strict=True)
    ]
    results["data"] = {
        "n_step_pairs": len(step_pairs),
        "n_outcome_pairs": len(outcome_pairs),
        "n_test_solutions": len(test),
        "n_attack_tasks": len(tasks),
        "n_attack_tasks_left_out": min(attack_tasks, len(sandbox.test)) - len(tasks),
        "n_attack_solutions": len(attack),
        "attack_correct_solutions_checked": bool(all(gold_correct)),
    }
    results["times"] = times
    return results, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results/prm.json"))
    ap.add_argument("--cache-dir", type=Path, default=None, help="default: a fresh temp folder")
    ap.add_argument("--attack-tasks", type=int, default=ATTACK_TASKS)
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="prm-bench-") as tmp:
        cache_dir = args.cache_dir or Path(tmp)
        t0 = time.perf_counter()
        sandbox = generate_step_sandbox()
        cold, raw_cold = run_pass(sandbox, cache_dir, args.attack_tasks)
        cold_s = time.perf_counter() - t0
        print(f"first pass (cold cache unless --cache-dir was warm) {cold_s:.0f}s", flush=True)
        t0 = time.perf_counter()
        _, raw_warm = run_pass(sandbox, cache_dir, args.attack_tasks)
        warm_s = time.perf_counter() - t0
        print(f"second pass (warm cache) {warm_s:.0f}s", flush=True)
    reproduced = all(np.array_equal(raw_cold[k], raw_warm[k]) for k in raw_cold)
    tr, im = cold["trained"], cold["implicit"]
    at_tr = tr["attack"]["mean"]
    auc_tr, auc_im = tr["step_metrics"]["step_auroc"], im["step_metrics"]["step_auroc"]
    targets = {
        "T1_trained_step_auroc_ge_0.75": auc_tr["value"] >= 0.75,
        "T2_sum_hacked": at_tr["sum"]["hack_rate"]["8"]["mean"] >= 0.5
        and at_tr["hack8_sum_minus_min"]["ci_low"] > 0,
        "T3_min_not_hacked": at_tr["min"]["hack_rate"]["8"]["mean"]
        <= at_tr["min"]["hack_rate"]["0"]["mean"] + 0.05,
        "T4_trained_auroc_ge_implicit_plus_0.05": auc_tr["value"] >= auc_im["value"] + 0.05,
    }
    result = {
        "benchmark": "prm",
        "settings": {
            "model": model_config().to_dict(),
            "encoder": to_dict(EncoderConfig()),
            "sandbox": sandbox.config.to_dict(),
            "credits": list(CREDITS),
            "softmin_tau": SOFTMIN_TAU,
            "n_pads": list(N_PADS),
            "rules": list(RULES),
            "reps": REPS,
            "attack_seed": ATTACK_SEED,
            "max_tries": MAX_TRIES,
            "attack_tasks": args.attack_tasks,
        },
        **cold,
        "cold_s": cold_s,
        "warm_s": warm_s,
        "warm_reproduces_cold": reproduced,
        "targets": targets,
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(targets), flush=True)
    print(f"wrote {args.out}", flush=True)
    print_tables(result)


def print_tables(result: dict[str, Any]) -> None:
    for name in ("trained", "implicit"):
        m = result[name]["step_metrics"]
        fe = m["first_error"]
        print(
            f"{name}: step AUROC {ci3(m['step_auroc'])}, balanced acc "
            f"{ci3(m['step_balanced_accuracy'])}, first-error F1 {ci3(fe['f1'])} "
            f"(erroneous {ci3(fe['accuracy_erroneous'])}, correct {ci3(fe['accuracy_correct'])})"
        )
        print("| credit | " + " | ".join(f"hack@{n}" for n in N_PADS) + " | acc@0 | acc@8 |")
        for rule, block in result[name]["attack"].items():
            for credit in CREDITS:
                b = block[credit]
                print(
                    f"| {rule}/{credit} | "
                    + " | ".join(cell(b["hack_rate"][str(n)], ".2f") for n in N_PADS)
                    + f" | {cell(b['pairwise_accuracy']['0'], '.2f')}"
                    f" | {cell(b['pairwise_accuracy']['8'], '.2f')} |"
                )
        print(f"mean step reward by kind: {result[name]['mean_step_reward_by_kind']}")
        print(f"answer step: {result[name]['answer_step']}")
    tr, im = result["trained"], result["implicit"]
    at, ai = tr["attack"]["mean"], im["attack"]["mean"]
    missed = [k for k, v in result["targets"].items() if not v]
    d = result["data"]
    print(
        f"| `prm` | step sandbox (defaults: {d['n_step_pairs']} train step pairs, "
        f"{d['n_outcome_pairs']} outcome pairs; {d['n_test_solutions']} test solutions; "
        f"padding attack on {d['n_attack_tasks']} test tasks), MiniLM K=5 linear, 2-core CPU, "
        f"{result['cold_s']:.0f} s cold / {result['warm_s']:.0f} s warm | trained PRM step "
        f"AUROC {ci3(tr['step_metrics']['step_auroc'])}, first-error F1 "
        f"{ci3(tr['step_metrics']['first_error']['f1'])}; implicit PRM (outcome model) "
        f"{ci3(im['step_metrics']['step_auroc'])}, F1 "
        f"{ci3(im['step_metrics']['first_error']['f1'])}; padding 8 steps: wrong beats "
        f"correct under sum {cell(at['sum']['hack_rate']['8'], '.2f')} (unpadded "
        f"{cell(at['sum']['hack_rate']['0'], '.2f')}), mean "
        f"{cell(at['mean']['hack_rate']['8'], '.2f')}, min "
        f"{cell(at['min']['hack_rate']['8'], '.2f')} (unpadded "
        f"{cell(at['min']['hack_rate']['0'], '.2f')}), last "
        f"{cell(at['last']['hack_rate']['8'], '.2f')}; implicit sum "
        f"{cell(ai['sum']['hack_rate']['8'], '.2f')}, min "
        f"{cell(ai['min']['hack_rate']['8'], '.2f')} | step AUROC ≥ 0.75; sum hacked, min "
        f"not; trained ≥ implicit + 0.05 ({'met' if not missed else 'not met: ' + ', '.join(missed)}) |"
    )


def ci3(block: dict[str, Any]) -> str:
    return cell(block, key="value")


if __name__ == "__main__":
    main()
