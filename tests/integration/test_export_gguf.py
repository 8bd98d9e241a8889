"""`tuneforge export export_format=gguf`: the GGUF file holds the merged weights under llama.cpp's names, the
hyperparameters and the tokenizer; llama.cpp (llama-cpp-python) loads it and continues a prompt as transformers
does. Plus the Ollama Modelfile built from the training template."""

from __future__ import annotations

import pytest

from tuneforge.config import load_config
from tuneforge.export.run import run_export

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPT = [{"role": "user", "content": "Who are you? Add 2 and 3. 你是谁？"}]


def make_cfg(**keys):
    return load_config(None, [f"{k}={v}" for k, v in keys.items()])


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def exported(request, tmp_path_factory):
    """(hf export folder, {gguf type: gguf file}) of one tiny model + a random non-zero LoRA adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tuneforge.model.tiny import create_tiny_model

    root = tmp_path_factory.mktemp(f"gguf-{request.param}")
    base = create_tiny_model(root / "base", arch=request.param)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(root / "adapter")
    keys = {"model_name_or_path": base, "adapter_name_or_path": root / "adapter", "template": "qwen"}
    hf = run_export(make_cfg(**keys, export_dir=root / "hf"))
    files = {
        kind: run_export(make_cfg(**keys, export_dir=root / kind, export_format="gguf", export_gguf_type=kind))
        / "model.gguf"
        for kind in ("f32", "f16", "q8_0")
    }
    return request.param, hf, files


def llama_cpp_rows(w, n_head: int):
    """HF's rotary row order (per head: first halves, then second halves) → llama.cpp's interleaved pairs."""
    import numpy as np

    d = w.shape[0] // n_head
    order = [h * d + (i // 2) + (d // 2) * (i % 2) for h in range(n_head) for i in range(d)]
    return w[np.array(order)]


def hf_reference(hf_dir):
    """llama.cpp name → numpy array, computed from the HF export with names written out by hand."""
    import json

    from safetensors.numpy import load_file

    config = json.loads((hf_dir / "config.json").read_text())
    state = load_file(hf_dir / "model.safetensors")
    short = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    out = {}
    for name, data in state.items():
        if name == "model.embed_tokens.weight":
            out["token_embd.weight"] = data
        elif name == "model.norm.weight":
            out["output_norm.weight"] = data
        elif name == "lm_head.weight":
            out["output.weight"] = data
        else:
            _, _, layer, rest = name.split(".", 3)
            module, kind = rest.rsplit(".", 1)
            if config["model_type"] == "llama" and module in ("self_attn.q_proj", "self_attn.k_proj"):
                heads = config["num_attention_heads" if "q_proj" in module else "num_key_value_heads"]
                data = llama_cpp_rows(data, heads)
            out[f"blk.{layer}.{short[module]}.{kind}"] = data
    return config, out


def test_gguf_round_trip(exported):
    import gguf
    import numpy as np
    from transformers import AutoTokenizer

    arch, hf, files = exported
    config, want = hf_reference(hf)
    tokenizer = AutoTokenizer.from_pretrained(hf)
    for kind, file in files.items():
        reader = gguf.GGUFReader(file)
        got = {t.name: t for t in reader.tensors}
        assert got.keys() == want.keys(), kind
        for name, ref in want.items():
            t = got[name]
            values = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ref.shape)
            if kind == "f32" or ref.ndim == 1:
                assert np.array_equal(values, ref), (kind, name)
            elif kind == "f16":
                assert np.array_equal(values, ref.astype(np.float16).astype(np.float32)), (kind, name)
            else:  # q8_0: blocks of 32, one f16 scale: error at most half a step (+ the scale rounded to f16)
                assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0
                step = np.abs(ref.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
                assert (np.abs(values - ref).reshape(-1, 32) <= step * 0.57 + 1e-7).all(), (kind, name)
        fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
        assert fields["general.architecture"] == arch
        assert fields[f"{arch}.block_count"] == config["num_hidden_layers"]
        assert fields[f"{arch}.attention.head_count_kv"] == config["num_key_value_heads"]
        assert fields["tokenizer.ggml.tokens"][:100] == tokenizer.convert_ids_to_tokens(list(range(100)))
        assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
        assert fields["tokenizer.ggml.pre"] == "qwen2"
        assert fields["tokenizer.chat_template"] == tokenizer.chat_template


def _greedy_hf(hf_dir, ids, n):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
        logits = model(torch.tensor([ids])).logits[0, -1].numpy()
    return out[0, len(ids) :].tolist(), logits


def _greedy_llama_cpp(file, ids, n):
    import numpy as np
    from llama_cpp import Llama

    f32 = 0  # GGML_TYPE_F32: an f32 KV cache (llama.cpp's default is f16), so f32 weights compare at 1e-4
    llm = Llama(
        model_path=str(file), n_ctx=256, n_threads=1, n_batch=64, logits_all=True, type_k=f32, type_v=f32, verbose=False
    )
    llm.eval(ids)
    logits = np.array(llm.scores[llm.n_tokens - 1])
    out = []
    for _ in range(n):
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval([out[-1]])
    return out, logits, llm


@pytest.mark.llama_cpp  # llama-cpp-python compiles llama.cpp on install: make test-all
def test_llama_cpp_continues_like_transformers(exported):
    import numpy as np
    from transformers import AutoTokenizer

    _, hf, files = exported
    tokenizer = AutoTokenizer.from_pretrained(hf)
    text = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(text, add_special_tokens=False)
    want, want_logits = _greedy_hf(hf, ids, 16)
    for kind in ("f32", "f16", "q8_0"):
        got, logits, llm = _greedy_llama_cpp(files[kind], ids, 16)
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids, kind  # same tokenizer
        if kind == "f32":
            assert np.abs(logits - want_logits).max() < 1e-4
        if kind in ("f32", "f16"):
            assert got == want, kind
        else:  # q8_0: fed transformers' continuation, llama.cpp's next-token choice mostly agrees
            llm.reset()
            llm.eval(ids + want)
            forced = [int(np.argmax(llm.scores[len(ids) - 1 + k])) for k in range(len(want))]
            agree = sum(a == b for a, b in zip(forced, want, strict=True))
            assert agree >= 0.75 * len(want), (forced, want)


def test_modelfile(exported):
    from transformers import AutoTokenizer

    from tuneforge.data.template import get_template

    _, hf, files = exported
    text = (files["f16"].parent / "Modelfile").read_text()
    template = get_template("qwen", AutoTokenizer.from_pretrained(hf))
    assert text.startswith("FROM ./model.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"' in text
    assert f'SYSTEM """{template.default_system}"""' in text
    assert "<|im_start|>user\n{{ .Content }}<|im_end|>\n<|im_start|>assistant\n" in text
