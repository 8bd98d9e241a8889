"""Adam-mini (`use_adam_mini`, the adam-mini package): one second-moment value per parameter block (an attention
head, an output neuron, a whole norm) instead of one per weight, so about half of Adam's optimizer memory.

Built as LLaMA-Factory builds it: from the named parameters, with the model's hidden size and (key / value) head
counts, which Adam-mini uses to cut q_proj / k_proj into heads. That cut needs whole weight matrices, so LoRA is
refused at config load (config/validate.py); full and freeze fine-tuning work.
"""

from __future__ import annotations

from tuneforge.utils.logging import get_logger

logger = get_logger(__name__)


def adam_mini_optimizer(model, args):
    """Adam-mini for `model`'s trainable parameters under the Trainer's arguments `args`."""
    from adam_mini import Adam_mini  # late: an optional package, needed only with use_adam_mini

    config = model.config.get_text_config()  # a vision-language model: its language model's sizes
    optimizer = Adam_mini(
        named_parameters=model.named_parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
        dim=config.hidden_size,
        n_heads=config.num_attention_heads,
        n_kv_heads=getattr(config, "num_key_value_heads", None),
        verbose=False,  # else it prints a line per parameter and per block kind
    )
    logger.info("Adam-mini over %d parameter blocks", len(optimizer.param_groups))
    return optimizer
