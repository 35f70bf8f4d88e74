"""Typical mistakes in notebook 08 (see tests/mistakes/__init__.py for the format)."""
# ruff: noqa: E501 (the entries quote solution lines verbatim)

MISTAKES = [
    # autoclip_
    dict(grade_id="autoclip_", name="percentile_before_append", kind="common",
         why="the threshold is taken before the current norm joins the history",
         replace=[("    history.append(norm)\n    threshold = float(np.percentile(history, percentile))\n",
                   "    threshold = float(np.percentile(history or [norm], percentile))\n    history.append(norm)\n")]),
    dict(grade_id="autoclip_", name="per_tensor", kind="common", why="each gradient clipped by its own norm",
         replace=[("            g.mul_(coef)\n", "            g.mul_(min(1.0, threshold / (float(torch.linalg.vector_norm(g)) + 1e-6)))\n")]),
    dict(grade_id="autoclip_", name="no_clamp", kind="common", why="threshold / norm is not capped at 1",
         replace=[("coef = min(1.0, threshold / (norm + 1e-6))", "coef = threshold / (norm + 1e-6)")]),
    # agc_
    dict(grade_id="agc_", name="whole_tensor", kind="common", why="one norm per tensor instead of per unit (row)",
         replace=[("dims = tuple(range(1, p.ndim)) if p.ndim > 1 else None", "dims = None")]),
    dict(grade_id="agc_", name="columns", kind="common", why="units taken along the last dimension (columns)",
         replace=[("dims = tuple(range(1, p.ndim)) if p.ndim > 1 else None", "dims = tuple(range(0, p.ndim - 1)) if p.ndim > 1 else None")]),
    dict(grade_id="agc_", name="no_eps_floor", kind="rare", why="zero weights get a zero bound (no max(||w||, eps))",
         replace=[("torch.clamp(w_norm, min=eps)", "w_norm")]),
    # accumulated_clipped_step
    dict(grade_id="accumulated_clipped_step", name="unscaled_losses", kind="common",
         why="micro-batch losses summed unscaled: the gradient of the sum, not the mean",
         replace=[("loss = loss_fn(model(X), y) * (len(X) / total)", "loss = loss_fn(model(X), y)")]),
    dict(grade_id="accumulated_clipped_step", name="clip_each_micro_batch", kind="common",
         why="clipped after every backward instead of once",
         replace=[("        loss.backward()\n    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n",
                   "        loss.backward()\n        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n")]),
    dict(grade_id="accumulated_clipped_step", name="mean_over_micro_batches", kind="rare",
         why="each loss divided by the number of micro-batches: wrong for unequal sizes",
         replace=[("* (len(X) / total)", "/ len(micro_batches)")]),
    dict(grade_id="accumulated_clipped_step", name="no_zero_grad", kind="rare", why="optimizer.zero_grad() is never called",
         replace=[("    optimizer.zero_grad()\n", "")]),
]
