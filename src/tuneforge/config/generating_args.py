"""Generation group: sampling settings for chat, the API and predictions."""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.config.fields import opt


@dataclass
class GeneratingArguments:
    do_sample: bool = opt(True, "Sample; off means greedy decoding.")
    temperature: float = opt(0.95, "Sampling temperature.")
    top_p: float = opt(0.7, "Nucleus sampling: keep the smallest set of tokens with this probability.")
    top_k: int = opt(50, "Keep the k most likely tokens.")
    num_beams: int = opt(1, "Beam search width (1 = none).")
    max_length: int = opt(1024, "Longest prompt + answer, in tokens (max_new_tokens wins when set).")
    max_new_tokens: int = opt(1024, "Longest answer, in tokens.")
    repetition_penalty: float = opt(1.0, "Penalty for repeated tokens (1.0 = none).")
    length_penalty: float = opt(1.0, "Length penalty for beam search.")
    skip_special_tokens: bool = opt(True, "Hide special tokens in answers.")

    def to_generate_kwargs(self) -> dict:
        kw = {
            "do_sample": self.do_sample,
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "num_beams": self.num_beams,
        }
        if self.do_sample:
            kw.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        if self.num_beams > 1:
            kw["length_penalty"] = self.length_penalty
        return kw
