"""Images and videos in the data (data/media.py through formats.py): LF's mllm_demo as it is, the placeholder rule,
missing files, OpenAI image_url parts (path, base64, http refused), media_dir, and the one-line refusal where a stage
would train on them."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from tuneforge.config.data_args import DataArguments
from tuneforge.data.conversation import ASSISTANT, USER, Conversation, Message
from tuneforge.data.formats import load_conversations
from tuneforge.data.registry import get_dataset_attrs
from tuneforge.data.stage_sets import encode_for_stage
from tuneforge.data.streaming import iter_conversations
from tuneforge.errors import UserError

LF_DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "lf_mllm_demo"  # LF 0.9.5's data/mllm_demo*, as is
SHAREGPT_IMAGES = {
    "formatting": "sharegpt",
    "columns": {"messages": "messages", "images": "images"},
    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
}
PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478da63f8cfc0000003010100"
        "c9fe92ef0000000049454e44ae426082"
    )
).decode()
DATA_URL = "data:image/png;base64," + PNG_1X1


def load(folder: Path, rows: list[dict] | None, entry: dict, name: str = "d", **data_args) -> list[Conversation]:
    if rows is not None:
        # one row a line: row i is on line i + 2
        (folder / f"{name}.json").write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
        (folder / "dataset_info.json").write_text(json.dumps({name: {"file_name": f"{name}.json", **entry}}))
    [attr] = get_dataset_attrs(name, folder)
    return load_conversations(attr, folder, DataArguments(dataset_dir=str(folder), **data_args))


def turns(*texts: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def error_of(call) -> UserError:
    with pytest.raises(UserError) as caught:
        call()
    assert "\n" not in str(caught.value)
    return caught.value


def test_lf_mllm_demo_reads_as_it_is_with_its_images_resolved():
    convs = load(LF_DEMO, None, {}, name="mllm_demo")
    demo = json.loads((LF_DEMO / "mllm_demo.json").read_text())
    assert len(convs) == len(demo) == 6
    for conv, row in zip(convs, demo, strict=True):
        assert conv.images == [str(LF_DEMO / p) for p in row["images"]] and conv.videos == []
        assert [m.content for m in conv.messages] == [m["content"] for m in row["messages"]]  # placeholders kept
    first = convs[0]
    assert first.source.endswith("mllm_demo.json:2")
    assert (
        first.messages[0].content == "<image>Who are they?"
        and first.messages[2].content == "What are they doing?<image>"
    )
    assert first.images == [str(LF_DEMO / "mllm_demo_data" / "1.jpg")] * 2


def test_placeholder_count_must_match_the_images(tmp_path):
    shutil.copy(LF_DEMO / "mllm_demo_data" / "1.jpg", tmp_path / "a.jpg")
    rows = [
        {"messages": turns("<image>Hi", "Hello"), "images": "a.jpg"},  # a string is one image (LF)
        {"messages": turns("<image>Hi <image>", "Hello"), "images": ["a.jpg"]},
    ]
    err = error_of(lambda: load(tmp_path, rows, SHAREGPT_IMAGES))
    assert err.where == f"{tmp_path / 'd.json'}:3"  # the second row, by its line
    assert "the row has 1 image(s) but 2 <image> placeholder(s) in its turns" in err.message
    assert "one <image>" in err.fix
    # a text-only row of an image dataset needs no placeholder; a stray one is the same error
    rows = [{"messages": turns("Hi", "Hello"), "images": []}, {"messages": turns("<image> Hi", "Hello")}]
    err = error_of(lambda: load(tmp_path, rows, SHAREGPT_IMAGES))
    assert "0 image(s) but 1 <image>" in err.message and err.where.endswith("d.json:3")


def test_videos_count_their_own_placeholder_and_may_be_frame_lists(tmp_path):
    for name in ("f1.jpg", "f2.jpg", "clip.mp4"):
        (tmp_path / name).write_bytes(b"x")
    entry = {**SHAREGPT_IMAGES, "columns": {"messages": "messages", "videos": "videos"}}
    [conv] = load(tmp_path, [{"messages": turns("<video>What?", "A clip."), "videos": ["clip.mp4"]}], entry)
    assert conv.videos == [str(tmp_path / "clip.mp4")] and conv.images == []
    [conv] = load(tmp_path, [{"messages": turns("<video>What?", "Frames."), "videos": [["f1.jpg", "f2.jpg"]]}], entry)
    assert conv.videos == [[str(tmp_path / "f1.jpg"), str(tmp_path / "f2.jpg")]]
    err = error_of(lambda: load(tmp_path, [{"messages": turns("What?", "No."), "videos": ["clip.mp4"]}], entry))
    assert "1 video(s) but 0 <video> placeholder(s)" in err.message


def test_pairwise_rows_check_the_prompt_with_each_reply(tmp_path):
    shutil.copy(LF_DEMO / "mllm_demo_data" / "2.jpg", tmp_path / "b.jpg")
    entry = {**SHAREGPT_IMAGES, "ranking": True}
    entry["columns"] = {**entry["columns"], "chosen": "chosen", "rejected": "rejected"}
    row = {
        "messages": turns("<image>Who?"),
        "chosen": {"role": "assistant", "content": "Muller."},
        "rejected": {"role": "assistant", "content": "<image> Nobody."},
        "images": ["b.jpg"],
    }
    err = error_of(lambda: load(tmp_path, [row], entry))
    assert "1 image(s) but 2 <image> placeholder(s) in its turns (prompt + rejected reply)" in err.message
    row["rejected"]["content"] = "Nobody."
    [conv] = load(tmp_path, [row], entry)
    assert conv.images == [str(tmp_path / "b.jpg")] and conv.rejected.content == "Nobody."


def test_a_missing_file_is_one_line_naming_the_row_and_path(tmp_path):
    rows = [{"messages": turns("<image>Hi", "Hello"), "images": ["pics/nope.jpg"]}]
    err = error_of(lambda: load(tmp_path, rows, SHAREGPT_IMAGES))
    assert err.where == f"{tmp_path / 'd.json'}:2"
    assert err.message == f"image file not found: pics/nope.jpg (looked in {tmp_path} and as given)"
    assert "media_dir" in err.fix


def test_media_dir_is_where_relative_paths_are_read_from(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(LF_DEMO / "mllm_demo_data" / "3.jpg", media / "3.jpg")
    rows = [{"messages": turns("<image>Describe", "A speech."), "images": ["3.jpg"]}]
    with pytest.raises(UserError, match="image file not found: 3.jpg"):  # not in dataset_dir (LF's default)
        load(tmp_path, rows, SHAREGPT_IMAGES)
    [conv] = load(tmp_path, None, {}, media_dir=str(media))
    assert conv.images == [str(media / "3.jpg")]
    # an absolute path is used as it is
    [conv] = load(tmp_path, [{"messages": turns("<image>x", "y"), "images": [str(media / "3.jpg")]}], SHAREGPT_IMAGES)
    assert conv.images == [str(media / "3.jpg")]


def test_alpaca_rows_take_images_too(tmp_path):
    shutil.copy(LF_DEMO / "mllm_demo_data" / "1.jpg", tmp_path / "a.jpg")
    entry = {"columns": {"prompt": "instruction", "response": "output", "images": "images"}}
    [conv] = load(tmp_path, [{"instruction": "<image>Who?", "output": "Kane.", "images": ["a.jpg"]}], entry)
    assert conv.messages == [Message(USER, "<image>Who?"), Message(ASSISTANT, "Kane.")]
    assert conv.images == [str(tmp_path / "a.jpg")]


def openai_row(*user_parts, reply: str = "A photo.") -> dict:
    return {"messages": [{"role": "user", "content": list(user_parts)}, {"role": "assistant", "content": reply}]}


def test_openai_image_url_parts_become_placeholders_where_they_stand(tmp_path):
    shutil.copy(LF_DEMO / "mllm_demo_data" / "1.jpg", tmp_path / "a.jpg")
    row = openai_row(
        {"type": "text", "text": "Compare "},
        {"type": "image_url", "image_url": {"url": "a.jpg"}},
        {"type": "text", "text": " with "},
        {"type": "image_url", "image_url": {"url": DATA_URL}},
        {"type": "text", "text": "."},
    )
    [conv] = load(tmp_path, [row], {"formatting": "openai"})
    assert conv.messages[0].content == "Compare <image> with <image>."
    assert conv.images == [str(tmp_path / "a.jpg"), DATA_URL]  # the data URL is kept, not decoded
    # a text-only openai dataset is untouched by the placeholder rule
    [conv] = load(tmp_path, [{"messages": turns("What is <image> in HTML?", "A tag.")}], {"formatting": "openai"})
    assert conv.images == [] and conv.messages[0].content == "What is <image> in HTML?"


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://10.0.0.1/x.jpg"])
def test_openai_web_image_urls_are_refused_in_one_line(tmp_path, url):
    row = openai_row({"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "What?"})
    err = error_of(lambda: load(tmp_path, [row], {"formatting": "openai"}))
    assert err.message == f"image {url} is a web address: media are not downloaded while reading data"
    assert err.where.endswith("d.json:2") and "download the file" in err.fix


def test_openai_parts_that_are_not_text_or_media_and_bad_data_urls(tmp_path):
    row = openai_row({"type": "input_audio", "input_audio": {}})
    assert (
        "unknown content part type 'input_audio'"
        in error_of(lambda: load(tmp_path, [row], {"formatting": "openai"})).message
    )
    row = openai_row({"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}})
    err = error_of(lambda: load(tmp_path, [row], {"formatting": "openai"}))
    assert "a image data URL must start data:image/<type>;base64," in err.message


def test_streaming_reads_media_with_media_dir(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(LF_DEMO / "mllm_demo_data" / "2.jpg", media / "2.jpg")
    load(
        tmp_path,
        [{"messages": turns("<image>Who?", "Muller."), "images": ["2.jpg"]}],
        SHAREGPT_IMAGES,
        media_dir=str(media),
    )
    [attr] = get_dataset_attrs("d", tmp_path)
    args = DataArguments(dataset_dir=str(tmp_path), media_dir=str(media), streaming=True)
    [conv] = list(iter_conversations(attr, args))
    assert conv.images == [str(media / "2.jpg")]


def test_a_stage_refuses_rows_with_images_in_one_line_naming_the_row(tiny_tokenizer):
    from tuneforge.data.template import get_template

    template = get_template("qwen", tiny_tokenizer)
    convs = load(LF_DEMO, None, {}, name="mllm_demo")
    reasons = {"sft": "the model is a text model", "pt": "stage pt does not train on images"}
    for stage, reason in reasons.items():
        err = error_of(lambda stage=stage: encode_for_stage(stage, convs, template, tiny_tokenizer, DataArguments()))
        assert err.where == convs[0].source
        assert err.message == f"the row has 2 image(s): {reason}"
    text_only = [Conversation([Message(USER, "Hi"), Message(ASSISTANT, "Hello")])]
    columns, _ = encode_for_stage("sft", text_only, template, tiny_tokenizer, DataArguments())
    assert len(columns["input_ids"]) == 1


def test_training_on_the_lf_demo_stops_at_the_first_row_with_images(tmp_path, tiny_model_dir, capsys):
    """A text model given LF's demo stops in one line where the sft stage encodes it, naming the row, instead of
    training on the text around the images."""
    from tuneforge.cli import main

    overrides = {
        "model_name_or_path": tiny_model_dir,
        "dataset_dir": LF_DEMO,
        "dataset": "mllm_demo",
        "template": "qwen",
        "output_dir": tmp_path / "out",
        "max_steps": 1,
        "image_max_pixels": 4096,
    }
    assert main(["train", *(f"{k}={v}" for k, v in overrides.items())]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        f"tuneforge: error: {LF_DEMO / 'mllm_demo.json'}:2: the row has 2 image(s): the model is a text"
    )


@pytest.mark.parametrize("extra", [{"preprocessing_num_workers": 2}, {"streaming": True}])
def test_the_refusal_is_the_same_line_from_workers_and_the_stream(tiny_tokenizer, extra):
    from tuneforge.data.loader import get_stage_datasets
    from tuneforge.data.template import get_template

    args = DataArguments(dataset="mllm_demo", dataset_dir=str(LF_DEMO), preprocessing_batch_size=2, **extra)
    err = error_of(lambda: get_stage_datasets("sft", args, get_template("qwen", tiny_tokenizer), tiny_tokenizer))
    assert err.where == f"{LF_DEMO / 'mllm_demo.json'}:2"
    assert err.message == "the row has 2 image(s): the model is a text model"
