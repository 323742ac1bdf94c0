"""The new text of an inbound email: readable text from HTML, and the reply without its quoted history and signature."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

# mail-parser-reply knows the reply headers of many mail clients and languages; it lacks Russian
# and its signature rules cut at any "Thanks,", so those parts are done here.
from mailparser_reply.parser import EmailMessage as ReplyText

if TYPE_CHECKING:
    from bs4.element import PageElement, Tag

log = logging.getLogger(__name__)

_REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")
_BLANK_RUN_RE = re.compile(r"\n{3,}")
_SPACES_RE = re.compile(r"\s+")
# Quote headers the library misses: Russian clients, localized Gmail ("..., Name <a@b>:"), separators.
_QUOTE_START_RES = (
    re.compile(r"^(?=[^\n]*\d)[^\n]*(?:wrote|escribió|a écrit|schrieb|ha scritto|schreef|escreveu"
               r"|написал\(а\)|написала|написал|пишет)[^\n]{0,120}:[ \t]*$", re.M | re.I),
    re.compile(r"^(?=[^\n]*\d)[^\n]*<[^<>\s@]+@[^<>\s]+>\)?[ \t]*:[ \t]*$", re.M),
    re.compile(r"^[>* ]*(?:От|От кого|From)[ \t]*:[^\n]*\n[>* ]*(?:Отправлено|Дата|Кому|Тема|Sent|Date)[ \t]*:",
               re.M | re.I),
    re.compile(r"^[> ]*-{2,}[ \t]*(?:Original Message|Forwarded message|Исходное сообщение|Пересылаемое сообщение"
               r"|Ursprüngliche Nachricht|Message d'origine|Mensaje original)[ \t]*-{2,}[ \t]*$", re.M | re.I),
    re.compile(r"^[ \t]*_{20,}[ \t]*$", re.M),
)
_SIG_DELIMITER_RE = re.compile(r"^--[ \t]*$|^(?:sent from my|get outlook for|отправлено (?:с|из)\b)", re.M | re.I)
_SIGN_OFF_RE = re.compile(
    r"^(?:best(?: regards| wishes)?|kind regards|warm regards|regards|many thanks|thanks(?: again)?|thank you"
    r"|cheers|sincerely|yours(?: truly| sincerely)?|с уважением|спасибо|всего доброго|всего хорошего|благодарю"
    r"|с наилучшими пожеланиями|mit freundlichen grüßen|viele grüße|beste grüße|cordialement|bien à vous"
    r"|saludos|un saludo|atentamente|cordiali saluti)[ \t]*[,.!]*[ \t]*$", re.I)
_SIGN_OFF_MAX_TAIL = 4
_PROBE_CHARS, _PROBE_LINE = 50_000, 300
_HTML_PARAGRAPHS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr")
_HTML_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})
_HTML_LINES = ("div", "li", "tr", "dt", "dd", "section", "article", "header", "footer", "address")
_LINE_MARK, _PARAGRAPH_MARK = "\x1e", "\x1f"  # placeholders; \s+ folding removes any from the source text
_BREAK_RUN_RE = re.compile(r"[ \t]*[\x1e\x1f\n][\x1e\x1f\n \t]*")
_HTML_QUOTES = ("div.gmail_quote", "div.gmail_quote_container", "div.gmail_signature",
                "div[data-smartmail=gmail_signature]", "blockquote", "div.yahoo_quoted", "div.moz-cite-prefix",
                "div.moz-signature", "pre.moz-signature")
_HTML_CUT_FROM = "#appendonsend, #divRplyFwdMsg, #mail-editor-reference-message-container, div.OutlookMessageHeader"


def html_to_text(markup: str, *, drop_quotes: bool = False) -> str:
    """Readable text from HTML; with drop_quotes, quoted history and signature containers are removed."""
    # BeautifulSoup (with the stdlib html.parser, no lxml) both drops quote/signature containers by class/id and
    # extracts text; html2text would still need a DOM for that and emits Markdown escapes. Loaded on first use.
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    if drop_quotes:
        for marker in soup.select(_HTML_CUT_FROM):
            for sibling in list(marker.find_next_siblings()):
                sibling.decompose()
            marker.decompose()
        for node in soup.select(", ".join(_HTML_QUOTES)):
            node.decompose()
    text = _BREAK_RUN_RE.sub(_break_for, "".join(_render(soup)))
    return tidy(text.replace(_LINE_MARK, "").replace(_PARAGRAPH_MARK, ""))


def _render(root: Tag) -> list[str]:
    """Text chunks of a tree with break marks around blocks; iterative, so deep nesting is safe and linear."""
    from bs4.element import NavigableString, PreformattedString, Tag

    out: list[str] = []
    stack: list[str | tuple[PageElement, bool]] = [(root, False)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, in_pre = item
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA, processing instructions
                out.append(str(node) if in_pre else _SPACES_RE.sub(" ", str(node)))
            continue
        if not isinstance(node, Tag) or node.name in _HTML_SKIP:
            continue
        if node.name == "br":
            out.append("\n")
            continue
        mark = _PARAGRAPH_MARK if node.name in _HTML_PARAGRAPHS else _LINE_MARK if node.name in _HTML_LINES else ""
        closing = mark + (" " if node.name in ("td", "th") else "")
        href = str(node.get("href") or "").strip() if node.name == "a" else ""
        if href.lower().startswith(("http://", "https://")):
            if href.rstrip("/") != node.get_text(" ", strip=True).rstrip("/"):
                closing = f" ({href})" + closing
        out.append(mark + ("- " if node.name == "li" else ""))
        stack.append(closing)
        in_pre = in_pre or node.name == "pre"
        stack.extend((child, in_pre) for child in reversed(node.contents))
    return out


def _break_for(run: re.Match[str]) -> str:
    """One newline for a run of line breaks, a blank line when it holds a paragraph edge or two breaks."""
    value = run.group(0)
    return "\n\n" if _PARAGRAPH_MARK in value or value.count("\n") >= 2 else "\n"


def tidy(text: str) -> str:
    """Normalize newlines and spaces, strip line ends, keep at most one blank line."""
    lines = [line.replace("\xa0", " ").rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANK_RUN_RE.sub("\n\n", "\n".join(line if line.strip() else "" for line in lines)).strip()


def _strip_signature(text: str) -> str:
    """Cut a '-- ' signature, a 'Sent from my…' line or a closing sign-off followed by a few short lines."""
    match = _SIG_DELIMITER_RE.search(text)
    if match and text[:match.start()].strip():
        text = text[:match.start()]
    lines = text.rstrip().split("\n")
    for i in range(len(lines) - 1, 0, -1):
        tail = [line for line in lines[i + 1:] if line.strip()]
        if len(tail) > _SIGN_OFF_MAX_TAIL:
            break
        if _SIGN_OFF_RE.match(lines[i].strip()) and "\n".join(lines[:i]).strip():
            return "\n".join(lines[:i])
    return text


def _first_quote_header(text: str) -> tuple[str, re.Match[str] | None]:
    """The text as the library normalizes it, and the earliest quote-header match in it."""
    patterns = list(_QUOTE_START_RES)
    try:
        library = ReplyText(text=text, languages=list(_REPLY_LANGUAGES))
        text, patterns = library.text, [*patterns, library.HEADER_REGEX]  # the library strips each line
    except Exception:  # a third-party regex failure must not lose the inbound message; ours still apply
        log.warning("mail-parser-reply failed; using built-in quote patterns only", exc_info=True)
    # Quote headers are short lines near the top: blanking long lines and the far tail (same length, so
    # positions still fit `text`) bounds the cost of the library's nested lazy patterns on hostile input.
    probe = "\n".join(line if len(line) <= _PROBE_LINE else "x" * len(line)
                      for line in text[:_PROBE_CHARS].split("\n"))
    matches = [m for rx in patterns if (m := rx.search(probe))]
    return text, min(matches, key=lambda m: m.start(), default=None)


def _without_quoted_lines(text: str) -> str:
    """Drop every line that starts with '>'."""
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))


def extract_new_text(body: str) -> str:
    """The new text of a reply: quoted history ('On … wrote:', '>' lines, Outlook headers) and signature removed."""
    text, header = _first_quote_header(tidy(body))
    if header:
        before, after = text[:header.start()], text[header.end():]
        if not before.strip() and after.lstrip().startswith(">"):
            # Bottom-posted reply: the answer follows the '>'-quoted history.
            text, header = _first_quote_header(tidy(_without_quoted_lines(after)))
            before = text[:header.start()] if header else text
        text = before
    return tidy(_strip_signature(tidy(_without_quoted_lines(text))))
