"""The page behind the one-time link in a warning: in the person's language (Mandarin, Uyghur or Kazakh;
the last two right to left, in the Arabic script used in the prefecture), readable on a small phone,
working without JavaScript (two buttons of a plain form), and telling the person what to do now.

Opening the page checks nothing and reveals nothing: the token is looked at only when an answer is
posted, so a link preview uses nothing up. The Uyghur and Kazakh texts must be reviewed by native
speakers at the desk before production, as the warnings themselves (`services/notifier/templates.py`).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.notifier.templates import LANGUAGES

RTL = frozenset({"ug", "kk"})
NAMES = {"zh": "中文", "ug": "ئۇيغۇرچە", "kk": "قازاقشا"}

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "反诈预警",
        "lead": "您可能正在遭遇电信网络诈骗。",
        "do_1": "立即停止转账，不要再向任何人转钱。",
        "do_2": "不要透露验证码、密码或银行卡信息。",
        "do_3": "公安机关不会通过电话要求您转账。",
        "do_4": "如需帮助，请拨打 96110。",
        "question": "请告诉我们您是否安全：",
        "safe": "我很安全",
        "defrauded": "我正在被骗",
        "call": "拨打 96110",
        "thanks_safe": "谢谢。请继续保持警惕：公安机关不会要求您转账。",
        "thanks_defrauded": "谢谢。反诈中心民警将立即与您联系并设法止付。请勿再转账。",
        "used": "此链接已使用过。",
        "expired": "此链接已过期。",
        "invalid": "此链接无效。",
        "next": "如果您已经转账，请立即拨打 96110 或 110。",
    },
    "ug": {
        "title": "ئالدامچىلىقتىن ئاگاھلاندۇرۇش",
        "lead": "سىز تېلېفون-تور ئالدامچىلىقىغا ئۇچراۋاتقان بولۇشىڭىز مۇمكىن.",
        "do_1": "پۇل يۆتكەشنى دەرھال توختىتىڭ، ھېچكىمگە پۇل يۆتكىمەڭ.",
        "do_2": "دەلىللەش نومۇرى، پارول ۋە بانكا كارتىسى ئۇچۇرىنى ھېچكىمگە دېمەڭ.",
        "do_3": "ساقچى تېلېفوندا پۇل يۆتكەشنى تەلەپ قىلمايدۇ.",
        "do_4": "ياردەم ئۈچۈن 96110 غا تېلېفون قىلىڭ.",
        "question": "ئامان ياكى ئەمەسلىكىڭىزنى بىلدۈرۈڭ:",
        "safe": "مەن ئامان",
        "defrauded": "مەن ئالدىنىۋاتىمەن",
        "call": "96110 غا تېلېفون قىلىش",
        "thanks_safe": "رەھمەت. ھوشيار بولۇڭ: ساقچى سىزدىن پۇل يۆتكەشنى تەلەپ قىلمايدۇ.",
        "thanks_defrauded": (
            "رەھمەت. ساقچى سىز بىلەن دەرھال ئالاقىلىشىپ، پۇلنى توختىتىشقا تىرىشىدۇ. يەنە پۇل يۆتكىمەڭ."
        ),
        "used": "بۇ ئۇلانما ئىشلىتىلىپ بولغان.",
        "expired": "بۇ ئۇلانمىنىڭ ۋاقتى ئۆتۈپ كەتكەن.",
        "invalid": "بۇ ئۇلانما ئىناۋەتسىز.",
        "next": "ئەگەر پۇل يۆتكىگەن بولسىڭىز، دەرھال 96110 ياكى 110 غا تېلېفون قىلىڭ.",
    },
    "kk": {
        "title": "الاياقتىق تۋرالى ەسكەرتۋ",
        "lead": "سىز تەلەفون-ينتەرنەت الاياقتىعىنا ۇشىراپ جاتۋىڭىز مۇمكىن.",
        "do_1": "اقشا اۋدارۋدى دەرەۋ توقتاتىڭىز، ەشكىمگە اقشا اۋدارماڭىز.",
        "do_2": "تەكسەرۋ كودىن، قۇپيا ءسوزدى جانە بانك كارتاسىنىڭ مالىمەتىن ەشكىمگە ايتپاڭىز.",
        "do_3": "ساقشىلار تەلەفون ارقىلى اقشا اۋدارۋدى تالاپ ەتپەيدى.",
        "do_4": "كومەك ءۇشىن 96110 نومىرىنا حابارلاسىڭىز.",
        "question": "قاۋىپسىز ەكەنىڭىزدى بىلدىرىڭىز:",
        "safe": "مەن قاۋىپسىزبىن",
        "defrauded": "مەنى الداپ جاتىر",
        "call": "96110 نومىرىنا قوڭىراۋ شالۋ",
        "thanks_safe": "راحمەت. ساق بولىڭىز: ساقشىلار سىزدەن اقشا اۋدارۋدى تالاپ ەتپەيدى.",
        "thanks_defrauded": (
            "راحمەت. ساقشىلار سىزبەن دەرەۋ حابارلاسىپ، اقشانى توقتاتۋعا تىرىسادى. باسقا اقشا اۋدارماڭىز."
        ),
        "used": "بۇل سىلتەمە قولدانىلىپ قويعان.",
        "expired": "بۇل سىلتەمەنىڭ مەرزىمى وتكەن.",
        "invalid": "بۇل سىلتەمە جارامسىز.",
        "next": "ەگەر اقشا اۋدارىپ قويعان بولساڭىز، دەرەۋ 96110 نەمەسە 110 نومىرىنا حابارلاسىڭىز.",
    },
}

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def language_of(requested: str | None) -> str:
    return requested if requested in LANGUAGES else "zh"


def render(*, token: str, language: str, outcome: str | None = None) -> str:
    """The question (no `outcome`), or what happened to the answer: thanks_safe, thanks_defrauded, used,
    expired or invalid; every page says what to do next."""
    return _env.get_template("answer_page.html").render(
        token=token,
        lang=language,
        rtl=language in RTL,
        text=TEXTS[language],
        names=NAMES,
        outcome=outcome,
    )
