"""The PDF report: the same HTML, laid out by WeasyPrint (pure Python over Debian's pango).

WeasyPrint never fetches anything here: every resource of the HTML is inline, and the URL
fetcher refuses any URL that device-supplied text might still smuggle in, so writing a PDF makes
no request, like opening the HTML.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from ..errors import UsageError


def _refuse(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"camaudit's PDF fetches nothing ({url[:60]})")


def _fetcher(weasyprint: Any) -> Any:
    """A URL fetcher that refuses every URL: a URLFetcher whose fetch refuses (recent WeasyPrint
    releases want one), else the plain function older releases take."""
    base = getattr(getattr(weasyprint, "urls", None), "URLFetcher", None)
    if isinstance(base, type):

        class Refusing(base):  # type: ignore[misc, valid-type]
            def fetch(self, url: str, headers: Any = None) -> NoReturn:
                _refuse(url)

        return Refusing(allowed_protocols=(), allow_redirects=False)
    return _refuse


def html_to_pdf(html: str) -> bytes:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: pango missing
        raise UsageError(f"the PDF report needs WeasyPrint and Debian's pango libraries "
                         f"(apt-get install libpango-1.0-0 libpangoft2-1.0-0): {exc}") from None
    # WeasyPrint logs every CSS property it does not lay out (sticky, grid): noise for a user.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=_fetcher(weasyprint), base_url=None).write_pdf()
    return pdf
