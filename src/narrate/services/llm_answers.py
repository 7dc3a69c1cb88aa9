"""What the optional LLM is used for: rewording a narrative, and answering a question
about a dataset or model from its stored summaries, citing them.

Both always answer: when the LLM is off, fails, or answers something that cannot be
trusted (a changed number, no citation), the deterministic text comes back with a
``note`` saying why (``"source": "deterministic"``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from narrate.bootstrap import Container
from narrate.core.narrative.grounding import ungrounded_numbers
from narrate.errors import Conflict, InvalidInput
from narrate.services.datasets import Owner
from narrate.services.llm import LlmFailed, chat_json
from narrate.services.llm_config import llm_endpoint
from narrate.services.llm_context import Context, dataset_context, model_context
from narrate.storage.sql.visibility import visible_dataset, visible_model

__all__ = ["ask", "check_question", "reword"]

_REWORD_SYSTEM = (
    "You rewrite short explanations of data-analysis results for a reader who is not an "
    "expert. Use short sentences and plain words. Keep every number exactly as it is "
    "written, do not add any number, do not round, and do not add facts. Reply with one "
    'JSON object: {"text": "<the rewritten explanation>"}.'
)
_ASK_SYSTEM = (
    "You answer questions about one dataset or model using ONLY the numbered facts given. "
    "Every fact has an id such as F3. Cite the ids you used. If the facts do not answer the "
    "question, say so. Never write code and never invent numbers. Reply with one JSON "
    'object: {"answer": "<plain-language answer>", "citations": ["F1", ...]}.'
)


def reword(container: Container, narrative: dict[str, Any]) -> dict[str, Any]:
    """A narrative rewritten for a non-expert, with every number unchanged.

    Args:
        container: The services.
        narrative: ``{"text", "facts": [{"name", "value", "source"}]}``.

    Returns:
        ``{"text", "facts", "source": "llm"|"deterministic", "note"?}``; the LLM's text
        is used only when every number in it is one of the facts' values.
    """
    text, facts = str(narrative["text"]), list(narrative.get("facts") or [])
    fallback = {"text": text, "facts": facts, "source": "deterministic"}
    messages = [
        {"role": "system", "content": _REWORD_SYSTEM},
        {"role": "user", "content": json.dumps({"text": text, "facts": facts}, default=str)},
    ]
    try:
        answer = chat_json(container, messages)
    except LlmFailed as exc:
        return {**fallback, "note": exc.note}
    new = answer.get("text")
    if not isinstance(new, str) or not new.strip():
        return {**fallback, "note": "The LLM gave no text; this is the standard text."}
    changed = ungrounded_numbers(new, facts)
    if changed:
        return {
            **fallback,
            "note": "The LLM's rewording changed or added numbers ("
            + ", ".join(changed[:5])
            + "), so the standard text is shown.",
        }
    return {"text": new.strip(), "facts": facts, "source": "llm"}


def check_question(container: Container, question: str) -> str:
    """The question stripped, or 422 naming ``question``.

    Raises:
        InvalidInput: ``question_empty`` or ``question_too_long``.
    """
    limit = container.settings.llm_max_question_chars
    cleaned = question.strip()
    if not cleaned:
        raise InvalidInput(
            "The question is empty.",
            code="question_empty",
            hint="Ask something about the dataset or model, e.g. 'Which column is missing "
            "most often?'",
            details={"field": "question", "parameter": "question"},
        )
    if len(cleaned) > limit:
        raise InvalidInput(
            f"The question has {len(cleaned):,} characters; at most {limit:,} are accepted.",
            code="question_too_long",
            hint="Ask a shorter question (NARRATE_LLM_MAX_QUESTION_CHARS sets the limit).",
            details={"field": "question", "parameter": "question", "limit": limit},
        )
    return cleaned


def _prompt(ctx: Context, kind: str, question: str) -> list[dict[str, str]]:
    lines = [f"[{f['id']}] ({f['source']}) {f['name']}: {f['value']}" for f in ctx.facts]
    if ctx.columns_total > sum(1 for k in ctx.facts if k["name"].endswith(": kind")):
        lines.append(f"(only some of the {ctx.columns_total} columns are listed)")
    body = f"Facts about this {kind}:\n" + "\n".join(lines)
    if ctx.rows:
        body += "\n\nA few raw rows (for illustration only):\n" + json.dumps(ctx.rows)
    body += f"\n\nQuestion: {question}"
    return [{"role": "system", "content": _ASK_SYSTEM}, {"role": "user", "content": body}]


def _sent(ctx: Context) -> dict[str, Any]:
    return {"kinds": list(ctx.kinds), "facts": len(ctx.facts), "raw_rows": len(ctx.rows)}


def _citation(fact: dict[str, Any]) -> dict[str, Any]:
    return {k: fact[k] for k in ("id", "source", "name", "value")}


def _deterministic(ctx: Context, note: str) -> dict[str, Any]:
    """The stored narrative as the answer, citing itself."""
    if ctx.narratives:
        first = ctx.narratives[0]
        fact = next(f for f in ctx.facts if f["id"] == first["id"])
        answer, citations = str(first["text"]), [_citation(fact)]
    else:
        answer, citations = "There is no stored narrative to show.", []
    return {
        "answer": answer,
        "citations": citations,
        "source": "deterministic",
        "note": note,
        "sent": _sent(ctx),
    }


def ask(
    container: Container,
    owner: Owner,
    context_kind: Literal["dataset", "model"],
    context_id: str,
    question: str,
) -> dict[str, Any]:
    """Answer a question about a dataset or model from its stored summaries only.

    Args:
        container: The services.
        owner: The caller (who must see the record).
        context_kind: ``"dataset"`` or ``"model"``.
        context_id: Its id.
        question: Plain text, at most ``NARRATE_LLM_MAX_QUESTION_CHARS`` characters.

    Returns:
        ``{"answer", "citations": [{"id", "source", "name", "value"}], "source",
        "note"?, "sent": {"kinds", "facts", "raw_rows"}}``.

    Raises:
        NotFound: No such dataset/model for this caller (checked first).
        InvalidInput: ``question_empty`` / ``question_too_long``.
        Conflict: ``llm_off`` when no LLM endpoint is configured.
    """
    with container.db.session() as s:
        if context_kind == "dataset":
            visible_dataset(s, owner, context_id)
        else:
            visible_model(s, owner, context_id)
    cleaned = check_question(container, question)
    if llm_endpoint(container) is None:
        raise Conflict(
            "The LLM is off, so questions cannot be answered.",
            code="llm_off",
            hint="An admin can turn it on with PUT /api/v1/admin/llm (or set "
            "NARRATE_LLM_BASE_URL, e.g. http://localhost:11434/v1 for a local Ollama). "
            "The narratives and recommendations work without it.",
        )
    builder = dataset_context if context_kind == "dataset" else model_context
    ctx = builder(container, owner, context_id, cleaned)
    try:
        answer = chat_json(container, _prompt(ctx, context_kind, cleaned))
    except LlmFailed as exc:
        return _deterministic(ctx, exc.note)
    text, cited = answer.get("answer"), answer.get("citations")
    if not isinstance(text, str) or not text.strip():
        return _deterministic(ctx, "The LLM gave no answer; this is the stored narrative.")
    by_id = {f["id"]: f for f in ctx.facts}
    ids = [c for c in cited if isinstance(c, str)] if isinstance(cited, list) else []
    known = [by_id[i] for i in dict.fromkeys(i.strip() for i in ids) if i in by_id]
    if not known:
        return _deterministic(
            ctx, "The LLM's answer cited none of the facts it was given, so it is not shown."
        )
    return {
        "answer": text.strip(),
        "citations": [_citation(f) for f in known],
        "source": "llm",
        "sent": _sent(ctx),
    }
