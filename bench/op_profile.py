"""Where a workload's time goes, by kind of operator: the bench's view of what is machine-sensitive.

One call of a workload runs under ``torch.profiler`` (CPU, untimed by the bench's clock), and
every ATen operator's own time (its self time, children excluded) is put in one of a few
groups: matrix products, attention, the loss, the optimizer, norms and element-wise math, and
copies and layout. Beside the shares: how many operators one call dispatches and their mean
own time. A workload whose operators are many and short spends its time dispatching, which is
what differs most between machines of one kind (faster matrix units, slower per-op dispatch);
one dominated by matrix products follows the machine's matmul speed.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.profiler import ProfilerActivity, profile

# Matched as substrings of the ATen operator's name, in this order.
SUBSTRING_GROUPS = {
    "attention": ("scaled_dot_product", "flash_attention", "efficient_attention"),
    "loss and softmax": ("log_softmax", "nll_loss", "cross_entropy", "logsumexp", "softmax"),
    "optimizer": ("foreach", "adam", "lerp", "addcdiv", "addcmul_"),
    "matrix products": ("matmul", "mkldnn"),
}
# Matched as the operator's base name: leading and trailing "_" and a "_backward" suffix dropped;
# a key also matches names that extend it after "_" ("embedding" matches "embedding_dense").
NAMED_GROUPS = {
    "matrix products": (
        "mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "linear", "int_mm",
        "weight_int8pack_mm",
    ),
    "norms and element-wise": (
        "rms_norm", "fused_rms_norm", "layer_norm", "native_layer_norm", "silu", "gelu", "mul",
        "add", "sub", "div", "pow", "rsqrt", "sqrt", "exp", "neg", "mean", "sum", "where",
        "sigmoid", "embedding", "fill", "zero", "flip", "masked_fill", "gather", "scatter",
        "index", "arange", "max", "min", "addcmul", "lt", "le", "gt", "ge", "eq", "ne", "abs",
        "tanh", "native_dropout", "dropout", "clamp", "rand", "multinomial", "topk", "sort", "argmax", "cumsum",
    ),
    "copies, layout and allocation": (
        "copy", "clone", "contiguous", "cat", "stack", "to_copy", "to", "reshape", "view",
        "unsafe_view", "permute", "transpose", "unflatten", "flatten", "expand", "slice",
        "select", "unbind", "split", "chunk", "as_strided", "empty", "empty_like",
        "empty_strided", "t", "detach", "alias", "resize", "zeros", "ones", "full", "new_empty",
        "new_zeros", "squeeze", "unsqueeze", "narrow", "repeat", "repeat_interleave",
    ),
}  # fmt: skip


def group_of(name: str) -> str:
    """The group of an ATen operator name (``aten::addmm``); "other" when none matches."""
    op = name.removeprefix("aten::")
    for group, keys in SUBSTRING_GROUPS.items():
        if any(key in op for key in keys):
            return group
    base = op.strip("_").removesuffix("_backward_data").removesuffix("_backward")
    for group, keys in NAMED_GROUPS.items():
        if base in keys or any(base.startswith(key + "_") for key in keys):
            return group
    return "other"


def op_shares(fn: Callable[[], object], items: int = 1, item: str = "call") -> dict:
    """Profile one call of ``fn`` (after one untimed warm-up call) that processes ``items``
    ``item``s: {"shares": {group: share of the ATen operators' summed own time}, "ops_per_item",
    "us_per_op" (mean own time of one operator, microseconds), "item"}. Only ``aten::``
    operators count; Python between them is not an operator's own time."""
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    totals: dict[str, float] = {}
    count, own = 0, 0.0
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        group = group_of(event.key)
        totals[group] = totals.get(group, 0.0) + event.self_cpu_time_total
        count += event.count
        own += event.self_cpu_time_total
    shares = (
        {group: totals[group] / own for group in sorted(totals, key=totals.get, reverse=True)} if own else {}
    )
    return {
        "shares": shares,
        "ops_per_item": count / items,
        "us_per_op": own / count if count else 0.0,
        "item": item,
    }


def format_shares(profile_row: dict) -> str:
    """``1,234 ops per step, 12 us each: matrix products 71%, attention 9%, ...``"""
    shares = ", ".join(
        f"{group} {share:.0%}" for group, share in profile_row["shares"].items() if share >= 0.005
    )
    return (
        f"{profile_row['ops_per_item']:,.0f} ops per {profile_row['item']}, "
        f"{profile_row['us_per_op']:.0f} us each: {shares}"
    )
