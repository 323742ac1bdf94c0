"""Language detection: English, Russian, mixed, very short and empty text, and a few other languages."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from agent.guard import language


@pytest.mark.parametrize(("text", "code"), [
    ("Thanks for reaching out. Could you send me a short overview I can forward to my team?", "en"),
    ("Спасибо за письмо. Пришлите, пожалуйста, короткую презентацию, я перешлю её команде.", "ru"),
    ("Vielen Dank für Ihre Nachricht. Bitte melden Sie sich im dritten Quartal noch einmal.", "de"),
    ("Me interesa. ¿Cuánto cuesta por usuario al mes? Envíame más información, por favor.", "es"),
    ("Merci, mais ce n'est pas pour nous en ce moment. Recontactez-moi l'année prochaine.", "fr"),
    ("Дякую, цікаво. Надішліть, будь ласка, коротку презентацію для нашої команди.", "uk"),
    ("Thanks, not now.", "en"),
    ("Спасибо, не сейчас.", "ru"),
])
def test_detects_the_language(text, code):
    assert language.detect(text) == code


@pytest.mark.parametrize("text", ["", None, "   ", "?", "ok", "STOP", "СТОП", "Да", "12:30", "https://cal.com/x"])
def test_very_short_or_empty_text_is_not_told(text):
    assert language.detect(text) is None


def test_mixed_text_gives_the_share_of_each_language():
    text = ("Hello Anna, thanks a lot for the detailed email, it was very helpful for our team. "
            "Давайте созвонимся в четверг после обеда и обсудим детали внедрения.")
    shares = language.shares(text)
    assert set(shares) == {"en", "ru"}
    assert abs(sum(shares.values()) - 1) < 1e-9
    assert language.dominant([text, "Спасибо, жду приглашения на встречу в четверг."]) == "ru"


def test_dominant_of_nothing_is_none():
    assert language.dominant(["", "ok", None]) is None


@pytest.mark.parametrize(("setting", "code"), [("match", None), ("", None), ("Russian", "ru"), ("русский", "ru"),
                                               ("de", "de"), ("French", "fr"), ("Klingon", None)])
def test_persona_language_setting_to_code(setting, code):
    assert language.code_for(setting) == code


def test_expected_language_of_a_draft():
    assert language.expected("German", latest_inbound="Hi, thanks a lot, that sounds interesting!") == "de"
    assert language.expected("match", latest_inbound="Спасибо, звучит интересно, расскажите подробнее.") == "ru"
    assert language.expected("match", recipient_language="es") == "es"
    assert language.expected("match") == "en"
    assert language.expected("match", latest_inbound="ok") is None


def test_detector_is_built_once_and_not_at_import():
    fresh = importlib.reload(language)
    assert fresh._detector is None
    assert fresh.detector() is fresh.detector()


def test_importing_the_guard_loads_no_model():
    code = "import sys, agent.guard; assert not {'lingua', 'snowballstemmer'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
