"""Word, HTML, Markdown and plain text -> one page of text, headings kept as Markdown.

Runs inside the extraction sandbox, like extract.py.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

from .detect import decode_text
from .types import Extraction, IngestError, Limits, PageText, Progress, human_bytes

ProgressFn = Callable[[Progress], None]


def extract_docx(data: bytes, *, kind: str, limits: Limits, on_progress: ProgressFn) -> Extraction:
    _check_zip_bomb(data, limits)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    on_progress(Progress("extracting", 0, 1))
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise IngestError(f"The Word document is damaged and could not be read ({exc}).") from exc
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            level = _heading_level(style)
            if level:
                blocks.append("#" * level + " " + text)
            elif style.lower().startswith("list"):
                blocks.append("- " + text)
            else:
                blocks.append(text)
        elif isinstance(item, Table):
            rows = []
            for row in item.rows:
                # A merged cell is listed once per column it spans: show its text once.
                cells, previous = [], None
                for cell in row.cells:
                    cells.append("" if cell._tc is previous else cell.text)
                    previous = cell._tc
                rows.append(cells)
            table = markdown_table(rows)
            if table:
                blocks.append(table)
    title = (document.core_properties.title or "").strip()
    on_progress(Progress("extracting", 1, 1))
    return Extraction(kind, None, (PageText(None, clean_text("\n\n".join(blocks))),), title=title)


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown table: the first row is its header. Empty rows are
    dropped, short rows padded, and pipes and line breaks in a cell kept as text."""

    def cell(text: str) -> str:
        return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")

    kept = [[cell(c) for c in row] for row in rows if any(c.strip() for c in row)]
    if not kept:
        return ""
    width = max(len(row) for row in kept)
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in kept]
    lines.insert(1, "|" + " --- |" * width)
    return "\n".join(lines)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.match(r"Heading (\d)", style)
    return min(int(match.group(1)), 6) if match else 0


def _check_zip_bomb(data: bytes, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise IngestError(f"The Word document is damaged ({exc}).") from exc
    total = sum(i.file_size for i in infos)
    if total > limits.max_docx_uncompressed_bytes:
        raise IngestError(
            f"This Word document expands to {human_bytes(total)}; the limit is "
            f"{human_bytes(limits.max_docx_uncompressed_bytes)} (it may be a zip bomb)."
        )
    for info in infos:
        if info.file_size > 10_000_000 and info.file_size > 200 * max(info.compress_size, 1):
            raise IngestError(
                f"The Word document contains {info.filename!r}, compressed "
                f"{info.file_size // max(info.compress_size, 1)}:1 (a likely zip bomb)."
            )


_DROP_TAGS = ["script", "style", "noscript", "template", "svg", "iframe", "nav", "footer"]
_BLOCK_TAGS = {"p", "li", "pre", "blockquote", "dt", "dd", "table", "figcaption"}


def extract_html(data: bytes, *, kind: str, limits: Limits, on_progress: ProgressFn) -> Extraction:
    from bs4 import BeautifulSoup

    on_progress(Progress("extracting", 0, 1))
    soup = BeautifulSoup(decode_text(data), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    root = soup.body or soup
    blocks: list[str] = []
    for element in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6", *_BLOCK_TAGS]):
        if element.find_parent(list(_BLOCK_TAGS)) is not None:
            continue  # nested inside a block we already take whole
        if element.name == "pre":
            text = _fenced(element)
        elif element.name == "table":
            text = _html_table(element)
        else:
            text = re.sub(r"\s+", " ", element.get_text()).strip()
        if not text.strip():
            continue
        if element.name in ("pre", "table"):
            blocks.append(text)
        elif element.name[0] == "h" and element.name[1:].isdigit():
            blocks.append("#" * int(element.name[1]) + " " + text)
        elif element.name == "li":
            blocks.append("- " + text)
        else:
            blocks.append(text)
    if not blocks:
        blocks = [root.get_text("\n", strip=True)]
    on_progress(Progress("extracting", 1, 1))
    return Extraction(kind, None, (PageText(None, clean_text("\n\n".join(blocks))),), title=title)


def _fenced(pre) -> str:
    """A <pre> as a fenced code block, its language kept from a ``language-x`` class."""
    code = pre.get_text().strip("\n")
    if not code.strip():
        return ""
    fence = "~~~" if "```" in code else "```"
    inner = pre.find("code")
    classes = inner.get("class", []) if inner is not None else []
    language = next((c[9:] for c in classes if re.fullmatch(r"language-[\w+-]{1,30}", c)), "")
    return f"{fence}{language}\n{code}\n{fence}"


def _html_table(table) -> str:
    """A <table> as a caption line (if it has one) and a Markdown table."""
    rows = [
        [cell.get_text(" ") for cell in row.find_all(["td", "th"])] for row in table.find_all("tr")
    ]
    caption = table.find("caption")
    title = re.sub(r"\s+", " ", caption.get_text()).strip() if caption is not None else ""
    body = markdown_table(rows)
    return f"{title}\n\n{body}".strip() if body else title


def extract_plain(data: bytes, *, kind: str, limits: Limits, on_progress: ProgressFn) -> Extraction:
    on_progress(Progress("extracting", 0, 1))
    text = decode_text(data)
    if kind == "markdown":
        text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)  # YAML front matter
        text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    on_progress(Progress("extracting", 1, 1))
    return Extraction(kind, None, (PageText(None, clean_text(text)),))


def clean_text(text: str) -> str:
    """Normalise whitespace the way every later stage expects: LF newlines, no NULs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t\f\v\u00a0]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
