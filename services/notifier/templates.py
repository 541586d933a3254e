"""Warning texts in Mandarin (default), Uyghur and Kazakh (Arabic script, as used in the prefecture).

The Uyghur and Kazakh texts must be reviewed by native speakers at the desk before production.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("zh", "ug", "kk")


@dataclass(frozen=True)
class Template:
    title: str
    body: str  # `{link}`: the one-time answer link


TEMPLATES: dict[str, Template] = {
    "zh": Template(
        title="反诈预警",
        body=(
            "【反诈预警】您可能正在遭遇电信网络诈骗。公安机关不会通过电话要求您转账。"
            "请立即停止转账，不要透露验证码。请告诉我们您是否安全：{link} 如需帮助请拨打96110。"
        ),
    ),
    "ug": Template(
        title="ئالدامچىلىقتىن ئاگاھلاندۇرۇش",
        body=(
            "【ئالدامچىلىقتىن ئاگاھلاندۇرۇش】سىز تېلېفون-تور ئالدامچىلىقىغا ئۇچراۋاتقان بولۇشىڭىز مۇمكىن. "
            "ساقچى تېلېفوندا پۇل يۆتكەشنى تەلەپ قىلمايدۇ. پۇل يۆتكەشنى دەرھال توختىتىڭ، "
            "دەلىللەش نومۇرىنى ھېچكىمگە دېمەڭ. ئامان ياكى ئەمەسلىكىڭىزنى بىلدۈرۈڭ: {link} "
            "ياردەم ئۈچۈن 96110 غا تېلېفون قىلىڭ."
        ),
    ),
    "kk": Template(
        title="الاياقتىق تۋرالى ەسكەرتۋ",
        body=(
            "【الاياقتىق تۋرالى ەسكەرتۋ】سىز تەلەفون-ينتەرنەت الاياقتىعىنا ۇشىراپ جاتۋىڭىز مۇمكىن. "
            "ساقشىلار تەلەفون ارقىلى اقشا اۋدارۋدى تالاپ ەتپەيدى. اقشا اۋدارۋدى دەرەۋ توقتاتىڭىز، "
            "تەكسەرۋ كودىن ەشكىمگە ايتپاڭىز. قاۋىپسىز ەكەنىڭىزدى بىلدىرىڭىز: {link} "
            "كومەك ءۇشىن 96110 نومىرىنا حابارلاسىڭىز."
        ),
    ),
}


def render(language: str, *, link: str) -> tuple[str, str]:
    """Title and text of the warning in `language` (Mandarin when the language has no template)."""
    template = TEMPLATES.get(language, TEMPLATES["zh"])
    return template.title, template.body.format(link=link)
