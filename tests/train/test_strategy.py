"""t2i_tf.train.strategy: choosing a strategy, and which worker writes the run."""

import types

import pytest
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.train.strategy import make_strategy, worker_role


def with_cluster(cluster, task_type, task_id):
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)
    return types.SimpleNamespace(cluster_resolver=resolver)


def test_single_machine_strategies_are_the_chief():
    assert worker_role(tf.distribute.get_strategy()) == (True, 0)
    assert worker_role(make_strategy("default")) == (True, 0)


@pytest.mark.parametrize("cluster, task_type, task_id, role", [
    ({"worker": ["a:1", "b:1"]}, "worker", 0, (True, 0)),  # no chief task: worker 0 writes
    ({"worker": ["a:1", "b:1"]}, "worker", 1, (False, 1)),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "chief", 0, (True, 0)),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "worker", 0, (False, 0)),
])
def test_the_chief_of_a_cluster(cluster, task_type, task_id, role):
    assert worker_role(with_cluster(cluster, task_type, task_id)) == role


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs TF_CONFIG"),
    ("{not json", "not a valid cluster description"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty cluster.worker"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task.type worker or chief"),
])
def test_multi_worker_configuration_errors(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UserError, match=message):
        make_strategy("multi_worker")


def test_unknown_strategy():
    with pytest.raises(UserError, match="--strategy must be one of"):
        make_strategy("tpu")
