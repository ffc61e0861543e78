"""Names of the result fields atune fills in automatically (as in ``ray.tune.result``)."""

from __future__ import annotations

DONE = "done"
TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTAMP = "timestamp"
DATE = "date"
TRIAL_ID = "trial_id"
EXPERIMENT_ID = "experiment_id"
EXPERIMENT_TAG = "experiment_tag"
PID = "pid"
HOSTNAME = "hostname"
NODE_IP = "node_ip"
CONFIG = "config"
ITERATIONS_SINCE_RESTORE = "iterations_since_restore"
TIME_SINCE_RESTORE = "time_since_restore"
TIMESTEPS_TOTAL = "timesteps_total"
TIMESTEPS_THIS_ITER = "timesteps_this_iter"
SHOULD_CHECKPOINT = "should_checkpoint"
#: Conventional metric names (not filled in; the console table shows them when reported).
MEAN_ACCURACY = "mean_accuracy"
MEAN_LOSS = "mean_loss"
EPISODE_REWARD_MEAN = "episode_reward_mean"

#: Fields every result carries, whatever the trainable reported.
AUTO_RESULT_KEYS = (
    TRAINING_ITERATION,
    TIME_THIS_ITER_S,
    TIME_TOTAL_S,
    TIMESTAMP,
    DATE,
    DONE,
    TRIAL_ID,
    EXPERIMENT_ID,
    PID,
    HOSTNAME,
    NODE_IP,
    ITERATIONS_SINCE_RESTORE,
    TIME_SINCE_RESTORE,
    CONFIG,
)

#: Fields atune adds to what the trainable reported: the above and ``experiment_tag``.
FILLED_RESULT_KEYS = frozenset((*AUTO_RESULT_KEYS, EXPERIMENT_TAG))

#: Default file names inside a trial directory.
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.csv"
PARAMS_FILE = "params.json"
ERROR_FILE = "error.txt"
#: Ray Tune's names for the same files.
EXPR_RESULT_FILE = RESULT_FILE
EXPR_PROGRESS_FILE = PROGRESS_FILE
EXPR_PARAM_FILE = PARAMS_FILE
EXPR_ERROR_FILE = ERROR_FILE
