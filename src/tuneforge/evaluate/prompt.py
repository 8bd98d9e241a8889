"""Questions → conversations: the en / zh wrapper text (LLaMA-Factory's eval templates) and n-shot history."""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.data.conversation import ASSISTANT, USER, Conversation, Message
from tuneforge.errors import UserError
from tuneforge.evaluate.tasks import CHOICES, Question, Subject, Task


@dataclass(frozen=True)
class Wrapper:
    system: str  # before the first question; {subject} is the subject's name
    choice: str  # one line per choice
    answer: str  # after the choices; the model's reply is the letter


WRAPPERS = {
    "en": Wrapper(
        system="The following are multiple choice questions (with answers) about {subject}.\n\n",
        choice="\n{choice}. {content}",
        answer="\nAnswer:",
    ),
    "zh": Wrapper(
        system="以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n",
        choice="\n{choice}. {content}",
        answer="\n答案：",
    ),
}


def get_wrapper(lang: str) -> Wrapper:
    if lang not in WRAPPERS:
        raise UserError(f"unknown lang '{lang}'", where="lang", fix=f"use one of: {', '.join(WRAPPERS)}")
    return WRAPPERS[lang]


def format_question(q: Question, wrapper: Wrapper) -> str:
    choices = "".join(wrapper.choice.format(choice=c, content=t) for c, t in zip(CHOICES, q.choices, strict=True))
    return q.question + choices + wrapper.answer


def build_conversation(q: Question, shots: list[Question], subject_name: str, wrapper: Wrapper) -> Conversation:
    """Shots as earlier user/assistant turns, then the question; the last turn is the question (no answer)."""
    messages: list[Message] = []
    for shot in shots:
        messages += [Message(USER, format_question(shot, wrapper)), Message(ASSISTANT, shot.answer)]
    messages.append(Message(USER, format_question(q, wrapper)))
    messages[0] = Message(USER, wrapper.system.format(subject=subject_name) + messages[0].content)
    return Conversation(messages=messages, source=q.where)


def task_to_alpaca(task: Task, lang: str = "en", split: str | None = None) -> list[dict]:
    """Zero-shot alpaca rows (instruction = the wrapped question, output = the letter): a task's split as SFT data,
    in exactly the prompt format `tuneforge eval` scores with n_shot 0."""
    wrapper = get_wrapper(lang)
    split = split or task.split
    rows = []
    for subject in task.subjects:
        for q in _split_of(subject, split):
            conv = build_conversation(q, [], subject.name, wrapper)
            rows.append({"instruction": conv.messages[0].content, "input": "", "output": q.answer})
    return rows


def _split_of(subject: Subject, split: str) -> list[Question]:
    if split not in subject.splits:
        raise UserError(f"split '{split}' of subject '{subject.key}' was not loaded", where="task")
    return subject.splits[split]
