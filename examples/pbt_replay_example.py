"""Replay the hyperparameter schedule that PBT found, on a single trial.

First a small PBT run (the pbt_example trainable) writes its policy logs; then
PopulationBasedTrainingReplay retrains one trial from scratch following the lineage of
the best trial: it starts from that lineage's initial config and switches to each new
config at the iteration where PBT switched.

    python examples/pbt_replay_example.py [--smoke-test]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pbt_example import MyTrainableClass

import atune as tune
from atune.schedulers import PopulationBasedTraining, PopulationBasedTrainingReplay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    iterations = 30 if args.smoke_test else 100
    sleep = 0.01 if args.smoke_test else 0.1
    if args.smoke_test:
        import ray

        ray.init(num_cpus=4, include_dashboard=False)  # half the population runs at once

    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=5,
        hyperparam_mutations={"factor_1": tune.uniform(0.0, 20.0), "factor_2": [1, 2]},
        log_config=True,  # writes pbt_policy_<trial_id>.txt, which the replay reads
    )
    results = tune.Tuner(
        MyTrainableClass,
        param_space={"factor_1": 4.0, "factor_2": 1.0, "sleep": sleep},
        tune_config=tune.TuneConfig(
            metric="episode_reward_mean", mode="max", scheduler=pbt, num_samples=8
        ),
        run_config=tune.RunConfig(
            name="pbt_for_replay", stop={"training_iteration": iterations}, verbose=0
        ),
    ).fit_sync()

    # Only perturbed trials have a policy file: replay the best of them.
    def policy_of(result: tune.Result) -> str:
        return os.path.join(results.experiment_path, f"pbt_policy_{result.metrics['trial_id']}.txt")

    perturbed = [r for r in results if os.path.exists(policy_of(r))]
    if not perturbed:
        print("No trial was perturbed; nothing to replay.")
        print("Best config:", results.get_best_result().config)
        return
    best = max(perturbed, key=lambda r: r.metrics["episode_reward_mean"])
    policy = policy_of(best)
    print("Replaying", policy)

    replay = PopulationBasedTrainingReplay(policy)
    replayed = tune.Tuner(
        MyTrainableClass,
        tune_config=tune.TuneConfig(scheduler=replay),
        run_config=tune.RunConfig(
            name="pbt_replay", stop={"training_iteration": iterations}, verbose=0
        ),
    ).fit_sync()
    history = replayed[0].metrics_dataframe
    print("Config changes during the replay:")
    for column in ("config/factor_1", "config/factor_2"):
        if column in history:
            changes = history[column].ne(history[column].shift()).sum()
            print(f"  {column}: {changes} distinct stretches")
    print("Best config (final config of the replayed schedule):", replayed[0].config)
    print(
        f"PBT's best reward: {best.metrics['episode_reward_mean']:.2f}, "
        f"replayed: {replayed[0].metrics['episode_reward_mean']:.2f}"
    )


if __name__ == "__main__":
    main()
