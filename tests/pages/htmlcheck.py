"""Parse rendered HTML into a DOM summary (html.parser) for the page and XSS tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attrs: list[tuple[str, str | None]]
    text: str = ""


@dataclass
class Dom(HTMLParser):
    elements: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    _open: list[Element] = field(default_factory=list)

    def __post_init__(self) -> None:
        HTMLParser.__init__(self, convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, attrs)
        self.elements.append(el)
        if tag not in VOID:
            self._open.append(el)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for el in self._open:
            el.text += data

    def tags(self, name: str) -> list[Element]:
        return [e for e in self.elements if e.tag == name]

    def by_class(self, cls: str) -> list[Element]:
        return [e for e in self.elements if cls in (dict(e.attrs).get("class") or "").split()]

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


VOID = {"meta", "link", "img", "br", "hr", "input", "source", "embed", "base", "wbr", "col"}


def parse(html: str) -> Dom:
    dom = Dom()
    dom.feed(html)
    dom.close()
    return dom
