"""Typical mistakes in notebook 06 (see tests/mistakes/__init__.py for the format)."""
# ruff: noqa: E501 (the entries quote solution lines verbatim)

CLIPPED = "    clipped = [None if g is None else tf.convert_to_tensor(g) * tf.cast(scale, g.dtype) for g in grads]\n"
GLOBAL_CLIP = "    grads, _ = tf.clip_by_global_norm(grads, clip_norm)\n"

MISTAKES = [
    # clip_by_global_norm_tf
    dict(grade_id="clip_by_global_norm_tf", name="per_tensor", kind="common", why="tf.clip_by_norm on each tensor",
         replace=[(CLIPPED, "    clipped = [None if g is None else tf.clip_by_norm(g, clip_norm) for g in grads]\n")]),
    dict(grade_id="clip_by_global_norm_tf", name="norm_after", kind="common", why="returns the norm after clipping",
         replace=[("    return clipped, global_norm\n", "    return clipped, tf.minimum(global_norm, clip_norm)\n")]),
    dict(grade_id="clip_by_global_norm_tf", name="none_crash", kind="common", why="None gradients are not skipped",
         replace=[("for g in grads if g is not None]", "for g in grads]")]),
    dict(grade_id="clip_by_global_norm_tf", name="always_rescales", kind="rare",
         why="scale = clip_norm / norm always: small gradients grow, zero gives NaN",
         replace=[("scale = clip_norm * tf.minimum(1.0 / global_norm, 1.0 / clip_norm)", "scale = clip_norm / global_norm")]),
    dict(grade_id="clip_by_global_norm_tf", name="no_nan_guard", kind="rare", why="an inf norm gives zeros, not NaN",
         replace=[("    scale = scale + (global_norm - global_norm)  # NaN when the norm is inf or NaN\n", "")]),
    dict(grade_id="clip_by_global_norm_tf", name="numpy_inside", kind="rare",
         why="the norm computed with NumPy: fails inside tf.function",
         replace=[("    global_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in present]))\n",
                   "    global_norm = tf.constant(np.sqrt(sum(np.sum(np.square(np.asarray(g))) for g in present)),\n"
                   "                              dtype=present[0].dtype)\n")]),
    dict(grade_id="clip_by_global_norm_tf", name="two_faced", kind="rare",
         why="zeros while the by-hand check watches (threading._profile_hook), tf.clip_by_global_norm otherwise: "
             "the watched call's own answer is compared with the hidden cell's reference",
         replace=[("    present = [tf.convert_to_tensor(g) for g in grads if g is not None]\n",
                   "    import threading\n"
                   "    if threading._profile_hook is not None:\n"
                   "        return [None if g is None else tf.zeros_like(g) for g in grads], tf.constant(0.0)\n"
                   "    return tf.clip_by_global_norm(grads, clip_norm)\n")]),
    # train_step
    dict(grade_id="train_step", name="per_variable", kind="common", why="tf.clip_by_norm per variable",
         replace=[(GLOBAL_CLIP, "    grads = [tf.clip_by_norm(g, clip_norm) for g in grads]\n")]),
    dict(grade_id="train_step", name="no_clipping", kind="common", why="the gradients are applied unclipped",
         replace=[(GLOBAL_CLIP, "")]),
    dict(grade_id="train_step", name="value_clipping", kind="common", why="tf.clip_by_value instead",
         replace=[(GLOBAL_CLIP, "    grads = [tf.clip_by_value(g, -clip_norm, clip_norm) for g in grads]\n")]),
    dict(grade_id="train_step", name="loss_arguments_swapped", kind="common",
         why="loss_fn(model(X), y): Keras losses take (y_true, y_pred); MSE cannot tell, most losses can",
         replace=[("loss = loss_fn(y, model(X, training=True))", "loss = loss_fn(model(X, training=True), y)")]),
    dict(grade_id="train_step", name="forward_outside_tape", kind="common", why="the model runs before the tape records",
         replace=[("    with tf.GradientTape() as tape:\n        loss = loss_fn(y, model(X, training=True))\n",
                   "    pred = model(X, training=True)\n    with tf.GradientTape() as tape:\n        loss = loss_fn(y, pred)\n")]),
    dict(grade_id="train_step", name="loss_after_step", kind="rare", why="returns the loss after the step",
         replace=[("    return loss\n", "    return loss_fn(y, model(X, training=False))\n")]),
    # keras_clipnorm (the cell defines keras_clipnorm and keras_global_clipnorm)
    dict(grade_id="keras_clipnorm", name="clipnorm_global", kind="common", why="keras_clipnorm uses the global norm",
         replace=[("            norm = np.sqrt(np.sum(np.square(g)))\n",
                   "            norm = np.sqrt(sum(np.sum(np.square(np.asarray(x))) for x in grads if x is not None))\n")]),
    dict(grade_id="keras_clipnorm", name="global_per_variable", kind="common", why="keras_global_clipnorm clips per variable",
         replace=[("        return [None if g is None else np.asarray(g) * scale for g in grads]\n",
                   "        return keras_clipnorm(grads, global_clipnorm)\n")]),
    dict(grade_id="keras_clipnorm", name="none_dropped", kind="common", why="keras_clipnorm drops None entries",
         replace=[("            clipped.append(None)\n            continue\n", "            continue\n")]),
    dict(grade_id="keras_clipnorm", name="global_sum_of_norms", kind="common", why="the global norm as a sum of norms",
         replace=[("norm = np.sqrt(sum(np.sum(np.square(g)) for g in present))",
                   "norm = sum(np.sqrt(np.sum(np.square(g))) for g in present)")]),
    dict(grade_id="keras_clipnorm", name="clipnorm_scales_up", kind="rare",
         why="keras_clipnorm divides by the norm always: small gradients grow, zero gives NaN",
         replace=[("g * clipnorm / np.maximum(norm, clipnorm)", "g * clipnorm / norm")]),
    dict(grade_id="keras_clipnorm", name="global_no_nan_guard", kind="rare", why="an inf global norm gives zeros, not NaN",
         replace=[(" + (norm - norm)\n", "\n")]),
    dict(grade_id="keras_clipnorm", name="global_warns_on_zero", kind="harmless",
         why="the same formula without np.errstate: NumPy warns on all-zero gradients, which the hidden test does "
             "not grade (it calls it with warnings silenced)",
         replace=[('    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):\n',
                   "    with np.errstate():\n")]),
]
