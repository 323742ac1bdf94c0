"""A scripted 'model' behind FakeOpenAI: answers by schema name, deterministic, inspectable."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

REPLY_TAG = re.compile(r"<untrusted_email>\s*(.*?)\s*</untrusted_email>", re.S)


class ScriptedModel:
    """Answers FirstDraft / ReplyDraft / Classification requests the way a careful model would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.classification: dict[str, Any] | None = None
        """When set, every classification returns this."""
        self.drafts: list[dict[str, Any]] = []
        """Answers for the next FirstDraft / ReplyDraft requests, used up in order before the default drafts."""

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | str:
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name", "")
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        with self.lock:
            self.calls.append({"schema": schema, "system": system, "user": user})
            number = len(self.calls)
            queued = self.drafts.pop(0) if schema in ("FirstDraft", "ReplyDraft") and self.drafts else None
        if queued is not None:
            return queued
        if schema in ("FirstDraft", "ReplyDraft") and re.search(r"write the whole email in Russian", system):
            return self._russian(schema, user, number)
        if schema == "FirstDraft":
            feedback = re.search(r"The user reviewed an earlier draft and asks: (.*)", user)
            extra = f" (revised: {feedback.group(1).strip()})" if feedback else ""
            return {"subject": f"An idea for you #{number}",
                    "body": f"Hello,\n\nThis is the first email draft {number}{extra}."}
        if schema == "ReplyDraft":
            if "Write follow-up number" in user:
                n = re.search(r"follow-up number (\d+)", user).group(1)
                return {"body": f"Just following up ({n}). Draft {number}."}
            feedback = re.search(r"The user reviewed an earlier draft and asks: (.*)", user)
            extra = f" (revised: {feedback.group(1).strip()})" if feedback else ""
            return {"body": f"Thanks for your reply. Answer draft {number}{extra}."}
        if schema == "ReturnDate":
            found = re.search(r"\d{4}-\d{2}-\d{2}", REPLY_TAG.findall(user)[-1] if REPLY_TAG.findall(user) else "")
            return {"return_date": found.group(0) if found else None}
        if schema == "Classification":
            if self.classification is not None:
                return self.classification
            return self._classify(user)
        return "plain answer"

    @staticmethod
    def _russian(schema: str, user: str, number: int) -> dict[str, Any]:
        """A careful model writes in the language the prompt asks for."""
        if schema == "FirstDraft":
            return {"subject": f"Идея для вас #{number}",
                    "body": f"Здравствуйте!\n\nЭто первый черновик письма {number}."}
        if "Write follow-up number" in user:
            n = re.search(r"follow-up number (\d+)", user).group(1)
            return {"body": f"Напоминаю о себе ({n}). Черновик номер {number}."}
        return {"body": f"Спасибо за ваш ответ. Вот черновик ответа номер {number}."}

    @staticmethod
    def _classify(user: str) -> dict[str, Any]:
        replies = REPLY_TAG.findall(user)
        text = replies[-1].lower() if replies else ""
        rules = [("not interested", "not_interested", 0.95), ("meeting", "meeting_request", 0.9),
                 ("?", "question", 0.9), ("interested", "interested", 0.9), ("wrong person", "wrong_person", 0.9)]
        for needle, intent, confidence in rules:
            if needle in text:
                return {"intent": intent, "confidence": confidence, "reason": f"The reply says '{needle}'.",
                        "out_of_office_until": None}
        return {"intent": "unclear", "confidence": 0.3, "reason": "Cannot tell.", "out_of_office_until": None}

    def schemas(self) -> list[str]:
        """The schema names asked for, in order."""
        with self.lock:
            return [c["schema"] for c in self.calls]


def dumps(obj: Any) -> str:
    """JSON for debugging output."""
    return json.dumps(obj, indent=1, default=str)
