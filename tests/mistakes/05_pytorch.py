"""Typical mistakes in notebook 05 (see tests/mistakes/__init__.py for the format)."""
# ruff: noqa: E501 (the entries quote solution lines verbatim)

SCALE = ("        clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)\n        for g in grads:\n"
         "            g.mul_(clip_coef.to(g.device))\n")
ERROR = ('        if error_if_nonfinite and not torch.isfinite(total_norm):\n'
         '            raise RuntimeError(f"cannot clip: the gradients\' {norm_type}-norm is {total_norm.item()} "\n'
         '                               "(error_if_nonfinite=True)")\n')
CLAMP = "p.grad.clamp_(min=-clip_value, max=clip_value)"

MISTAKES = [
    # manual_clip_grad_norm_
    dict(grade_id="manual_clip_grad_norm_", name="per_tensor", kind="common", why="each gradient clipped by its own norm",
         replace=[(SCALE, "        for g, n in zip(grads, norms):\n"
                          "            g.mul_(torch.clamp(max_norm / (n + 1e-6), max=1.0))\n")]),
    dict(grade_id="manual_clip_grad_norm_", name="returns_norm_after", kind="common", why="returns the norm after clipping",
         replace=[("    return total_norm\n", "    return total_norm * clip_coef\n")]),
    dict(grade_id="manual_clip_grad_norm_", name="not_in_place", kind="common", why="g = g * coef: nothing changes",
         replace=[("            g.mul_(clip_coef.to(g.device))\n", "            g = g * clip_coef\n")]),
    dict(grade_id="manual_clip_grad_norm_", name="norm_type_ignored", kind="common", why="always the 2-norm",
         replace=[("norms = [torch.linalg.vector_norm(g, norm_type) for g in grads]",
                   "norms = [torch.linalg.vector_norm(g) for g in grads]"),
                  ("for n in norms]), norm_type)", "for n in norms]))")]),
    dict(grade_id="manual_clip_grad_norm_", name="no_clamp", kind="common",
         why="max_norm / norm is not capped at 1: small gradients are scaled up",
         replace=[("torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)", "max_norm / (total_norm + 1e-6)")]),
    dict(grade_id="manual_clip_grad_norm_", name="none_grads_crash", kind="common", why="parameters without .grad crash",
         replace=[("grads = [p.grad for p in parameters if p.grad is not None]", "grads = [p.grad for p in parameters]")]),
    dict(grade_id="manual_clip_grad_norm_", name="no_eps", kind="rare", why="max_norm / norm without torch's 1e-6",
         replace=[("max_norm / (total_norm + 1e-6)", "max_norm / total_norm")]),
    dict(grade_id="manual_clip_grad_norm_", name="generator_read_twice", kind="rare",
         why="parameters is iterated again to scale: a generator is already used up",
         replace=[("        for g in grads:\n            g.mul_(clip_coef.to(g.device))\n",
                   "        for p in parameters:\n            if p.grad is not None:\n"
                   "                p.grad.mul_(clip_coef.to(p.grad.device))\n")]),
    dict(grade_id="manual_clip_grad_norm_", name="raises_after_clipping", kind="rare",
         why="error_if_nonfinite raises only after the gradients were scaled",
         replace=[(ERROR, ""), ("            g.mul_(clip_coef.to(g.device))\n",
                                "            g.mul_(clip_coef.to(g.device))\n" + ERROR)]),
    dict(grade_id="manual_clip_grad_norm_", name="nonfinite_dropped", kind="common",
         why="non-finite gradients are left out of the norm",
         replace=[("for g in grads]\n        total_norm", "for g in grads if torch.isfinite(g).all()] or "
                                                         "[torch.tensor(0.0)]\n        total_norm")]),
    dict(grade_id="manual_clip_grad_norm_", name="two_faced", kind="rare",
         why="zeroes the gradients while the by-hand check watches, torch's clip_grad_norm_ otherwise: the watched "
             "call's gradients are compared with the hidden cell's reference",
         replace=[("    if isinstance(parameters, torch.Tensor):\n        parameters = [parameters]\n",
                   "    import threading\n"
                   "    parameters = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)\n"
                   "    if threading._profile_hook is not None:\n"
                   "        for p in parameters:\n"
                   "            if p.grad is not None:\n"
                   "                p.grad.zero_()\n"
                   "        return torch.tensor(0.0)\n"
                   "    return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)\n")]),
    # manual_clip_grad_value_
    dict(grade_id="manual_clip_grad_value_", name="seed_typo", kind="common", why="entries below -c become +c",
         replace=[(CLAMP, "p.grad.copy_(torch.where(p.grad < -clip_value, clip_value, p.grad.clamp(max=clip_value)))")]),
    dict(grade_id="manual_clip_grad_value_", name="not_in_place", kind="common", why="a clamped copy is thrown away",
         replace=[(CLAMP, "g = p.grad.clamp(min=-clip_value, max=clip_value)")]),
    dict(grade_id="manual_clip_grad_value_", name="single_tensor", kind="common", why="a lone tensor is iterated row by row",
         replace=[("    if isinstance(parameters, torch.Tensor):\n        parameters = [parameters]\n", "")]),
    dict(grade_id="manual_clip_grad_value_", name="upper_only", kind="common", why="only the upper side is clamped",
         replace=[(CLAMP, "p.grad.clamp_(max=clip_value)")]),
    dict(grade_id="manual_clip_grad_value_", name="none_grads_crash", kind="rare", why="a parameter without .grad crashes",
         replace=[("            if p.grad is not None:\n                p.grad", "            if True:\n                p.grad")]),
    dict(grade_id="manual_clip_grad_value_", name="replaces_grad", kind="harmless",
         why="p.grad = p.grad.clamp(...) assigns a new clamped tensor to each parameter: the same effect",
         replace=[(CLAMP, "p.grad = p.grad.clamp(min=-clip_value, max=clip_value)")]),
    # train_step
    dict(grade_id="train_step", name="no_zero_grad", kind="common",
         why="optimizer.zero_grad() is never called: gradients pile up over steps",
         replace=[("    optimizer.zero_grad()\n", "")]),
    dict(grade_id="train_step", name="clip_before_backward", kind="common", why="clips before loss.backward()",
         replace=[("    loss.backward()\n    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=2)\n",
                   "    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=2)\n"
                   "    loss.backward()\n")]),
    dict(grade_id="train_step", name="no_backward", kind="common", why="loss.backward() is missing (the seed's loop)",
         replace=[("    loss.backward()\n", "")]),
    dict(grade_id="train_step", name="no_step", kind="common", why="optimizer.step() is missing",
         replace=[("    optimizer.step()\n", "")]),
    dict(grade_id="train_step", name="value_clipping", kind="common", why="clip_grad_value_ instead of clip_grad_norm_",
         replace=[("    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=2)\n",
                   "    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])\n"
                   "    torch.nn.utils.clip_grad_value_(model.parameters(), max_norm)\n")]),
    dict(grade_id="train_step", name="loss_arguments_swapped", kind="common",
         why="loss_fn(y, model(X)): the target where the prediction goes (MSE cannot tell; most losses can)",
         replace=[("loss = loss_fn(model(X), y)", "loss = loss_fn(y, model(X))")]),
    dict(grade_id="train_step", name="norm_after_clipping", kind="rare", why="returns the norm after clipping",
         replace=[("    optimizer.step()\n", "    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])\n"
                                          "    optimizer.step()\n")]),
    dict(grade_id="train_step", name="zero_grad_at_the_end", kind="harmless",
         why="optimizer.zero_grad() after optimizer.step() instead of before backward: the same steps",
         replace=[("    optimizer.zero_grad()\n", ""), ("    optimizer.step()\n", "    optimizer.step()\n    optimizer.zero_grad()\n")]),
]
