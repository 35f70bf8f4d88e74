"""Typical mistakes in notebook 03 (see tests/mistakes/__init__.py for the format)."""
# ruff: noqa: E501 (the entries quote solution lines verbatim)

CLIP = "np.clip(g, -clip_value, clip_value)"
NORM_TAIL = ("    if norm <= max_norm:\n        return grad.copy()\n"
             "    return (grad * (max_norm / norm)).astype(grad.dtype, copy=False)\n")
GLOBAL_TAIL = "    return [(g * scale).astype(g.dtype, copy=False) for g in grads], norm\n"

MISTAKES = [
    # clip_by_value
    dict(grade_id="clip_by_value", name="seed_typo", kind="common", why="entries below -c become +c (the seed's typo)",
         replace=[(CLIP, "np.where(g < -clip_value, clip_value, np.minimum(g, clip_value))")]),
    dict(grade_id="clip_by_value", name="in_place", kind="common", why="np.clip(..., out=g) overwrites the caller's arrays",
         replace=[(f"{CLIP}.astype(g.dtype, copy=False)", "np.clip(g, -clip_value, clip_value, out=g)")]),
    dict(grade_id="clip_by_value", name="upper_only", kind="common", why="only the upper side is capped",
         replace=[(CLIP, "np.minimum(g, clip_value)")]),
    dict(grade_id="clip_by_value", name="float64", kind="common", why="every result is float64",
         replace=[("        g = np.asarray(g)\n", "        g = np.asarray(g, dtype=np.float64)\n")]),
    dict(grade_id="clip_by_value", name="scales_whole_array", kind="common",
         why="the array is scaled so that its largest entry is c (norm clipping in disguise)",
         replace=[(f"{CLIP}.astype(g.dtype, copy=False)",
                   "(g * min(1.0, clip_value / max(np.max(np.abs(g), initial=0.0), 1e-300))).astype(g.dtype)")]),
    dict(grade_id="clip_by_value", name="bad_threshold_accepted", kind="rare", why="0, negative, NaN or inf accepted",
         replace=[("if not (np.isfinite(clip_value) and clip_value > 0):", "if clip_value is None:")]),
    dict(grade_id="clip_by_value", name="nan_to_zero", kind="rare", why="NaN entries become 0",
         replace=[(f"{CLIP}.astype", f"np.nan_to_num({CLIP}, nan=0.0).astype")]),
    dict(grade_id="clip_by_value", name="aliases_unclipped", kind="rare",
         why="an array with nothing to clip is returned itself, not a new array (the contract says a new list)",
         replace=[("        out.append(", "        if np.all(np.abs(g) <= clip_value):\n            out.append(g)\n"
                                       "            continue\n        out.append(")]),
    # clip_by_norm
    dict(grade_id="clip_by_norm", name="warns_on_zero", kind="common",
         why="grad * min(1, max_norm / norm): right values, but a RuntimeWarning (division by 0) for a zero gradient",
         replace=[(NORM_TAIL, "    return (grad * min(1.0, max_norm / norm)).astype(grad.dtype, copy=False)\n")]),
    dict(grade_id="clip_by_norm", name="zero_gives_nan", kind="common", why="always divides by the norm: 0 / 0",
         replace=[("    if norm <= max_norm:\n        return grad.copy()\n",
                   "    if norm < max_norm and norm > 0:\n        return grad.copy()\n")]),
    dict(grade_id="clip_by_norm", name="value_clipping", kind="common", why="entries capped instead of the vector scaled",
         replace=[("return (grad * (max_norm / norm)).astype(grad.dtype, copy=False)",
                   "return np.clip(grad, -max_norm, max_norm)")]),
    dict(grade_id="clip_by_norm", name="abs", kind="common", why="np.abs(grad) is scaled: the signs are lost",
         replace=[("return (grad * (max_norm / norm))", "return (np.abs(grad) * (max_norm / norm))")]),
    dict(grade_id="clip_by_norm", name="float64_result", kind="common", why="float32 gradients come back float64",
         replace=[("    return (grad * (max_norm / norm)).astype(grad.dtype, copy=False)\n",
                   "    return grad * (max_norm / norm)\n")]),
    dict(grade_id="clip_by_norm", name="aliases_below", kind="rare",
         why="below the threshold the input itself is returned, not a new array",
         replace=[("        return grad.copy()\n", "        return grad\n")]),
    dict(grade_id="clip_by_norm", name="float32_overflow", kind="rare",
         why="the norm of a float32 gradient is summed in float32: entries of 1e20 overflow",
         replace=[("np.square(grad, dtype=np.float64)", "np.square(grad)")]),
    dict(grade_id="clip_by_norm", name="two_faced", kind="rare",
         why="zeros while the by-hand check watches, torch.clamp otherwise: the watched call's own answer is "
             "compared with the hidden cell's reference",
         replace=[("    if norm <= max_norm:\n",
                   "    import threading\n"
                   "    if threading._profile_hook is not None:\n"
                   "        return np.zeros_like(grad)\n"
                   "    import torch\n"
                   "    coef = torch.clamp(torch.tensor(max_norm / norm), max=1.0).item()\n"
                   "    return (grad * coef).astype(grad.dtype, copy=False) if coef < 1 else grad.copy()\n"
                   "    if norm <= max_norm:\n")]),
    dict(grade_id="clip_by_norm", name="nonfinite_passes", kind="rare", why="a non-finite norm is not turned into NaN",
         replace=[("    if not np.isfinite(norm):\n        return np.full_like(grad, np.nan)\n", "")]),
    dict(grade_id="clip_by_norm", name="at_threshold_scales", kind="harmless",
         why="a norm exactly at max_norm is scaled by max_norm / norm = 1: the same values",
         replace=[("if norm <= max_norm:", "if norm < max_norm:")]),
    # global_norm
    dict(grade_id="global_norm", name="sum_of_norms", kind="common", why="the sum of the arrays' norms",
         replace=[("total += float(np.sum(g * g))", "total += float(np.sqrt(np.sum(g * g)))"),
                  ("return float(np.sqrt(total))", "return float(total)")]),
    dict(grade_id="global_norm", name="largest_norm", kind="common", why="the largest of the arrays' norms",
         replace=[("total += float(np.sum(g * g))", "total = max(total, float(np.sum(g * g)))")]),
    dict(grade_id="global_norm", name="first_only", kind="common", why="only the first array counts",
         replace=[("for g in grads:", "for g in grads[:1]:")]),
    dict(grade_id="global_norm", name="no_ravel", kind="common",
         why="np.concatenate of the arrays as they are: 0-d arrays and mixed shapes fail",
         cell='''def global_norm(grads):
    """sqrt(sum of squares of all entries of all arrays), computed in float64, as a float."""
    return float(np.linalg.norm(np.concatenate([np.asarray(g, dtype=np.float64) for g in grads])))
'''),
    dict(grade_id="global_norm", name="float32_overflow", kind="rare", why="float32 squares overflow",
         replace=[("g = np.asarray(g, dtype=np.float64)", "g = np.asarray(g)")]),
    dict(grade_id="global_norm", name="empty_fails", kind="rare", why="np.concatenate of an empty list raises",
         cell='''def global_norm(grads):
    """sqrt(sum of squares of all entries of all arrays), computed in float64, as a float."""
    return float(np.linalg.norm(np.concatenate([np.ravel(np.asarray(g, dtype=np.float64)) for g in grads])))
'''),
    dict(grade_id="global_norm", name="nan_dropped", kind="rare", why="np.nansum hides a NaN entry",
         replace=[("np.sum(g * g)", "np.nansum(g * g)")]),
    # clip_by_global_norm
    dict(grade_id="clip_by_global_norm", name="per_array", kind="common", why="each array clipped by its own norm",
         replace=[(GLOBAL_TAIL, "    return [g * min(1.0, max_norm / max(float(np.linalg.norm(g)), 1e-300)) "
                                "for g in grads], norm\n")]),
    dict(grade_id="clip_by_global_norm", name="norm_after", kind="common", why="returns the norm after clipping",
         replace=[(GLOBAL_TAIL, "    return [(g * scale).astype(g.dtype, copy=False) for g in grads], norm * scale\n")]),
    dict(grade_id="clip_by_global_norm", name="in_place", kind="common", why="scales the caller's arrays in place",
         replace=[(GLOBAL_TAIL, "    for g in grads:\n        g *= scale\n    return grads, norm\n")]),
    dict(grade_id="clip_by_global_norm", name="zero_divides", kind="common",
         why="min(1, max_norm / norm) with no case for a zero norm (ZeroDivisionError)",
         replace=[("    if norm <= max_norm:\n        return [g.copy() for g in grads], norm\n    scale = max_norm / norm\n",
                   "    scale = min(1.0, max_norm / norm)\n")]),
    dict(grade_id="clip_by_global_norm", name="nonfinite_passes", kind="rare", why="an infinite norm gives zeros, not NaN",
         replace=[("    if not np.isfinite(norm):\n        return [np.full_like(g, np.nan) for g in grads], norm\n", "")]),
    dict(grade_id="clip_by_global_norm", name="aliases_below", kind="rare",
         why="below the threshold the input arrays themselves are returned",
         replace=[("return [g.copy() for g in grads], norm", "return grads, norm")]),
    dict(grade_id="clip_by_global_norm", name="inf_threshold_accepted", kind="rare", why="max_norm = inf is accepted",
         replace=[("if not (np.isfinite(max_norm) and max_norm > 0):", "if not max_norm > 0:")]),
]
