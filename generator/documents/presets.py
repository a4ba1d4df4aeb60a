"""Named sheets that `make` builds by default and teachers can start from."""

from __future__ import annotations

from generator.documents.sheet import ProblemSpec

PRESETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # name: (title, calculator policy, problem specs as on the command line)
    "matrix-core": (
        "The 2x2 matrix core",
        "none",
        (
            "matmul:shape=2x2",
            "matmul:shape=2x1",
            "transpose",
            "dot_product",
            "linear_map:kind=rotation",
            "linear_map:kind=scaling",
            "inverse",
            "matmul_gradient",
        ),
    ),
    "example5": (
        "Example 5: a feed-forward layer and the residual",
        "none",
        ("example5",),
    ),
    "example6": (
        "Example 6: a complete transformer block",
        "none",
        ("example6",),
    ),
    "example1": (
        "Example 1: a minimal forward pass",
        "basic",
        ("example1",),
    ),
    "example2": (
        "Example 2: a single training step",
        "basic",
        ("example2",),
    ),
    "example3": (
        "Example 3: full backpropagation",
        "basic",
        ("example3",),
    ),
    "example4": (
        "Example 4: several patterns",
        "none",
        ("example4",),
    ),
    "tiny-transformer": (
        "A tiny transformer's forward pass",
        "basic",
        ("tiny_transformer",),
    ),
    "training-step": (
        "One complete training step of a tiny transformer",
        "basic",
        ("training_step",),
    ),
    "backward-steps": (
        "Backward pass and optimizer steps",
        "none",
        ("dlogits", "output_backward", "matmul_gradient", "softmax_backward", "attention_backward", "relu_backward", "residual_backward", "layernorm_backward", "embedding_grad", "grad_clip", "sgd_step",
         "sgd_step:optimizer=momentum", "adam_step", "adam_step:optimizer=adamw", "lr_experiment",
         "gradient_check", "batch_average"),
    ),
    # The chapter "Neural Network Fundamentals": the perceptron, activations and their slopes, squared error, a
    # two-layer network with every gradient (Stage 10's Exercise 1), the training loop's counts.
    "fundamentals": (
        "Neural-network fundamentals",
        "none",
        ("perceptron", "perceptron:steps=4", "activations", "mse", "two_layer_network", "training_loop"),
    ),
    # Stage 10 beyond single steps: backward through a whole feed-forward block and through two heads, residual
    # paths against vanishing gradients, ReLU at exactly 0, and the learning-rate experiment's named cases.
    "backward-blocks": (
        "Backward through whole blocks",
        "none",
        ("ffn_backward", "ffn_backward:residual=yes", "multi_head_backward", "residual_gradient",
         "relu_backward:at_zero=yes", "lr_experiment:rates=4"),
    ),
    # Stage 10's Exercise 4 with a calculator: SGD, momentum and Adam over five steps of the same gradients.
    "optimizer-race": (
        "SGD, momentum and Adam: a race over five steps",
        "basic",
        ("optimizer_race:steps=5",),
    ),
    # The book "Understanding Transformers: From First Principles to Mastery", in its chapter order: chapter 2's
    # matrix core (products, a rotation, dot products, the transpose and Q·Kᵀ, the gradient rules of C = A·B),
    # chapter 3's embedding lookup (2-d, no positions, as in the book), chapter 4 and Example 1's attention steps
    # (projections, scaled scores, softmax, the weighted values), then its six examples, with the book's own
    # embeddings, task A B → C and Example 4's three patterns where a type takes them (data=book).
    "book": (
        "Understanding Transformers, chapter by chapter",
        "basic",
        (
            "matmul:shape=2x2",
            "linear_map:kind=rotation",
            "dot_product",
            "transpose",
            "matmul_gradient",
            "embedding:tokens=2,d_model=2,positions=no",
            "qkv_projection:tokens=2,d_model=2,d_k=2",
            "attention_scores:tokens=2,d_k=4",
            "softmax:form=table",
            "attention_output:tokens=2",
            "example1:data=book",
            "example2:data=book",
            "example3:data=book",
            "example4:data=book",
            "example5:tokens=2,d_ff=2",  # the book's "2×2 case": W₁ and W₂ both 2×2
            "example6",
        ),
    ),
    "forward-steps": (
        "A transformer's forward pass, step by step",
        "basic",
        (
            "embedding",
            "qkv_projection",
            "attention_scores:mask=causal",
            "softmax:form=logs",
            "softmax:form=table",
            "attention_output",
            "multi_head",
            "ffn",
            "ffn_gelu",
            "layernorm",
            "cross_entropy",
            "output_logits",
        ),
    ),
}


def preset_problems(name: str) -> tuple[str, str, tuple[ProblemSpec, ...]]:
    """A preset's title, calculator policy and problem specs."""
    title, calculator, specs = PRESETS[name]
    return title, calculator, tuple(ProblemSpec.parse(s) for s in specs)
