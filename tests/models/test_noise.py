"""The one generator noise rule: same seed (and stream), same z, in eager code and in exported graphs."""

import numpy as np
import tensorflow as tf

from t2i_tf.models.noise import generator_noise


def test_same_seed_same_noise_and_streams_differ():
    a, b = generator_noise(4, 6, 7).numpy(), generator_noise(4, 6, 7).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 6)
    assert not np.allclose(a, generator_noise(4, 6, 8).numpy())
    assert not np.allclose(a, generator_noise(4, 6, 7, stream=1).numpy())
    np.testing.assert_array_equal(a, tf.random.stateless_normal([4, 6], seed=[7, 0]).numpy())


def test_graph_with_tensor_seed_draws_what_eager_code_draws():
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int64)])
    def exported(n, seed):
        return generator_noise(n, 5, seed)

    np.testing.assert_array_equal(exported(tf.constant(3), tf.constant(11, tf.int64)).numpy(),
                                  generator_noise(3, 5, 11).numpy())
